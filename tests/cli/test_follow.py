"""`inspect --follow`: tail a log while another writer appends to it, with the real rules."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from netdoctor.cli.app import app
from netdoctor.cli.follow import follow
from netdoctor.rules import RuleConfig
from netdoctor.runlog.schema import RunStatus, StepField, StepFlag
from netdoctor.runlog.writer import RunLogWriter


def _rows(first: int, n: int, loss: float) -> np.ndarray:
    rows = np.zeros((n, len(StepField)))
    rows[:, StepField.STEP] = np.arange(first, first + n)
    rows[:, StepField.LOSS] = loss
    rows[:, StepField.GRAD_NORM] = 0.5
    rows[:, StepField.MICRO_BATCHES] = 1
    rows[:, StepField.FLAGS] = 0 if np.isfinite(loss) else StepFlag.LOSS_NONFINITE
    return rows


def _grow(path: Path, parts, started: threading.Event) -> None:
    """A live writer (this process, this host): 10 healthy flushes, then NaN, then it ends."""
    sites, params, meta = parts
    writer = RunLogWriter(path, {**meta, "pid": os.getpid(), "host": socket.gethostname()})
    writer.put_structure(sites, params)
    for chunk in range(14):
        loss = 0.7 if chunk < 10 else float("nan")
        writer.put_steps(_rows(chunk * 5, 5, loss), np.full((5, 1), 0.1))
        writer.commit()
        writer.wait()
        started.set()
        time.sleep(0.03)
    writer.close(RunStatus.CRASHED, "ValueError: stop")


def test_follow_reads_until_the_writer_ends_and_announces_new_diagnoses(
    tmp_path, capsys, log_parts
):
    log = tmp_path / "live.sqlite"
    started = threading.Event()
    thread = threading.Thread(target=_grow, args=(log, log_parts, started))
    thread.start()
    started.wait(10)
    run, diagnoses = follow(log, RuleConfig(), interval=0.01)
    thread.join()
    assert run.status is RunStatus.CRASHED and run.n_steps == 70
    assert "nan_loss" in [d.rule for d in diagnoses]
    err = capsys.readouterr().err
    assert err.count("nan_loss") == 1  # announced once, when it first held


def test_follow_on_a_finished_log_prints_the_report(small_log):
    result = CliRunner().invoke(app, ["inspect", str(small_log), "--follow", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert result.stdout.lstrip().startswith("{")


def _live_writer(path: Path, parts, created_at: float) -> RunLogWriter:
    sites, params, meta = parts
    meta = {**meta, "pid": os.getpid(), "host": socket.gethostname(), "created_at": created_at}
    writer = RunLogWriter(path, meta)
    writer.put_structure(sites, params)
    writer.put_steps(_rows(0, 5, 0.7), np.full((5, 1), 0.1))
    writer.commit()
    writer.wait()
    return writer


def test_follow_survives_the_log_being_deleted(tmp_path, capsys, log_parts):
    log = tmp_path / "live.sqlite"
    writer = _live_writer(log, log_parts, created_at=1.0)
    polls = []

    def sleep(_: float) -> None:  # the writer's file disappears under the follower
        polls.append(1)
        if len(polls) == 1:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{log}{suffix}").unlink(missing_ok=True)

    try:
        run, _ = follow(log, RuleConfig(), interval=0, sleep=sleep, retries=2)
    finally:
        writer.close(RunStatus.FINISHED)
    assert run.n_steps == 5  # the last good read is reported
    assert len(polls) == 3  # one poll, then two retries
    assert "stopped following" in capsys.readouterr().err


def test_follow_moves_on_to_a_run_that_replaced_the_log(tmp_path, capsys, log_parts):
    log = tmp_path / "live.sqlite"
    first = _live_writer(log, log_parts, created_at=1.0)
    first.close(RunStatus.RUNNING)  # gone without finishing: another run takes the path
    second: list[RunLogWriter] = []

    def sleep(_: float) -> None:
        if not second:
            second.append(_live_writer(log, log_parts, created_at=2.0))
        else:
            second[0].close(RunStatus.FINISHED)

    run, _ = follow(log, RuleConfig(), interval=0, sleep=sleep)
    assert run.meta["created_at"] == 2.0 and run.status is RunStatus.FINISHED
    assert "replaced by another run" in capsys.readouterr().err
