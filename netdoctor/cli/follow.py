"""``inspect --follow`` without a terminal UI: tail a log that another process is writing.

Each new diagnosis is announced on stderr the first time it holds (so stdout keeps only the
report), and the full report is printed once the writer is done: finished, crashed, killed or
gone. Ctrl-C stops following and prints the report of what was read so far. The rules run again
only when the log has moved on. A log that becomes unreadable while followed (deleted, truncated,
replaced by something else) is tried again a few times, then reported as it was last read, with
a note saying why the following stopped.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from netdoctor.cli.console import print_note
from netdoctor.diagnosis import Diagnosis
from netdoctor.errors import RunLogError
from netdoctor.rules import RuleConfig, run_rules
from netdoctor.runlog import RunData, open_run


def follow(
    log: Path,
    settings: RuleConfig,
    interval: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
    retries: int = 3,
) -> tuple[RunData, list[Diagnosis]]:
    """Re-read ``log`` every ``interval`` seconds until its writer is done; return the last read."""
    announced: set[tuple[str, str | None]] = set()
    run = open_run(log)  # unreadable from the start: the caller's one-line error, exit 2
    diagnoses = run_rules(run, settings)
    failures = 0
    try:
        while True:
            if run.n_steps:
                _announce(diagnoses, announced, int(run.step_numbers[-1]))
            if run.finished or not run.writer_alive:
                return run, diagnoses
            sleep(interval)
            try:
                latest = open_run(log)
            except RunLogError as exc:
                failures += 1
                if failures > retries:
                    print_note(f"stopped following: {exc}; the report shows the log as last read")
                    return run, diagnoses
                continue
            failures = 0
            if latest.meta.get("created_at") != run.meta.get("created_at"):
                print_note(f"{log}: replaced by another run; following the new one")
                announced.clear()
            if latest.n_steps != run.n_steps or latest.finished or not latest.writer_alive:
                run, diagnoses = latest, run_rules(latest, settings)
    except KeyboardInterrupt:
        return run, diagnoses


def _announce(
    diagnoses: list[Diagnosis], announced: set[tuple[str, str | None]], last_step: int
) -> None:
    """Each (rule, layer) once, on stderr, the first time it holds."""
    for d in diagnoses:
        key = (d.rule, d.layer)
        if key in announced:
            continue
        announced.add(key)
        where = f" layer {d.layer}" if d.layer else ""
        print_note(f"step {last_step}: {d.severity} {d.rule} (from step {d.step}{where}): "
                   f"{d.message}")
