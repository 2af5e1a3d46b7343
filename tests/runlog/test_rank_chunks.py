"""Per-rank rows in the run log: written in chunks, read per rank, optional in older logs."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from netdoctor.errors import RunLogError
from netdoctor.runlog import open_run
from netdoctor.runlog.schema import RankField, RunStatus, StepFlag
from netdoctor.runlog.writer import RunLogWriter


def _rows(first: int, n: int, rank: int) -> np.ndarray:
    rows = np.full((n, len(RankField)), np.nan)
    rows[:, RankField.STEP] = np.arange(first, first + n)
    rows[:, RankField.LOSS] = 1.0 + rank
    rows[:, RankField.FLAGS] = 0
    return rows


@pytest.fixture
def rank_log(tmp_path, log_parts):
    sites, params, meta = log_parts
    path = tmp_path / "ranks.sqlite"
    writer = RunLogWriter(path, {**meta, "world_size": 2})
    writer.put_structure(sites, params)
    for first in (0, 8):  # chunks arrive per flush, ranks interleaved
        for rank in (1, 0):
            writer.put_rank_rows(rank, _rows(first, 8, rank))
    writer.close(RunStatus.FINISHED)
    return path


def test_chunks_are_joined_per_rank_in_step_order(rank_log):
    run = open_run(rank_log)
    assert sorted(run.ranks) == [0, 1] and run.world_size == 2
    for rank in (0, 1):
        steps, loss = run.rank_series(rank, RankField.LOSS)
        assert (steps == np.arange(16)).all() and (loss == 1.0 + rank).all()
    assert run.rank_series(5, RankField.LOSS)[0].size == 0


def test_logs_without_the_table_read_as_no_rank_data(rank_log, small_log):
    with sqlite3.connect(rank_log) as conn:
        conn.execute("DROP TABLE rank_chunks")  # what a log from before the table looks like
    conn.close()
    assert dict(open_run(rank_log).ranks) == {}
    assert dict(open_run(small_log).ranks) == {}  # single-process runs write none


@pytest.mark.parametrize(("column", "value", "problem"), [
    ("rows", b"\x00" * 5, "size does not match"),
    ("rank", -1, "not a valid number"),
    ("n", "eight", "not a valid number"),
    ("first_step", 0, "step numbers of rank 0 are not increasing"),
])
def test_damaged_chunks_are_one_line_errors(rank_log, column, value, problem):
    with sqlite3.connect(rank_log) as conn:
        if column == "first_step":  # a duplicated chunk under another key: steps repeat
            conn.execute("INSERT INTO rank_chunks SELECT rank, 100, n, rows FROM rank_chunks "
                         "WHERE rank = 0 AND first_step = 0")
        else:
            conn.execute(f"UPDATE rank_chunks SET {column} = ? WHERE rank = 0 AND first_step = 8",
                         (value,))
    conn.close()
    with pytest.raises(RunLogError, match=problem) as info:
        open_run(rank_log)
    assert "\n" not in str(info.value)


def test_damaged_flags_read_as_none(rank_log):
    rows = _rows(0, 8, 0)
    rows[3, RankField.FLAGS] = np.nan
    rows[4, RankField.FLAGS] = -StepFlag.LOSS_NONFINITE
    with sqlite3.connect(rank_log) as conn:
        conn.execute("UPDATE rank_chunks SET rows = ? WHERE rank = 0 AND first_step = 0",
                     (rows.astype("<f8").tobytes(),))
    conn.close()
    flags = open_run(rank_log).ranks[0][:, RankField.FLAGS]
    assert (flags == 0).all()
