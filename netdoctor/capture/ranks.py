"""Distributed runs: every rank measures, rank 0 writes the log, the others report to it.

Every rank runs the same Monitor (same probes, same sampling schedule), so netdoctor costs the
same on every rank and cannot itself make a straggler. Only rank 0 owns the log; on the other
ranks the monitor's writer is a :class:`RankForwarder`, which keeps the per-step rank rows
(loss, step time, lead time, non-finite flags, parameter checksum) and the rank's first
non-finite event, drops the per-layer samples (under DDP the gradients, weights and updates are
the same on every rank after the all-reduce, so rank 0's already hold them), and sends one JSON
message per flush to rank 0.

Why the process group's key-value Store and no collectives: a collective in ``monitor.epoch()``
or ``close()`` hangs a script that calls them only on rank 0, and a rank that crashed would
leave the others waiting in it forever. Store calls (``set``, ``check``, ``get`` of a key known
to exist, ``add``, ``delete_key``) never wait for another rank. The protocol, under a key
prefix derived from the ``log`` argument (all ranks agree on it without talking) and a
per-rank count of ``watch()`` calls with that log (a second run in the same job gets fresh keys):

* rank r > 0 writes its messages under ``<prefix>/msg/<r>/<seq>`` (seq 0, 1, 2, ...: a
  ``hello``, then ``rows`` per flush, then one ``end`` with its status and one-line error) and
  bumps ``<prefix>/count``;
* on rank 0 a :class:`RankCollectingWriter` thread polls that counter (one round trip) and, when
  it moved, reads each rank's next keys, writes what they hold into the log and deletes them.
  Being a thread, it records a rank's crash even while rank 0's training thread is blocked in a
  collective waiting for that dead rank, which is exactly when it matters;
* a rank that ends with an exception waits (bounded) for ``<prefix>/ack/<r>``, which rank 0 sets
  once the message is committed to the log: launchers (torchrun, ``mp.spawn``) kill the other
  ranks as soon as one process exits, and the error must reach the log before that.

Without a Store (another backend, a torch without ``_get_default_store``) netdoctor warns once
and falls back: rank 0 logs alone and the other ranks get a :class:`QuietMonitor`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import socket
import threading
import time
import warnings
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from netdoctor.diagnosis import Diagnosis
from netdoctor.runlog.schema import RankField, RunStatus
from netdoctor.runlog.writer import RunLogWriter

#: Seconds any one Store call may take before it fails (our own connection's timeout, not the
#: process group's): a vanished rank 0 must cost a crashing rank seconds, never a hang.
STORE_TIMEOUT_S = 10.0
#: How often rank 0 looks for messages while training (one round trip when there are none).
POLL_SECONDS = 0.25
#: At a normal close, how long rank 0 waits for the other ranks' end messages.
END_WAIT_S = 5.0
#: How long a rank that ends with an error waits for rank 0 to have logged it.
ACK_WAIT_S = 5.0


def rank_and_world() -> tuple[int, int]:
    """(rank, world size) of this process; (0, 1) outside an initialised process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def backend_name() -> str | None:
    with contextlib.suppress(Exception):
        return str(dist.get_backend())
    return None


# ---- the channel: keys and payloads ----------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RankChannel:
    """The Store and the keys one run's ranks use to reach rank 0."""

    store: Any  # torch.distributed.Store (our own connection where the store can clone one)
    prefix: str
    rank: int
    world: int
    # The process group's own store, held while the run lasts: with env:// initialisation the
    # server lives in rank 0's store object, and a script that calls destroy_process_group()
    # before the monitor closes (at exit) must not take it away from the other ranks' reports.
    keepalive: Any = None

    def message_key(self, rank: int, seq: int) -> str:
        return f"{self.prefix}/msg/{rank}/{seq}"

    @property
    def count_key(self) -> str:
        return f"{self.prefix}/count"

    @property
    def collector_key(self) -> str:
        """b"open" while rank 0 collects: a crashing rank waits for its ack only then."""
        return f"{self.prefix}/collector"

    def ack_key(self, rank: int) -> str:
        return f"{self.prefix}/ack/{rank}"


def open_channel(log: str | os.PathLike[str] | None, rank: int, world: int) -> RankChannel | None:
    """The channel for a run logged at ``log`` (the argument as given: every rank passes the
    same one, whatever its working directory or host); None, after one warning on rank 0, when
    the process group has no usable Store."""
    try:
        from torch.distributed import distributed_c10d

        store = distributed_c10d._get_default_store()
    except Exception as exc:  # private API: gone or changed in some torch version
        return _no_store(rank, f"{type(exc).__name__}: {exc}")
    if store is None:
        return _no_store(rank, f"the {backend_name()} process group has none")
    origin = store
    with contextlib.suppress(Exception):
        # Our own connection with a short timeout: never queued behind a blocking wait of the
        # process group's (NCCL's rendezvous), and a dead peer fails fast.
        clone = store.clone()
        clone.set_timeout(timedelta(seconds=STORE_TIMEOUT_S))
        store = clone
    name = "<default>" if log is None else os.fspath(log)
    base = "netdoctor/" + hashlib.sha1(name.encode("utf-8", "replace")).hexdigest()[:16]
    try:
        generation = int(store.add(f"{base}/generation/{rank}", 1))
    except Exception as exc:
        return _no_store(rank, f"{type(exc).__name__}: {exc}")
    return RankChannel(store, f"{base}/{generation}", rank, world, origin)


def _no_store(rank: int, why: str) -> None:
    if rank == 0:
        warnings.warn(
            f"netdoctor: cannot reach the process group's key-value store ({why}); only rank 0 "
            "is logged, the other ranks record nothing", RuntimeWarning, stacklevel=3)
    return None


def _encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, default=str).encode()


def _decode(raw: Any) -> dict[str, Any] | None:
    try:
        value = json.loads(bytes(raw).decode("utf-8"))
    except (TypeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _rows_array(value: Any) -> np.ndarray | None:
    """A message's rows as (n, len(RankField)) float64 with increasing integer steps, or None."""
    try:
        rows = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if rows.ndim != 2 or rows.shape[0] == 0 or rows.shape[1] != len(RankField):
        return None
    steps = rows[:, RankField.STEP]
    if not (np.isfinite(steps).all() and (steps >= 0).all() and (np.diff(steps) > 0).all()):
        return None
    return rows


# ---- what a rank measures about its own steps ------------------------------------------------
class StepClock:
    """Host times of one rank's optimizer steps, and its samples per step.

    A forward hook on the module the user calls (outside ``torch.compile``'s graph: the hook on
    an ``OptimizedModule`` runs in eager code) notes when the training forward ended. At each
    optimizer step: step time = time since the previous step ended; lead time = from the
    previous step's end to the end of this step's last training forward, the rank's own work
    (data loading, forward) before backward's all-reduce makes it wait for the slowest rank.
    """

    def __init__(self, module: nn.Module) -> None:
        self._last_end = time.perf_counter()
        self._forward_end = -math.inf
        self._steps = 0
        self.samples_per_step = 0  # samples in the training forwards of step 0; 0: unknown
        self._handle = module.register_forward_hook(self._hook, with_kwargs=True)

    def _hook(self, module: nn.Module, args: Any, kwargs: Any, output: Any) -> None:
        if torch.compiler.is_compiling():  # traced into a graph: no host time to read there
            return
        if not module.training or not torch.is_grad_enabled():  # validation
            return
        if torch._C._current_graph_task_id() != -1:  # a checkpointed forward re-run in backward
            return
        self._forward_end = time.perf_counter()
        if self._steps == 0:
            first = next((v for v in (*args, *kwargs.values()) if isinstance(v, torch.Tensor)),
                         None)
            if first is not None and first.dim() > 0:
                self.samples_per_step += int(first.shape[0])

    def step_end(self) -> tuple[float, float]:
        """(step time, lead time) of the step that just ended; NaN where not measured."""
        now = time.perf_counter()
        step_time = lead = math.nan
        if self._steps > 0:
            step_time = now - self._last_end
            if self._forward_end > self._last_end:
                lead = self._forward_end - self._last_end
        self._last_end = now
        self._steps += 1
        return step_time, lead

    def remove(self) -> None:
        self._handle.remove()


def parameters_replicated(model: nn.Module) -> bool:
    """Whether every rank holds whole, equal copies of the parameters (DDP), so that their
    checksums can be compared; False under FSDP/DTensor sharding, where each rank holds a shard
    (and a norm of a DTensor would be a collective)."""
    try:
        from torch.distributed.tensor import DTensor
    except ImportError:  # pragma: no cover - very old torch
        DTensor = ()  # type: ignore[assignment,misc]  # isinstance(p, ()) is False
    if any(type(m).__name__ == "FullyShardedDataParallel" for m in model.modules()):  # FSDP1
        return False
    return not any(isinstance(p, DTensor) or p.numel() == 0 for p in model.parameters())


def replica_checksum(params: list[torch.Tensor], dtype: torch.dtype,
                     device: torch.device) -> torch.Tensor:
    """Sum of squares of every parameter (0-d, on ``device``, no host sync). A float64 sum of
    squares of float32 values is exact per term, so equal replicas give equal sums."""
    if not params:
        return torch.zeros((), dtype=dtype, device=device)
    with torch.no_grad():
        norms = torch._foreach_norm([p.detach() for p in params], 2, dtype=dtype)
        return torch.stack([n.to(device) for n in norms]).square().sum()


@dataclass(frozen=True, slots=True)
class RankSetup:
    """What a Monitor needs to know about the distributed run it is part of."""

    rank: int
    world: int
    clock: StepClock
    replicated: bool


# ---- ranks other than 0 --------------------------------------------------------------------
class RankForwarder:
    """The writer of a rank other than 0: the RunLogWriter's methods, sending to rank 0.

    Per commit (the monitor's flush) one message with the rank rows and the first non-finite
    event; per-layer samples, structure and epochs are dropped (rank 0 has them). At close one
    ``end`` message; after a crash, wait until rank 0 has logged it (see the module docstring).
    A Store that fails is reported once, then the rank stops sending and trains on.
    """

    def __init__(self, channel: RankChannel, path: Path, hello: dict[str, Any]) -> None:
        self.path = path
        self._channel = channel
        self._seq = 0
        self._rows: list[np.ndarray] = []
        self._events: list[dict[str, Any]] = []
        self._info: dict[str, Any] = {}
        self._last_step = -1
        self._error: str | None = None
        self._closed = False
        self._send({"type": "hello", **hello})

    @property
    def error(self) -> str | None:
        """Why sending stopped; None while all is well."""
        return self._error

    # the RunLogWriter methods that carry nothing rank 0 needs from this rank
    def put_meta(self, items: dict[str, Any]) -> None:
        """Rank 0's log holds the run's facts."""

    def put_structure(self, sites: Any, params: Any) -> None:
        """Same model on every rank: rank 0 has the structure."""

    def put_steps(self, steps: np.ndarray, lrs: np.ndarray) -> None:
        """This rank's steps go as rank rows (put_rank_rows)."""

    def put_sample(self, step: int, act: np.ndarray, param: np.ndarray) -> None:
        """Per-layer samples stay here: after DDP's all-reduce rank 0's are everyone's."""

    def put_epoch(self, epoch: int, step: int, metrics: dict[str, float]) -> None:
        """Epoch metrics are rank 0's to log (scripts often compute them on rank 0 only)."""

    def put_rank_rows(self, rank: int, rows: np.ndarray,
                      info: dict[str, Any] | None = None) -> None:
        if rows.shape[0]:
            self._rows.append(np.asarray(rows, dtype=np.float64))
            self._last_step = int(rows[-1, RankField.STEP])
        if info:
            self._info.update(info)

    def put_event(self, step: int | None, kind: str, layer: str | None, message: str,
                  data: dict[str, Any] | None = None) -> None:
        if kind == "nonfinite":  # where a NaN entered on this rank: the rank-specific event
            self._events.append({"step": step, "layer": layer, "message": message,
                                 "data": data or {}})

    def commit(self) -> None:
        if not self._rows and not self._events and not self._info:
            return
        message: dict[str, Any] = {"type": "rows", "events": self._events, "info": self._info}
        message["rows"] = np.concatenate(self._rows).tolist() if self._rows else []
        self._rows, self._events, self._info = [], [], {}
        self._send(message)

    def wait(self) -> None:
        """Nothing is queued here: every message is sent when committed."""

    def close(self, status: RunStatus, message: str | None = None) -> None:
        if self._closed:
            return
        self._closed = True
        self.commit()
        self._send({"type": "end", "status": status.value, "message": message,
                    "last_step": self._last_step if self._last_step >= 0 else None})
        if status is RunStatus.CRASHED and self._error is None:
            self._wait_for_ack()

    def _send(self, message: dict[str, Any]) -> None:
        if self._error is not None:
            return
        channel = self._channel
        try:
            channel.store.set(channel.message_key(channel.rank, self._seq), _encode(message))
            channel.store.add(channel.count_key, 1)
        except Exception as exc:
            self._error = f"{type(exc).__name__}: {exc}"
            warnings.warn(
                f"netdoctor: rank {channel.rank} cannot reach rank 0 through the store "
                f"({self._error}); its statistics are no longer sent", RuntimeWarning,
                stacklevel=2)
            return
        self._seq += 1

    def _wait_for_ack(self) -> None:
        """Until rank 0 logged our end, it stopped collecting, or ACK_WAIT_S passed."""
        channel = self._channel
        store = channel.store
        deadline = time.monotonic() + ACK_WAIT_S
        with contextlib.suppress(Exception):  # a Store that fails: nobody to wait for
            while time.monotonic() < deadline:
                if store.check([channel.ack_key(channel.rank)]):
                    return
                if not store.check([channel.collector_key]):
                    return  # rank 0 never watched
                if bytes(store.get(channel.collector_key)) != b"open":
                    return  # rank 0 closed before it read our end
                time.sleep(0.02)


# ---- rank 0 ----------------------------------------------------------------------------------
class RankCollectingWriter(RunLogWriter):
    """Rank 0's writer: the run log, plus a thread that writes what the other ranks report.

    The other ranks' rows go to ``rank_chunks``; their first non-finite events and how each one
    ended go to ``events`` (kind 'rank', ``data['type']`` 'nonfinite' | 'end' | 'silent', with
    ``data['rank']``); their hosts and samples per step to ``meta['distributed']``. At a normal
    close rank 0 waits up to ``END_WAIT_S`` for the end of every rank that said hello; a rank
    that never did (a script that watches on rank 0 only) is not waited for.
    """

    def __init__(self, path: str | Path, meta: dict[str, Any], channel: RankChannel) -> None:
        super().__init__(path, meta)
        self._channel = channel
        self._lock = threading.Lock()
        self._distributed: dict[str, Any] = dict(meta.get("distributed") or {})
        self._ranks: dict[int, dict[str, Any]] = {0: {"host": socket.gethostname(),
                                                      "pid": os.getpid()}}
        self._next = dict.fromkeys(range(1, channel.world), 0)
        self._seen = 0
        self._hello: set[int] = set()
        self._ended: set[int] = set()
        self._last_step: dict[int, int] = {}
        self._broken = False
        self._stop = threading.Event()
        self._wait_for_ends = False
        self._guard(lambda: channel.store.set(channel.collector_key, b"open"))
        self._collector = threading.Thread(target=self._collect, name="netdoctor-ranks",
                                           daemon=True)
        self._collector.start()

    def put_rank_rows(self, rank: int, rows: np.ndarray,
                      info: dict[str, Any] | None = None) -> None:
        if rows.ndim == 2 and rows.shape[0]:
            with self._lock:
                self._last_step[rank] = int(rows[-1, RankField.STEP])
        if info:
            self._note_info(rank, info)
        super().put_rank_rows(rank, rows)

    def close(self, status: RunStatus, message: str | None = None) -> None:
        if self._collector.is_alive():
            self._wait_for_ends = status is RunStatus.FINISHED
            self._stop.set()
            self._collector.join()
        super().close(status, message)

    # ---- the collector thread ------------------------------------------------------------------
    def _collect(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            self._poll()
        self._poll()
        deadline = time.monotonic() + (END_WAIT_S if self._wait_for_ends else 0.0)
        while self._hello - self._ended and not self._broken and time.monotonic() < deadline:
            time.sleep(0.02)
            self._poll()
        for rank in sorted(self._hello - self._ended):
            last = self._last_step.get(rank)
            seen = "nothing" if last is None else f"up to step {last}"
            self.put_event(last, "rank", None,
                           f"rank {rank} did not report how it ended (rank 0 heard {seen})",
                           {"rank": rank, "type": "silent", "last_step": last})
        channel = self._channel
        self._guard(lambda: channel.store.set(channel.collector_key, b"closed"))
        self.commit()

    def _poll(self) -> None:
        if self._broken:
            return
        store = self._channel.store
        count = self._guard(lambda: int(store.add(self._channel.count_key, 0)))
        if count is None or count <= self._seen:
            return
        for rank in self._next:
            while not self._broken:
                key = self._channel.message_key(rank, self._next[rank])
                if not self._guard(lambda k=key: store.check([k])):
                    break
                raw = self._guard(lambda k=key: store.get(k))
                if raw is None:
                    break
                with contextlib.suppress(Exception):  # a FileStore cannot delete: keys stay
                    store.delete_key(key)
                self._next[rank] += 1
                self._seen += 1
                self._handle(rank, _decode(raw))

    def _handle(self, rank: int, message: dict[str, Any] | None) -> None:
        if message is None:
            return
        kind = message.get("type")
        if kind == "hello":
            self._hello.add(rank)
            self._note_info(rank, {k: message.get(k) for k in ("host", "pid", "device")})
        elif kind == "rows":
            rows = _rows_array(message.get("rows"))
            if rows is not None:
                self.put_rank_rows(rank, rows)
            for event in message.get("events") or []:
                self._put_nonfinite(rank, event)
            if isinstance(message.get("info"), dict):
                self._note_info(rank, message["info"])
        elif kind == "end":
            self._end(rank, message)
        self.commit()

    def _put_nonfinite(self, rank: int, event: Any) -> None:
        if not isinstance(event, dict):
            return
        step = event.get("step")
        step = step if isinstance(step, int) and not isinstance(step, bool) else None
        data = event.get("data") if isinstance(event.get("data"), dict) else {}
        layer = event.get("layer") if isinstance(event.get("layer"), str) else None
        self.put_event(step, "rank", layer, f"rank {rank}: {event.get('message', '')}",
                       {**data, "rank": rank, "type": "nonfinite"})

    def _end(self, rank: int, message: dict[str, Any]) -> None:
        self._hello.add(rank)
        self._ended.add(rank)
        status = str(message.get("status"))
        text = message.get("message") if isinstance(message.get("message"), str) else None
        last = message.get("last_step")
        last = last if isinstance(last, int) and not isinstance(last, bool) else None
        at = "" if last is None else f" at step {last}"
        summary = {"finished": f"rank {rank} finished{at}",
                   "crashed": f"rank {rank} crashed{at}: {text}",
                   "interrupted": f"rank {rank} was interrupted{at}"}.get(
                       status, f"rank {rank} ended ({status}){at}")
        self.put_event(last, "rank", None, summary,
                       {"rank": rank, "type": "end", "status": status, "message": text,
                        "last_step": last})
        if status != RunStatus.FINISHED.value:
            self.wait()  # committed before the rank is told so: its launcher may kill us next
        channel = self._channel
        self._guard(lambda: channel.store.set(channel.ack_key(rank), b"1"))

    def _note_info(self, rank: int, info: dict[str, Any]) -> None:
        """Per-rank facts (host, pid, device, samples per step) into meta['distributed']."""
        with self._lock:
            entry = self._ranks.setdefault(rank, {})
            entry.update({k: v for k, v in info.items() if v is not None})
            samples = [self._ranks.get(r, {}).get("samples_per_step") for r in
                       range(self._channel.world)]
            distributed = {**self._distributed,
                           "ranks": {str(r): dict(v) for r, v in sorted(self._ranks.items())}}
            if all(isinstance(s, int) and s > 0 for s in samples):
                distributed["global_batch"] = sum(samples)  # type: ignore[arg-type]
            self.put_meta({"distributed": distributed})

    def _guard(self, call: Any) -> Any:
        """A Store call; on failure warn once and stop collecting (training goes on)."""
        if self._broken:
            return None
        try:
            return call()
        except Exception as exc:
            self._broken = True
            warnings.warn(
                f"netdoctor: rank 0 lost the other ranks' reports ({type(exc).__name__}: {exc});"
                " the log keeps what arrived", RuntimeWarning, stacklevel=2)
            return None


# ---- fallback --------------------------------------------------------------------------------
class QuietMonitor:
    """What ``watch()`` returns on ranks other than 0 when there is no Store to report through:
    accepts every call, records nothing."""

    def __init__(self, log_path: Path, rank: int) -> None:
        self.log_path = log_path
        self.rank = rank
        self._closed = False
        self._steps = 0

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def steps(self) -> int:
        return self._steps

    def step(self, loss: Any = None) -> None:
        self._steps += 1

    def epoch(
        self,
        train_loss: Any = None,
        val_loss: Any = None,
        train_acc: Any = None,
        val_acc: Any = None,
        **metrics: Any,
    ) -> None:
        """Same signature as ``Monitor.epoch``; other ranks' metrics are not recorded."""

    def annotate(self, items: dict[str, Any]) -> None:
        """Same as ``Monitor.annotate``; rank 0 writes the meta."""

    def close(self, rules: Any = None, message: str | None = None) -> list[Diagnosis]:
        """Rank 0 holds the diagnoses; here there are none."""
        self._closed = True
        return []

    def __enter__(self) -> QuietMonitor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
