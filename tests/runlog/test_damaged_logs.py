"""Damaged run logs: the reader and every report give a result or one line, never a traceback.

The logs are the real ones in ``sample_runs/`` (written by ``watch()``); hypothesis damages a copy
and shrinks any failure to the smallest damage. ``benchmarks/fuzz_logs.py`` runs the same damages
thousands of times.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.runlog import damage

SAMPLES = sorted((Path(__file__).resolve().parents[2] / "sample_runs").glob("*.sqlite"))
FAST = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def originals() -> list[bytes]:
    assert SAMPLES, "sample_runs/ has no logs"
    return [p.read_bytes() for p in SAMPLES]


@pytest.fixture
def target(tmp_path: Path) -> Path:
    return tmp_path / "damaged.sqlite"


def _fresh(path: Path) -> None:
    for extra in ("", "-journal", "-wal", "-shm"):
        Path(f"{path}{extra}").unlink(missing_ok=True)


sample = st.integers(min_value=0, max_value=len(SAMPLES) - 1)


@FAST
@given(which=sample, at=st.integers(min_value=0, max_value=1 << 20))
def test_truncated_anywhere(originals, target, which, at):
    _fresh(target)
    target.write_bytes(damage.truncate(originals[which], at))
    damage.read_everything(target)


@FAST
@given(which=sample, bits=st.lists(st.integers(min_value=0), min_size=1, max_size=16))
def test_flipped_bits(originals, target, which, bits):
    _fresh(target)
    target.write_bytes(damage.flip_bits(originals[which], bits))
    damage.read_everything(target)


@FAST
@given(which=sample, page=st.integers(min_value=0, max_value=1000))
def test_zeroed_page(originals, target, which, page):
    _fresh(target)
    target.write_bytes(damage.zero_page(originals[which], page))
    damage.read_everything(target)


@FAST
@given(which=sample, garbage=st.binary(min_size=1, max_size=5000))
def test_appended_garbage(originals, target, which, garbage):
    _fresh(target)
    target.write_bytes(damage.append_garbage(originals[which], garbage))
    assert damage.read_everything(target) == "ok"  # SQLite ignores bytes past its last page


@pytest.mark.parametrize("table", damage.TABLES)
def test_dropped_table_is_one_line(tmp_path, table):
    path = tmp_path / "log.sqlite"
    shutil.copy(SAMPLES[0], path)
    damage.with_sqlite(path, lambda c: damage.drop_table(c, table))
    assert damage.read_everything(path) == "error"


cell_value = st.one_of(
    st.sampled_from(damage.ODD_VALUES),
    st.none(), st.integers(), st.floats(), st.text(max_size=40), st.binary(max_size=64),
)


@FAST
@given(which=sample, table=st.sampled_from(damage.TABLES), column=st.integers(0, 20),
       row=st.integers(0, 1000), value=cell_value)
def test_rewritten_cell(originals, target, which, table, column, row, value):
    _fresh(target)
    target.write_bytes(originals[which])
    damage.with_sqlite(target, lambda c: damage.rewrite_cell(c, table, column, row, value))
    damage.read_everything(target)


@FAST
@given(which=sample, table=st.sampled_from(damage.TABLES), row=st.integers(0, 1000),
       shift=st.sampled_from([1, 7, 1000, -3]))
def test_deleted_and_duplicated_rows(originals, target, which, table, row, shift):
    _fresh(target)
    target.write_bytes(originals[which])
    damage.with_sqlite(target, lambda c: damage.delete_rows(c, table, row))
    damage.with_sqlite(target, lambda c: damage.duplicate_rows(c, table, shift))
    damage.read_everything(target)


def test_control_characters_in_names_are_inert(tmp_path):
    path = tmp_path / "log.sqlite"
    shutil.copy(SAMPLES[0], path)
    evil = "fc1\x1b[2J\x1b]0;pwned\x07"
    damage.with_sqlite(path, lambda c: c.execute("UPDATE sites SET name = ?, module = ?",
                                                 (evil, evil)))
    from netdoctor.runlog import open_run

    run = open_run(path)
    assert all("\x1b" not in s.name and "\x07" not in s.module for s in run.sites)
    assert run.sites[0].name.startswith("fc1\\x1b[2J")


def test_claimed_sizes_do_not_allocate(tmp_path):
    """A chunk that claims 10^12 rows is corruption, found before any allocation."""
    path = tmp_path / "log.sqlite"
    shutil.copy(SAMPLES[0], path)
    damage.with_sqlite(path, lambda c: c.execute("UPDATE step_chunks SET n = 1000000000000"))
    assert damage.read_everything(path) == "error"
