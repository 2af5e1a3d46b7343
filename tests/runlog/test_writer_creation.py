"""Creating a log: a side file left by a process killed mid-creation is cleared, never read."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from netdoctor.runlog import open_run
from netdoctor.runlog.schema import RunStatus
from netdoctor.runlog.writer import RunLogWriter


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_orphan_side_files_of_dead_creators_are_removed(tmp_path: Path) -> None:
    log = tmp_path / "run.sqlite"
    orphan = tmp_path / f".run.sqlite.{_dead_pid()}.new"
    orphan_journal = Path(f"{orphan}-journal")
    busy = tmp_path / f".run.sqlite.{os.getppid()}.new"  # its creator is alive: keep it
    other_log = tmp_path / f".other.sqlite.{_dead_pid()}.new"
    for path in (orphan, orphan_journal, busy, other_log):
        path.write_bytes(b"half-made")

    RunLogWriter(log, {"model": "m"}).close(RunStatus.FINISHED)

    assert not orphan.exists() and not orphan_journal.exists()
    assert busy.exists() and other_log.exists()
    assert open_run(log).status == RunStatus.FINISHED
