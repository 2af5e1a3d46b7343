"""What the reader hands to rules and views: a run as typed records plus numpy arrays.

Rules are pure functions of a ``RunData``; they never touch SQLite. The helpers here answer the
questions several rules ask ("the per-layer gradient norms in forward order", "the epoch series of
val_loss") so that each rule states its logic, not its bookkeeping.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from netdoctor.runlog.schema import ActStat, ParamStat, RankField, RunStatus, StepField, StepFlag


@dataclass(frozen=True, slots=True)
class SiteInfo:
    """A place where activations are measured: a module's output, or its input."""

    idx: int
    name: str
    module: str
    module_type: str
    role: str  # "output" | "input"
    family: str  # capture.sites.Family value
    forward_order: int | None
    shape: tuple[int, ...] | None


@dataclass(frozen=True, slots=True)
class ParamInfo:
    idx: int
    name: str
    module: str
    shape: tuple[int, ...]
    numel: int
    trainable: bool
    in_optimizer: bool


@dataclass(frozen=True, slots=True)
class EpochRecord:
    epoch: int
    step: int
    metrics: dict[str, float]

    def get(self, key: str) -> float:
        """The metric, or NaN when this epoch did not report it."""
        return self.metrics.get(key, math.nan)


@dataclass(frozen=True, slots=True)
class Event:
    """Something the capture side noticed once: the first non-finite value, a disabled probe."""

    step: int | None
    kind: str
    layer: str | None
    message: str
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class LayerGrads:
    """Gradient norms of one module's parameters combined, on every sampled step."""

    module: str
    param_idx: tuple[int, ...]
    numel: int
    norms: np.ndarray  # (m,) L2 norm over the module's gradients; NaN where none

    @property
    def rms(self) -> np.ndarray:
        """Root-mean-square gradient entry: the norm made comparable across layer sizes."""
        return self.norms / math.sqrt(max(self.numel, 1))


@dataclass(frozen=True)
class RunData:
    """One run log, fully loaded. Arrays are read-only views; do not mutate."""

    path: str
    meta: dict[str, Any]
    sites: tuple[SiteInfo, ...]
    params: tuple[ParamInfo, ...]
    steps: np.ndarray  # (n, len(StepField)) float64
    lrs: np.ndarray  # (n, groups) float64, NaN-padded
    sample_steps: np.ndarray  # (m,) int64
    act: np.ndarray  # (m, n_sites, len(ActStat)) float32
    param: np.ndarray  # (m, n_params, len(ParamStat)) float32
    epochs: tuple[EpochRecord, ...]
    events: tuple[Event, ...]
    #: Distributed runs: rank -> (n, len(RankField)) float64 rows in step order, every rank
    #: that reported (rank 0 too). Empty for single-process runs and logs older than the table.
    ranks: Mapping[int, np.ndarray] = field(default_factory=lambda: MappingProxyType({}))
    _cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    # ---- per-step series -------------------------------------------------------------------
    @property
    def n_steps(self) -> int:
        return int(self.steps.shape[0])

    def series(self, name: StepField) -> np.ndarray:
        return self.steps[:, name]

    @property
    def step_numbers(self) -> np.ndarray:
        return self.steps[:, StepField.STEP].astype(np.int64)

    @property
    def loss(self) -> np.ndarray:
        """Loss per step; NaN where no loss was given (see ``has_loss``) or it was NaN."""
        return self.steps[:, StepField.LOSS]

    @property
    def has_loss(self) -> np.ndarray:
        return (self.flags & StepFlag.NO_LOSS) == 0

    @property
    def grad_norm(self) -> np.ndarray:
        return self.steps[:, StepField.GRAD_NORM]

    @property
    def flags(self) -> np.ndarray:
        return self.steps[:, StepField.FLAGS].astype(np.int64)

    # ---- run facts ---------------------------------------------------------------------------
    @property
    def status(self) -> RunStatus:
        try:
            return RunStatus(self.meta.get("status", RunStatus.RUNNING.value))
        except ValueError:
            return RunStatus.RUNNING

    @property
    def writer_alive(self) -> bool:
        """Whether the process that writes this log still runs (same host only)."""
        return bool(self.meta.get("_writer_alive", False))

    @property
    def finished(self) -> bool:
        return self.status is not RunStatus.RUNNING

    @property
    def task(self) -> dict[str, Any]:
        """What the run says about its task: ``num_classes``, ``chance_loss`` (may be empty)."""
        value = self.meta.get("task") or {}
        return value if isinstance(value, dict) else {}

    # ---- sampled layer statistics ------------------------------------------------------------
    def act_stat(self, stat: ActStat) -> np.ndarray:
        """(m, n_sites) one activation statistic on every sampled step."""
        return self.act[:, :, stat]

    def param_stat(self, stat: ParamStat) -> np.ndarray:
        """(m, n_params) one parameter statistic on every sampled step."""
        return self.param[:, :, stat]

    def sites_in_forward_order(self, role: str | None = None) -> list[SiteInfo]:
        chosen = [s for s in self.sites if s.forward_order is not None]
        if role is not None:
            chosen = [s for s in chosen if s.role == role]
        return sorted(chosen, key=lambda s: s.forward_order or 0)

    def module_order(self) -> dict[str, int]:
        """Forward order of each module: where its first site was first called."""
        order: dict[str, int] = {}
        for site in self.sites_in_forward_order():
            order.setdefault(site.module, site.forward_order or 0)
        return order

    def layer_grads(self, trainable_only: bool = True) -> list[LayerGrads]:
        """Per-module gradient norms, modules in forward order (never-called modules last)."""
        key = f"layer_grads:{trainable_only}"
        if key in self._cache:
            return self._cache[key]
        by_module: dict[str, list[ParamInfo]] = {}
        for p in self.params:
            if trainable_only and not p.trainable:
                continue
            by_module.setdefault(p.module, []).append(p)
        order = self.module_order()
        modules = sorted(by_module, key=lambda m: (order.get(m, 1 << 30), by_module[m][0].idx))
        norms = self.param_stat(ParamStat.GRAD_NORM).astype(np.float64)
        has = self.param_stat(ParamStat.HAS_GRAD) > 0.5
        result = []
        for module in modules:
            idx = tuple(p.idx for p in by_module[module])
            sq = np.where(has[:, idx], norms[:, idx] ** 2, 0.0).sum(axis=1)
            any_grad = has[:, idx].any(axis=1)
            combined = np.where(any_grad, np.sqrt(sq), np.nan)
            numel = sum(p.numel for p in by_module[module])
            result.append(LayerGrads(module, idx, numel, combined))
        self._cache[key] = result
        return result

    # ---- epochs ------------------------------------------------------------------------------
    def epoch_series(self, key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(epochs, steps, values) for the epochs that reported ``key``."""
        rows = [(e.epoch, e.step, e.metrics[key]) for e in self.epochs if key in e.metrics]
        if not rows:
            empty = np.zeros(0)
            return empty.astype(np.int64), empty.astype(np.int64), empty
        arr = np.array(rows, dtype=np.float64)
        return arr[:, 0].astype(np.int64), arr[:, 1].astype(np.int64), arr[:, 2]

    def train_loss_by_epoch(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Train loss per epoch: as reported, else the mean step loss over the epoch's steps."""
        epochs, steps, values = self.epoch_series("train_loss")
        if len(values) == len(self.epochs) or not self.epochs:
            return epochs, steps, values
        step_no = self.step_numbers
        loss = self.loss
        rows = []
        previous = -1
        for e in self.epochs:
            if "train_loss" in e.metrics:
                value = e.metrics["train_loss"]
            else:
                mask = (step_no > previous) & (step_no <= e.step) & self.has_loss
                value = float(np.mean(loss[mask])) if mask.any() else math.nan
            rows.append((e.epoch, e.step, value))
            previous = e.step
        arr = np.array(rows, dtype=np.float64)
        return arr[:, 0].astype(np.int64), arr[:, 1].astype(np.int64), arr[:, 2]

    def events_of(self, kind: str) -> list[Event]:
        return [e for e in self.events if e.kind == kind]

    # ---- distributed runs ----------------------------------------------------------------------
    @property
    def world_size(self) -> int:
        """Processes in the run (1 unless it ran under torchrun/DDP)."""
        value = self.meta.get("world_size", 1)
        return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 1

    def rank_series(self, rank: int, name: RankField) -> tuple[np.ndarray, np.ndarray]:
        """(steps, values) of one per-rank field; empty arrays for a rank that sent nothing."""
        rows = self.ranks.get(rank)
        if rows is None:
            empty = np.zeros(0)
            return empty.astype(np.int64), empty
        return rows[:, RankField.STEP].astype(np.int64), rows[:, name]

    def rank_events(self, what: str) -> list[Event]:
        """Events about other ranks (kind 'rank') whose ``data['type']`` is ``what``: 'nonfinite'
        (a rank's first non-finite value), 'end' (how a rank ended), 'silent' (no end seen)."""
        return [e for e in self.events if e.kind == "rank" and e.data.get("type") == what]
