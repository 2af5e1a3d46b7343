"""Every way a run log can be wrong ends in one line on stderr and exit code 2.

Run in a subprocess, as a user runs it, so that a traceback would show (CliRunner hides them).
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from netdoctor.runlog.schema import APPLICATION_ID


def _missing(log: Path, tmp: Path) -> Path:
    return tmp / "no-such-run.sqlite"


def _directory(log: Path, tmp: Path) -> Path:
    (tmp / "a-dir").mkdir()
    return tmp / "a-dir"


def _empty(log: Path, tmp: Path) -> Path:
    (tmp / "empty.sqlite").write_bytes(b"")
    return tmp / "empty.sqlite"


def _text(log: Path, tmp: Path) -> Path:
    (tmp / "notes.txt").write_text("epoch 1 loss 0.5\nepoch 2 loss 0.4\n")
    return tmp / "notes.txt"


def _foreign_sqlite(log: Path, tmp: Path) -> Path:
    path = tmp / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO users (name) VALUES ('ada')")
    conn.close()
    return path


def _truncated(log: Path, tmp: Path) -> Path:
    data = log.read_bytes()
    path = tmp / "truncated.sqlite"
    path.write_bytes(data[: len(data) // 2])
    return path


def _too_new(log: Path, tmp: Path) -> Path:
    path = tmp / "future.sqlite"
    shutil.copy(log, path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        conn.execute("PRAGMA user_version = 99")
    conn.close()
    return path


BAD_LOGS: dict[str, tuple[Callable[[Path, Path], Path], str]] = {
    "missing": (_missing, "no such file"),
    "directory": (_directory, "directory"),
    "empty": (_empty, "empty"),
    "text": (_text, "not a netdoctor run log"),
    "foreign-sqlite": (_foreign_sqlite, "not a netdoctor run log"),
    "truncated": (_truncated, "truncated"),
    "too-new": (_too_new, "newer netdoctor"),
}


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("netdoctor: error: ")
    for needle in needles:
        assert needle in lines[0]


@pytest.mark.parametrize("case", list(BAD_LOGS))
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_bad_log_is_one_line_exit_2(
    case: str, fmt: str, small_log: Path, tmp_path: Path, run_netdoctor
) -> None:
    make, needle = BAD_LOGS[case]
    bad = make(small_log, tmp_path)
    result = run_netdoctor("inspect", str(bad), "--format", fmt, cwd=tmp_path)
    assert_one_line_error(result, str(bad), needle)


def test_unknown_rule_in_select(small_log: Path, tmp_path: Path, run_netdoctor) -> None:
    result = run_netdoctor(
        "inspect", str(small_log), "--select", "nan_loss,no_such_rule", cwd=tmp_path
    )
    assert_one_line_error(result, "no_such_rule")


def test_unknown_rule_in_rules_command(tmp_path: Path, run_netdoctor) -> None:
    assert_one_line_error(run_netdoctor("rules", "no_such_rule", cwd=tmp_path), "no_such_rule")
