"""Write a run log from a background thread, one SQLite transaction per flush.

Why a thread: SQLite commits cost milliseconds, and the training loop should not wait for them.
The capture side hands over numpy arrays (already copied off the device) and returns at once.

Why it never raises into training: a full disk or a vanished directory must not kill a run that
is otherwise fine. The first write error is kept, reported once as a warning, and later writes
are dropped; everything committed before stays readable.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import sqlite3
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from netdoctor.errors import NetdoctorError
from netdoctor.runlog.run_data import ParamInfo, SiteInfo
from netdoctor.runlog.schema import APPLICATION_ID, DDL, SCHEMA_VERSION, RunStatus

try:  # POSIX only; elsewhere two writers on one path are not detected.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


_Op = Callable[[sqlite3.Connection], None]
_COMMIT = object()
_STOP = object()


def _remove_orphan_side_files(path: Path) -> None:
    """Delete side files that a process killed while creating this log left behind.

    Only files whose creator is gone are removed: a live process may be creating its own.
    """
    for side in path.parent.glob(f".{path.name}.*.new*"):
        pid_text = side.name[len(path.name) + 2:].split(".", 1)[0]
        if not pid_text.isdigit() or int(pid_text) == os.getpid() or _alive(int(pid_text)):
            continue
        with contextlib.suppress(OSError):
            side.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


class RunLogWriter:
    """Owns one run log file for the lifetime of a run."""

    def __init__(self, path: str | Path, meta: dict[str, Any]) -> None:
        self.path = Path(path)
        self._lock_fd: int | None = None
        self._error: str | None = None
        self._closed = False
        self._queue: queue.Queue[Any] = queue.Queue()
        self._conn = self._create(meta)
        self._thread = threading.Thread(target=self._run, name="netdoctor-writer", daemon=True)
        self._thread.start()

    # ---- creation (synchronous: bad paths fail before the first training step) ---------------
    def _create(self, meta: dict[str, Any]) -> sqlite3.Connection:
        path = self.path
        if path.exists() and path.is_dir():
            raise NetdoctorError(f"{path}: log path is a directory; give a file name")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise NetdoctorError(
                f"{path}: cannot create the log directory ({exc.strerror})") from None
        if path.exists():
            self._take_lock(path, replacing=True)
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(f"{path}{suffix}")
            self._release_lock()
        # The schema is made in a side file and renamed into place: a process killed at any
        # moment leaves either no log at all or a complete, empty one, never a half-made file.
        _remove_orphan_side_files(path)
        fresh = path.with_name(f".{path.name}.{os.getpid()}.new")
        conn: sqlite3.Connection | None = None
        try:
            conn = sqlite3.connect(str(fresh), isolation_level=None)
            conn.executescript(
                f"BEGIN; PRAGMA application_id={APPLICATION_ID};"
                f" PRAGMA user_version={SCHEMA_VERSION};" + DDL
            )
            _put_meta(conn, {**meta, "status": RunStatus.RUNNING.value})
            conn.execute("COMMIT")
            conn.close()
            os.replace(fresh, path)
            conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        except (sqlite3.Error, OSError) as exc:
            if conn is not None:
                conn.close()
            for leftover in (fresh, Path(f"{fresh}-journal")):
                with contextlib.suppress(OSError):
                    leftover.unlink()
            detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise NetdoctorError(f"{path}: cannot create the run log ({detail})") from None
        try:
            self._take_lock(path, replacing=False)
        except NetdoctorError:
            conn.close()
            raise
        return conn

    def _take_lock(self, path: Path, replacing: bool) -> None:
        if fcntl is None:
            return
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError as exc:
            raise NetdoctorError(f"{path}: cannot open the run log ({exc.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            verb = "replace it" if replacing else "write it"
            raise NetdoctorError(
                f"{path}: another process is writing this run log; cannot {verb}"
            ) from None
        self._lock_fd = fd

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor drops the flock
            self._lock_fd = None

    # ---- public, non-blocking ----------------------------------------------------------------
    @property
    def error(self) -> str | None:
        """The first write error, if writing stopped; None while all is well."""
        return self._error

    def put_meta(self, items: dict[str, Any]) -> None:
        self._queue.put(lambda c: _put_meta(c, items))

    def put_structure(self, sites: Sequence[SiteInfo], params: Sequence[ParamInfo]) -> None:
        site_rows = [
            (s.idx, s.name, s.module, s.module_type, s.role, s.family, s.forward_order,
             None if s.shape is None else json.dumps(list(s.shape)))
            for s in sites
        ]
        param_rows = [
            (p.idx, p.name, p.module, json.dumps(list(p.shape)), p.numel, int(p.trainable),
             int(p.in_optimizer))
            for p in params
        ]

        def op(c: sqlite3.Connection) -> None:
            c.executemany("INSERT OR REPLACE INTO sites VALUES (?,?,?,?,?,?,?,?)", site_rows)
            c.executemany("INSERT OR REPLACE INTO params VALUES (?,?,?,?,?,?,?)", param_rows)

        self._queue.put(op)

    def put_steps(self, steps: np.ndarray, lrs: np.ndarray) -> None:
        """Append rows of ``StepField`` values (float64) and the learning rate of every group."""
        if steps.shape[0] == 0:
            return
        first = int(steps[0, 0])
        row = (first, int(steps.shape[0]), int(lrs.shape[1]),
               np.ascontiguousarray(steps, dtype="<f8").tobytes(),
               np.ascontiguousarray(lrs, dtype="<f8").tobytes())
        self._queue.put(lambda c: c.execute(
            "INSERT OR REPLACE INTO step_chunks VALUES (?,?,?,?,?)", row))

    def put_rank_rows(self, rank: int, rows: np.ndarray) -> None:
        """Append one rank's rows of ``RankField`` values (float64) for consecutive steps."""
        if rows.ndim != 2 or rows.shape[0] == 0:
            return
        row = (int(rank), int(rows[0, 0]), int(rows.shape[0]),
               np.ascontiguousarray(rows, dtype="<f8").tobytes())
        self._queue.put(lambda c: c.execute(
            "INSERT OR REPLACE INTO rank_chunks VALUES (?,?,?,?)", row))

    def put_sample(self, step: int, act: np.ndarray, param: np.ndarray) -> None:
        row = (int(step), int(act.shape[0]), int(param.shape[0]),
               np.ascontiguousarray(act, dtype="<f4").tobytes(),
               np.ascontiguousarray(param, dtype="<f4").tobytes())
        self._queue.put(lambda c: c.execute(
            "INSERT OR REPLACE INTO samples VALUES (?,?,?,?,?)", row))

    def put_epoch(self, epoch: int, step: int, metrics: dict[str, float]) -> None:
        row = (int(epoch), int(step), json.dumps({k: float(v) for k, v in metrics.items()}))
        self._queue.put(lambda c: c.execute(
            "INSERT OR REPLACE INTO epochs VALUES (?,?,?)", row))

    def put_event(
        self, step: int | None, kind: str, layer: str | None, message: str,
        data: dict[str, Any] | None = None,
    ) -> None:
        row = (step, kind, layer, message, json.dumps(data or {}, default=str))
        self._queue.put(lambda c: c.execute(
            "INSERT INTO events (step, kind, layer, message, data) VALUES (?,?,?,?,?)", row))

    def commit(self) -> None:
        """Make everything put so far one durable transaction (a flush point)."""
        self._queue.put(_COMMIT)

    def close(self, status: RunStatus, message: str | None = None) -> None:
        """Record the end state, commit, stop the thread and release the file. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._thread.is_alive():
            self.put_meta({"status": status.value, "ended_at": time.time(),
                           "end_message": message})
            self._queue.put(_COMMIT)
            self._queue.put(_STOP)
            self._thread.join()
        with contextlib.suppress(sqlite3.Error):
            # A finished log becomes one self-contained file (no -wal/-shm) that can be copied.
            self._conn.execute("PRAGMA journal_mode=DELETE")
        with contextlib.suppress(sqlite3.Error):
            self._conn.close()
        self._release_lock()

    def wait(self) -> None:
        """Block until everything put so far is committed (tests and ``inspect --follow``)."""
        done = threading.Event()
        self._queue.put(_COMMIT)
        self._queue.put(done)
        while self._thread.is_alive() and not done.wait(0.05):
            pass

    # ---- the thread --------------------------------------------------------------------------
    def _run(self) -> None:
        conn = self._conn
        in_txn = False
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if isinstance(item, threading.Event):
                item.set()
                continue
            if self._error is not None:
                continue  # writing stopped after an error: drop, keep training
            try:
                if item is _COMMIT:
                    if in_txn:
                        conn.execute("COMMIT")
                        in_txn = False
                    continue
                if not in_txn:
                    conn.execute("BEGIN")
                    in_txn = True
                item(conn)
            except Exception as exc:  # never let the thread die with the queue still filling
                self._error = str(exc)
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                in_txn = False
                warnings.warn(
                    f"netdoctor: writing {self.path} failed ({exc}); training continues, "
                    "the log keeps what was written before",
                    RuntimeWarning,
                    stacklevel=1,
                )


def _put_meta(conn: sqlite3.Connection, items: dict[str, Any]) -> None:
    conn.executemany(
        "INSERT OR REPLACE INTO meta VALUES (?, ?)",
        [(k, json.dumps(v, default=str)) for k, v in items.items()],
    )
