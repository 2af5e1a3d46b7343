"""Ways to damage a run log, shared by the property tests and the long fuzz script.

Each damage is a pure function of (file bytes or an SQLite connection, random choices), so that
hypothesis can shrink a failing case to the smallest damage that breaks the reader.
"""

from __future__ import annotations

import io
import random
import sqlite3
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout, suppress
from pathlib import Path

from netdoctor.errors import RunLogError

PAGE = 4096
TABLES = ("meta", "sites", "params", "step_chunks", "samples", "epochs", "events")

#: Values a rewritten cell may take: every SQLite storage class, and the awkward numbers.
ODD_VALUES: tuple[object, ...] = (
    None, 0, -1, 1, 2**62, -(2**62), 1.5, float("nan"), float("inf"), float("-inf"), 1e308,
    "", "abc", "[1, 2", "null", '{"a": 1}', "[1e999]", "\x1b[31mred\x1b[0m", "[not json",
    b"", b"\x00" * 7, b"\xff" * 64, "9" * 40, "[]", "[-5]", "[3, 1000000000000]",
)


def truncate(data: bytes, at: int) -> bytes:
    return data[: at % (len(data) + 1)]


def flip_bits(data: bytes, positions: list[int]) -> bytes:
    out = bytearray(data)
    for pos in positions:
        out[(pos // 8) % len(out)] ^= 1 << (pos % 8)
    return bytes(out)


def zero_page(data: bytes, page: int) -> bytes:
    out = bytearray(data)
    n_pages = max(1, len(out) // PAGE)
    start = (page % n_pages) * PAGE
    out[start : start + PAGE] = bytes(len(out[start : start + PAGE]))
    return bytes(out)


def append_garbage(data: bytes, garbage: bytes) -> bytes:
    return data + garbage


def drop_table(conn: sqlite3.Connection, table: str) -> None:
    conn.execute(f"DROP TABLE IF EXISTS {table}")


def rewrite_cell(conn: sqlite3.Connection, table: str, column_pick: int, row_pick: int,
                 value: object) -> None:
    """Set one cell of ``table`` to ``value`` (SQLite keeps any type in any column)."""
    columns = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
    rowids = [r[0] for r in conn.execute(f"SELECT rowid FROM {table}")]
    if not columns or not rowids:
        return
    column = columns[column_pick % len(columns)]
    rowid = rowids[row_pick % len(rowids)]
    with suppress(sqlite3.IntegrityError):  # a primary key clash or NOT NULL: leave it
        conn.execute(f'UPDATE {table} SET "{column}" = ? WHERE rowid = ?', (value, rowid))


def delete_rows(conn: sqlite3.Connection, table: str, row_pick: int) -> None:
    rowids = [r[0] for r in conn.execute(f"SELECT rowid FROM {table}")]
    if rowids:
        conn.execute(f"DELETE FROM {table} WHERE rowid >= ?", (rowids[row_pick % len(rowids)],))


def duplicate_rows(conn: sqlite3.Connection, table: str, shift: int) -> None:
    """Copy every row under a shifted key: duplicated, out-of-order content."""
    columns = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
    if not columns:
        return
    key, rest = columns[0], columns[1:]
    cols = ", ".join(f'"{c}"' for c in rest)
    with suppress(sqlite3.IntegrityError):
        conn.execute(
            f'INSERT INTO {table} ("{key}", {cols}) SELECT "{key}" + ?, {cols} FROM {table}',
            (shift,),
        )


def with_sqlite(path: Path, change: Callable[[sqlite3.Connection], None]) -> None:
    conn = sqlite3.connect(path)
    try:
        change(conn)
        conn.commit()
    except sqlite3.DatabaseError:
        pass  # the file was already damaged; the reader gets it as it is
    finally:
        conn.close()


def read_everything(path: Path) -> str:
    """What a user can do with a log: load it, diagnose it, print every report.

    Returns "ok" or "error" (a one-line RunLogError); any other exception escapes: a bug.
    """
    from rich.console import Console

    from netdoctor.report.json_report import render_json
    from netdoctor.report.layers import layer_table
    from netdoctor.report.text import render_report
    from netdoctor.rules import run_rules
    from netdoctor.runlog import open_run

    try:
        run = open_run(path)
    except RunLogError as exc:
        assert "\n" not in str(exc), str(exc)
        return "error"
    diagnoses = run_rules(run)
    failed = [d for d in diagnoses if d.evidence.get("exception")]
    assert not failed, failed[0].message
    sink = io.StringIO()
    with redirect_stdout(sink), redirect_stderr(sink):
        Console(file=sink, width=100, force_terminal=False).print(render_report(run, diagnoses))
        render_json(run, diagnoses)
        layer_table(run)
    return "ok"


def random_damage(original: bytes, path: Path, rng: random.Random) -> str:
    """Apply one random damage to a copy of ``original`` at ``path``; say which."""
    kind = rng.choice(["truncate", "flip", "zero", "append", "drop", "cell", "delete", "dup"])
    data = original
    if kind == "truncate":
        data = truncate(data, rng.randrange(len(data) + 1))
    elif kind == "flip":
        data = flip_bits(data, [rng.randrange(len(data) * 8) for _ in range(rng.randint(1, 32))])
    elif kind == "zero":
        data = zero_page(data, rng.randrange(1 << 16))
    elif kind == "append":
        data = append_garbage(data, rng.randbytes(rng.randint(1, 3 * PAGE)))
    path.write_bytes(data)
    table = rng.choice(TABLES)
    if kind == "drop":
        with_sqlite(path, lambda c: drop_table(c, table))
    elif kind == "cell":
        value = rng.choice(ODD_VALUES)
        picks = rng.randrange(1 << 16), rng.randrange(1 << 16)
        with_sqlite(path, lambda c: rewrite_cell(c, table, *picks, value))
    elif kind == "delete":
        pick = rng.randrange(1 << 16)
        with_sqlite(path, lambda c: delete_rows(c, table, pick))
    elif kind == "dup":
        shift = rng.choice([1, 7, 1000, -3])
        with_sqlite(path, lambda c: duplicate_rows(c, table, shift))
    return f"{kind}:{table}" if kind in ("drop", "cell", "delete", "dup") else kind
