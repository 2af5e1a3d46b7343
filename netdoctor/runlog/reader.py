"""Open a run log and load it as ``RunData``. Every way a file can be wrong ends in RunLogError.

The reader opens the file read-only, so it can read a log that another process is still writing
(SQLite's WAL gives it a consistent snapshot up to the writer's last commit) and a log left behind
by a killed process (SQLite replays or ignores the unfinished part of the WAL).
"""

from __future__ import annotations

import json
import math
import os
import re
import socket
import sqlite3
import stat
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from netdoctor.errors import RunLogError
from netdoctor.runlog.run_data import EpochRecord, Event, ParamInfo, RunData, SiteInfo
from netdoctor.runlog.schema import (
    APPLICATION_ID,
    OLDEST_READABLE_SCHEMA,
    RANK_TABLE,
    SCHEMA_VERSION,
    TABLES,
    ActStat,
    ParamStat,
    RankField,
    RunStatus,
    StepField,
)

_SQLITE_MAGIC = b"SQLite format 3\x00"


def open_run(path: str | Path) -> RunData:
    """Load the run log at ``path``; raise RunLogError naming the file and the problem."""
    path = Path(path)
    _check_file(path)
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise RunLogError(path, f"cannot open the file ({exc})") from None
    try:
        return _load(conn, path)
    except sqlite3.DatabaseError as exc:
        raise RunLogError(path, f"unreadable or truncated run log ({exc})") from None
    except (ValueError, TypeError, OverflowError, MemoryError) as exc:
        # The checks below name what is wrong where they can; this is the net under them, so
        # that a value nobody thought of still ends in one line and exit 2, not a traceback.
        raise RunLogError(path, f"corrupt run log ({type(exc).__name__}: {exc})") from None
    finally:
        conn.close()


def _check_file(path: Path) -> None:
    """Only a regular file gets opened: a FIFO would block the reader, a device never ends."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise RunLogError(path, "no such file") from None
    except OSError as exc:  # a symlink loop, a path through a file, no permission
        raise RunLogError(path, f"cannot read the file ({exc.strerror})") from None
    if stat.S_ISDIR(mode):
        raise RunLogError(path, "is a directory, not a run log")
    if not stat.S_ISREG(mode):
        raise RunLogError(path, "not a regular file (a pipe or a device), not a run log")
    try:
        with path.open("rb") as fh:
            head = fh.read(len(_SQLITE_MAGIC))
    except OSError as exc:
        raise RunLogError(path, f"cannot read the file ({exc.strerror})") from None
    if not head:
        raise RunLogError(path, "empty file, not a run log")
    if head != _SQLITE_MAGIC:
        raise RunLogError(path, "not a netdoctor run log (not an SQLite database)")


def _load(conn: sqlite3.Connection, path: Path) -> RunData:
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if app_id != APPLICATION_ID:
        raise RunLogError(path, "an SQLite database, but not a netdoctor run log")
    if version > SCHEMA_VERSION:
        raise RunLogError(
            path,
            f"written by a newer netdoctor (log schema {version}; this version reads up to "
            f"{SCHEMA_VERSION}): upgrade netdoctor",
        )
    if version < OLDEST_READABLE_SCHEMA:
        raise RunLogError(path, f"log schema {version} is too old for this netdoctor")
    present = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    missing = [t for t in TABLES if t not in present]
    if missing:
        raise RunLogError(
            path, f"incomplete run log: table {missing[0]!r} is missing (writer stopped early?)"
        )

    meta = _load_meta(conn, path)
    sites = tuple(_load_sites(conn, path))
    params = tuple(_load_params(conn, path))
    steps, lrs = _load_steps(conn, path)
    sample_steps, act, param = _load_samples(conn, path, len(sites), len(params), version)
    epochs = tuple(_load_epochs(conn, path))
    events = tuple(_load_events(conn))
    ranks = _load_ranks(conn, path) if RANK_TABLE in present else {}
    meta["_writer_alive"] = _writer_alive(meta)
    return RunData(
        path=str(path),
        meta=meta,
        sites=sites,
        params=params,
        steps=steps,
        lrs=lrs,
        sample_steps=sample_steps,
        act=act,
        param=param,
        epochs=epochs,
        events=events,
        ranks=MappingProxyType(ranks),
    )


def _json(text: Any, path: Path, where: str) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        raise RunLogError(path, f"corrupt JSON in {where}") from None


def _load_meta(conn: sqlite3.Connection, path: Path) -> dict[str, Any]:
    return {
        _text(key): _inert(_json(value, path, f"meta[{_text(key)!r}]"))
        for key, value in conn.execute("SELECT key, value FROM meta")
    }


def _shape(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
        shape = tuple(int(v) for v in value)
    except (TypeError, ValueError, OverflowError):
        return None
    # a shape is a short list of sizes; anything else is not worth showing
    return shape if len(shape) <= 16 and all(0 <= v < 1 << 40 for v in shape) else None


#: C0 and C1 control characters and DEL: a layer name holding an ANSI escape must not drive
#: the user's terminal, whichever view (report, TUI, JSON piped to a pager) shows it.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _text(value: Any) -> str:
    """A name or label for display: whatever SQLite holds, as inert text."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = "" if value is None else str(value)
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _inert(value: Any) -> Any:
    """A JSON value from the log with every string made inert (see ``_text``)."""
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, list):
        return [_inert(v) for v in value]
    if isinstance(value, dict):
        return {_text(k): _inert(v) for k, v in value.items()}
    return value


def _int(value: Any, path: Path, where: str, low: int = 0, high: int = 1 << 53) -> int:
    """An integer column that indexes or counts something: anything else is corruption."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise RunLogError(path, f"corrupt {where}: {value!r} is not a valid number here")
    return value


def _dense(indexes: list[int], path: Path, table: str) -> None:
    """Rows of ``sites``/``params`` are columns of the sample matrices: exactly 0..n-1."""
    if indexes != list(range(len(indexes))):
        raise RunLogError(path, f"corrupt {table} table: its rows are not numbered 0..n-1")


def _load_sites(conn: sqlite3.Connection, path: Path) -> list[SiteInfo]:
    rows = conn.execute(
        "SELECT idx, name, module, module_type, role, family, forward_order, shape "
        "FROM sites ORDER BY idx"
    )
    sites = [
        SiteInfo(
            _int(i, path, "sites.idx"), _text(n), _text(m), _text(t), _text(r), _text(f),
            o if isinstance(o, int) and not isinstance(o, bool) and 0 <= o < 1 << 53 else None,
            _shape(s),
        )
        for i, n, m, t, r, f, o, s in rows
    ]
    _dense([s.idx for s in sites], path, "sites")
    return sites


def _load_params(conn: sqlite3.Connection, path: Path) -> list[ParamInfo]:
    rows = conn.execute(
        "SELECT idx, name, module, shape, numel, trainable, in_optimizer FROM params ORDER BY idx"
    )
    params = [
        ParamInfo(
            _int(i, path, "params.idx"), _text(n), _text(m), _shape(s) or (),
            _int(k, path, f"params.numel of {_text(n)!r}"), bool(t), bool(o),
        )
        for i, n, m, s, k, t, o in rows
    ]
    _dense([p.idx for p in params], path, "params")
    return params


def _blob(data: bytes, dtype: str, shape: tuple[int, ...], path: Path, where: str) -> np.ndarray:
    expected = int(np.prod(shape)) * np.dtype(dtype).itemsize
    if not isinstance(data, bytes) or len(data) != expected:
        raise RunLogError(path, f"corrupt data in {where}: size does not match its shape")
    return np.frombuffer(data, dtype=dtype).reshape(shape)


def _load_steps(conn: sqlite3.Connection, path: Path) -> tuple[np.ndarray, np.ndarray]:
    width = len(StepField)
    chunks, lr_chunks, max_groups = [], [], 1
    for first, n, groups, steps, lrs in conn.execute(
        "SELECT first_step, n, n_groups, steps, lrs FROM step_chunks ORDER BY first_step"
    ):
        where = f"step_chunks (first step {first!r})"
        n = _int(n, path, where, high=1 << 32)
        groups = _int(groups, path, where, low=1, high=1 << 16)
        chunks.append(_blob(steps, "<f8", (n, width), path, where))
        lr_chunks.append(_blob(lrs, "<f8", (n, groups), path, where))
        max_groups = max(max_groups, groups)
    if not chunks:
        return np.zeros((0, width)), np.zeros((0, 1))
    steps_arr = np.concatenate(chunks)
    numbers = steps_arr[:, StepField.STEP]
    if not (np.isfinite(numbers).all() and (np.diff(numbers) > 0).all()
            and (numbers >= 0).all() and (numbers == np.round(numbers)).all()):
        raise RunLogError(path, "corrupt step_chunks: step numbers are not increasing integers")
    flags = steps_arr[:, StepField.FLAGS]
    bad = ~np.isfinite(flags) | (flags < 0) | (flags >= 1 << 31)
    steps_arr[bad, StepField.FLAGS] = 0  # flags are hints; a damaged one means "none known"
    lrs_arr = np.full((steps_arr.shape[0], max_groups), math.nan)
    row = 0
    for chunk in lr_chunks:
        lrs_arr[row : row + chunk.shape[0], : chunk.shape[1]] = chunk
        row += chunk.shape[0]
    return steps_arr, lrs_arr


#: Ranks a log may name: far more processes than any job has, far fewer than a corrupt integer.
_MAX_RANK = 1 << 24


def _load_ranks(conn: sqlite3.Connection, path: Path) -> dict[int, np.ndarray]:
    """Per-rank rows of a distributed run, each rank's chunks joined in step order."""
    width = len(RankField)
    chunks: dict[int, list[np.ndarray]] = {}
    for rank, first, n, rows in conn.execute(
        "SELECT rank, first_step, n, rows FROM rank_chunks ORDER BY rank, first_step"
    ):
        where = f"rank_chunks (rank {rank!r}, first step {first!r})"
        rank = _int(rank, path, where, high=_MAX_RANK)
        n = _int(n, path, where, high=1 << 32)
        chunks.setdefault(rank, []).append(_blob(rows, "<f8", (n, width), path, where))
    ranks = {}
    for rank, parts in chunks.items():
        rows = np.concatenate(parts)
        numbers = rows[:, RankField.STEP]
        if not (np.isfinite(numbers).all() and (np.diff(numbers) > 0).all()
                and (numbers >= 0).all() and (numbers == np.round(numbers)).all()):
            raise RunLogError(
                path, f"corrupt rank_chunks: step numbers of rank {rank} are not increasing")
        flags = rows[:, RankField.FLAGS]
        bad = ~np.isfinite(flags) | (flags < 0) | (flags >= 1 << 31)
        rows[bad, RankField.FLAGS] = 0  # flags are hints; a damaged one means "none known"
        ranks[rank] = rows
    return ranks


def _load_samples(
    conn: sqlite3.Connection, path: Path, n_sites: int, n_params: int, version: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    steps, acts, params = [], [], []
    for step, ns, np_, act, param in conn.execute(
        "SELECT step, n_sites, n_params, act, param FROM samples ORDER BY step"
    ):
        if ns != n_sites or np_ != n_params:
            raise RunLogError(path, f"corrupt sample at step {step}: layer count does not match")
        where = f"samples (step {step!r})"
        step = _int(step, path, where)
        acts.append(_blob(act, "<f4", (n_sites, len(ActStat)), path, where))
        params.append(_param_blob(param, n_params, version, path, where))
        steps.append(int(step))
    if not steps:
        return (
            np.zeros(0, dtype=np.int64),
            np.zeros((0, n_sites, len(ActStat)), dtype=np.float32),
            np.zeros((0, n_params, len(ParamStat)), dtype=np.float32),
        )
    return np.array(steps, dtype=np.int64), np.stack(acts), np.stack(params)


#: Columns of the param matrix per schema version (later versions only append columns).
_PARAM_WIDTH = {1: 4}


def _param_blob(data: bytes, n_params: int, version: int, path: Path, where: str) -> np.ndarray:
    """The (n_params, len(ParamStat)) matrix; columns an older log lacks are NaN."""
    width = _PARAM_WIDTH.get(version, len(ParamStat))
    stored = _blob(data, "<f4", (n_params, width), path, where)
    if width == len(ParamStat):
        return stored
    full = np.full((n_params, len(ParamStat)), np.nan, dtype=np.float32)
    full[:, :width] = stored
    return full


def _load_epochs(conn: sqlite3.Connection, path: Path) -> list[EpochRecord]:
    records = []
    rows = conn.execute("SELECT epoch, step, metrics FROM epochs ORDER BY epoch")
    for epoch, step, metrics in rows:
        values = _json(metrics, path, f"epochs (epoch {epoch})")
        if not isinstance(values, dict):
            raise RunLogError(path, f"corrupt metrics in epochs (epoch {epoch})")
        clean = {
            str(k): float(v) for k, v in values.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)
        }
        where = f"epochs (epoch {epoch!r})"
        records.append(EpochRecord(_int(epoch, path, where), _int(step, path, where), clean))
    return records


def _load_events(conn: sqlite3.Connection) -> list[Event]:
    """Events are notes for people: a damaged one is shown as it is, never fatal."""
    events = []
    for step, kind, layer, message, data in conn.execute(
        "SELECT step, kind, layer, message, data FROM events ORDER BY id"
    ):
        try:
            payload = _inert(json.loads(data))
        except (TypeError, ValueError):
            payload = {}
        events.append(
            Event(
                step if isinstance(step, int) and not isinstance(step, bool) else None,
                _text(kind),
                None if layer is None else _text(layer),
                _text(message),
                payload if isinstance(payload, dict) else {},
            )
        )
    return events


def _writer_alive(meta: dict[str, Any]) -> bool:
    if meta.get("status", RunStatus.RUNNING.value) != RunStatus.RUNNING.value:
        return False
    pid, host = meta.get("pid"), meta.get("host")
    if not isinstance(pid, int) or host != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
