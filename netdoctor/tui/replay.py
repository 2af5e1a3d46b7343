"""Replaying a saved run: the run as it stood at an earlier step, and the steps a cursor visits.

A run cut at step ``s`` is what the log held when the writer had just finished step ``s``: the
step rows, per-layer samples, epochs and events up to it. Rules run on the cut run say what
netdoctor would have said at that moment, so scrubbing shows diagnoses appear where they did.
"""

from __future__ import annotations

import numpy as np

from netdoctor.runlog import RunData
from netdoctor.runlog.schema import RunStatus


def last_step(run: RunData) -> int | None:
    """The last optimizer step the log holds, or None for a log without steps."""
    return int(run.step_numbers[-1]) if run.n_steps else None


def cut_run(run: RunData, step: int) -> RunData:
    """``run`` as it stood right after ``step``; the run itself when ``step`` is its last one.

    Before its end the cut run reads as still running (its writer alive then), so that rules and
    views treat it as a run in progress, not as one that stopped there.
    """
    end = last_step(run)
    if end is None or step >= end:
        return run
    rows = int(np.searchsorted(run.step_numbers, step, side="right"))
    samples = int(np.searchsorted(run.sample_steps, step, side="right"))
    meta = dict(run.meta)
    meta["status"] = RunStatus.RUNNING.value
    meta["_writer_alive"] = True
    for key in ("ended_at", "end_message"):
        meta.pop(key, None)
    meta["last_step"] = step
    return RunData(
        path=run.path,
        meta=meta,
        sites=run.sites,
        params=run.params,
        steps=run.steps[:rows],
        lrs=run.lrs[:rows],
        sample_steps=run.sample_steps[:samples],
        act=run.act[:samples],
        param=run.param[:samples],
        epochs=tuple(e for e in run.epochs if e.step <= step),
        events=tuple(e for e in run.events if e.step is None or e.step <= step),
    )


def move_cursor(run: RunData, cursor: int | None, moves: int) -> int | None:
    """The cursor ``moves`` stops later (negative: earlier); None means "the latest step".

    A stop is a sampled step (where per-layer statistics exist) or, in a run with few samples,
    one 1/100 of the run: small enough to see a diagnosis appear, few enough to cross a long run
    in seconds. Moving past the end returns None, which follows the log as it grows.
    """
    end = last_step(run)
    if end is None:
        return None
    stops = scrub_stops(run)
    here = end if cursor is None else min(cursor, end)
    if moves < 0:  # the first stop strictly below, then further down
        target = int(np.searchsorted(stops, here, side="left")) + moves
    else:  # the first stop strictly above, then further up
        target = int(np.searchsorted(stops, here, side="right")) + moves - 1
    if target >= stops.size - 1:
        return None
    return int(stops[max(target, 0)])


def scrub_stops(run: RunData) -> np.ndarray:
    """Sorted step numbers the cursor stops at; always holds the first and the last step."""
    end = last_step(run)
    if end is None:
        return np.zeros(0, dtype=np.int64)
    first = int(run.step_numbers[0])
    grid = np.linspace(first, end, num=min(101, end - first + 1)).round().astype(np.int64)
    stops = np.union1d(grid, run.sample_steps[run.sample_steps <= end])
    return np.union1d(stops, [first, end]).astype(np.int64)
