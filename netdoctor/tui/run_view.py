"""What the screen shows, computed from a run and its diagnoses: plain records, no textual.

Widgets get these records and only lay them out, so the numbers on screen can be tested without
a terminal, and a widget never reaches into the run log. Layer rows start from the report's
layer table (``netdoctor.report.layers``), the run facts from its summary: the TUI and the text
report say the same thing about the same run.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from netdoctor.diagnosis import Diagnosis
from netdoctor.report.layers import LayerRow, layer_table
from netdoctor.report.summary import Outcome, summarize
from netdoctor.runlog import RunData
from netdoctor.runlog.schema import ActStat, ParamStat, StepField
from netdoctor.tui.health import Health, HealthBands, worst


@dataclass(frozen=True, slots=True)
class HeaderFacts:
    """The run in one or two lines. None: unknown (not in the log, or nothing measured yet)."""

    name: str
    device: str | None
    outcome: Outcome
    message: str | None  # why it ended, for a crashed or interrupted run
    epoch: int | None  # epochs done
    epochs: int | None  # epochs planned, when the run says
    step: int | None  # last step shown
    total_steps: int | None  # steps planned, when known
    steps_per_s: float | None
    samples_per_s: float | None
    elapsed_s: float | None
    eta_s: float | None


@dataclass(frozen=True)
class LossData:
    """Loss over steps: per step (train) and per epoch (train and validation), plus accuracy."""

    steps: np.ndarray
    loss: np.ndarray  # per step; NaN/Inf kept, the chart marks them
    epoch_steps: np.ndarray
    epoch_train: np.ndarray
    val_steps: np.ndarray
    val_loss: np.ndarray
    train_acc: float | None
    val_acc: float | None
    x_range: tuple[float, float] | None  # the whole run's steps, also when replaying a part


@dataclass(frozen=True)
class LayerView:
    """One row of the layers panel (a site of the layer table) with its history."""

    key: str  # unique per row: the site name
    name: str
    module: str
    module_type: str | None
    grad: float | None  # gradient norm at the last sample (module's output row only)
    update_ratio: float | None  # ||update|| / ||weight|| of its matrices at the last sample
    act_mean: float | None
    act_std: float | None
    dead: float | None  # share of units <= 0 for the whole batch (ReLU family)
    saturated: float | None  # share of values at a bounded activation's limits
    history_steps: np.ndarray  # sampled steps
    grad_history: np.ndarray  # gradient norm per sample (NaN: none)
    update_history: np.ndarray
    mean_history: np.ndarray
    std_history: np.ndarray
    dead_history: np.ndarray
    saturated_history: np.ndarray
    health: Health
    reasons: tuple[str, ...]  # why it is not OK, shortest first


@dataclass(frozen=True)
class GradHeat:
    """Per-layer RMS gradient (norm / sqrt(numel)) on each sampled step, layers in forward order.

    RMS, because a large layer has a large norm for the same per-weight gradient: only RMS lets
    a vanishing first layer stand out against a healthy last one.
    """

    modules: tuple[str, ...]
    steps: np.ndarray  # (m,)
    rms: np.ndarray  # (m, L) NaN where no gradient; +Inf/NaN from a non-finite gradient
    nonfinite: np.ndarray  # (m, L) bool: there was a gradient and it was not finite
    x_range: tuple[float, float] | None


@dataclass(frozen=True)
class RunView:
    header: HeaderFacts
    loss: LossData
    layers: tuple[LayerView, ...]
    heat: GradHeat
    diagnoses: tuple[Diagnosis, ...]
    named: tuple[frozenset[str], ...]  # per diagnosis, the modules it names
    last_sample: int | None
    cursor: int | None  # the step the view is cut at (replay), None: the latest
    extra: dict[str, Any] = field(default_factory=dict)


def build_view(
    run: RunData,
    diagnoses: Sequence[Diagnosis],
    *,
    bands: HealthBands | None = None,
    cursor: int | None = None,
    x_range: tuple[float, float] | None = None,
    name: str | None = None,
) -> RunView:
    """Everything the main screen shows for ``run`` (already cut at ``cursor`` when replaying)."""
    bands = bands or HealthBands()
    named = tuple(named_modules(d, run) for d in diagnoses)
    if x_range is None and run.n_steps:
        x_range = (float(run.step_numbers[0]), float(run.step_numbers[-1]))
    layers = tuple(_layers(run, diagnoses, named, bands))
    return RunView(
        header=header_facts(run, name),
        loss=_loss(run, x_range),
        layers=layers,
        heat=grad_heat(run, x_range),
        diagnoses=tuple(diagnoses),
        named=named,
        last_sample=int(run.sample_steps[-1]) if run.sample_steps.size else None,
        cursor=cursor,
    )


# ---- header ------------------------------------------------------------------------------------
def header_facts(run: RunData, name: str | None = None) -> HeaderFacts:
    summary = summarize(run)
    meta = run.meta
    recipe = meta.get("recipe")
    if isinstance(recipe, dict):
        recipe = recipe.get("name")
    shown = name or (recipe if isinstance(recipe, str) and recipe else Path(run.path).name)
    device = summary.device
    world = _int(meta.get("world_size"))
    if device and world and world > 1:
        device += f" ×{world}"
    steps_per_s = _steps_per_second(run)
    batch = _int(meta.get("batch_size"))
    return HeaderFacts(
        name=shown,
        device=device,
        outcome=summary.outcome,
        message=summary.end_message,
        epoch=len(run.epochs) if run.epochs else None,
        epochs=_int(meta.get("epochs")),
        step=summary.last_step,
        total_steps=_int(meta.get("total_steps")),
        steps_per_s=steps_per_s,
        samples_per_s=steps_per_s * batch if steps_per_s is not None and batch else None,
        elapsed_s=summary.duration_s,
        eta_s=None,
    )


def _steps_per_second(run: RunData) -> float | None:
    times = run.series(StepField.TIME)
    ok = np.isfinite(times)
    if ok.sum() < 2:
        return None
    t, s = times[ok], run.step_numbers[ok]
    span = float(t[-1] - t[0])
    return float(s[-1] - s[0]) / span if span > 0 else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return int(value) if math.isfinite(value) else None


# ---- loss --------------------------------------------------------------------------------------
def _loss(run: RunData, x_range: tuple[float, float] | None) -> LossData:
    given = run.has_loss
    _, e_steps, e_train = run.train_loss_by_epoch()
    _, v_steps, v_loss = run.epoch_series("val_loss")
    return LossData(
        steps=run.step_numbers[given].astype(np.float64),
        loss=run.loss[given],
        epoch_steps=e_steps.astype(np.float64),
        epoch_train=e_train,
        val_steps=v_steps.astype(np.float64),
        val_loss=v_loss,
        train_acc=_last_metric(run, "train_acc"),
        val_acc=_last_metric(run, "val_acc"),
        x_range=x_range,
    )


def _last_metric(run: RunData, key: str) -> float | None:
    _, _, values = run.epoch_series(key)
    finite = values[np.isfinite(values)]
    return float(finite[-1]) if finite.size else None


# ---- layers ------------------------------------------------------------------------------------
def _layers(
    run: RunData,
    diagnoses: Sequence[Diagnosis],
    named: Sequence[frozenset[str]],
    bands: HealthBands,
) -> Iterable[LayerView]:
    table = layer_table(run)
    sites = {s.name: s for s in run.sites}
    grads = {g.module: g for g in run.layer_grads()}
    by_module = _module_params(run)
    steps = run.sample_steps
    empty = np.full(steps.size, np.nan)
    for row in table.rows:
        site = sites.get(row.name)
        grad_row = row.grad_last is not None or (row.grad_first is not None)
        history = grads[row.module].norms if grad_row and row.module in grads else empty
        act = run.act[:, site.idx, :] if site is not None else None  # (m, len(ActStat))
        updates = _update_ratio_history(run, by_module.get(row.module, ())) if grad_row \
            else empty
        dead_h = act[:, ActStat.DEAD_FRAC].astype(np.float64) if act is not None else empty
        sat_h = act[:, ActStat.SAT_FRAC].astype(np.float64) if act is not None else empty
        update_ratio = _last(updates)
        dead, saturated = _last(dead_h), row.sat_frac
        level, reasons = _health(row, run, diagnoses, named, bands, dead, saturated,
                                 update_ratio, history)
        yield LayerView(
            key=row.name,
            name=row.name,
            module=row.module,
            module_type=row.module_type,
            grad=row.grad_last,
            update_ratio=update_ratio,
            act_mean=row.act_mean,
            act_std=row.act_std,
            dead=dead,
            saturated=saturated,
            history_steps=steps,
            grad_history=history.astype(np.float64),
            update_history=updates,
            mean_history=act[:, ActStat.MEAN].astype(np.float64) if act is not None else empty,
            std_history=act[:, ActStat.STD].astype(np.float64) if act is not None else empty,
            dead_history=dead_h,
            saturated_history=sat_h,
            health=level,
            reasons=tuple(reasons),
        )


def _module_params(run: RunData) -> dict[str, tuple[int, ...]]:
    """Module -> its trainable weight matrices (biases and norm scales say little about steps)."""
    result: dict[str, list[int]] = {}
    for p in run.params:
        if p.trainable and len(p.shape) >= 2 and p.numel > 0:
            result.setdefault(p.module, []).append(p.idx)
    return {k: tuple(v) for k, v in result.items()}


def _update_ratio_history(run: RunData, idx: tuple[int, ...]) -> np.ndarray:
    """||update|| / ||weight|| over a module's matrices on each sample (NaN: not measured)."""
    if not idx or not run.sample_steps.size:
        return np.full(run.sample_steps.size, np.nan)
    update = run.param_stat(ParamStat.UPDATE_NORM)[:, list(idx)].astype(np.float64)
    weight = run.param_stat(ParamStat.WEIGHT_NORM)[:, list(idx)].astype(np.float64)
    u = np.sqrt((update**2).sum(axis=1))
    w = np.sqrt((weight**2).sum(axis=1))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(w > 0, u / w, np.nan)
    return ratio


def _last(values: np.ndarray) -> float | None:
    """The last sample's value; None when it was not measured there (NaN)."""
    if not values.size or np.isnan(values[-1]):
        return None
    return float(values[-1])


def _health(
    row: LayerRow,
    run: RunData,
    diagnoses: Sequence[Diagnosis],
    named: Sequence[frozenset[str]],
    bands: HealthBands,
    dead: float | None,
    saturated: float | None,
    update_ratio: float | None,
    grad_history: np.ndarray,
) -> tuple[Health, list[str]]:
    if not run.sample_steps.size:
        return Health.UNKNOWN, []
    level, reasons = Health.OK, []
    for d, modules in zip(diagnoses, named, strict=True):
        if row.module in modules:
            level = worst(level, Health.of(d.severity))
            reasons.append(d.rule)
    values = [row.act_mean, row.act_std, row.grad_last]
    if any(v is not None and not math.isfinite(v) for v in values):
        level = Health.ERROR
        reasons.insert(0, "non-finite values")
    found = bands.judge(dead, saturated, update_ratio)
    if found:
        level = worst(level, Health.WARNING)
        reasons += found
    return level, sorted(dict.fromkeys(reasons), key=len)


# ---- heatmap -----------------------------------------------------------------------------------
def grad_heat(run: RunData, x_range: tuple[float, float] | None = None) -> GradHeat:
    grads = run.layer_grads()
    order = run.module_order()
    ran = [g for g in grads if g.module in order] or grads  # modules that ran, in forward order
    if not ran or not run.sample_steps.size:
        m = run.sample_steps.size
        return GradHeat((), run.sample_steps, np.zeros((m, 0)), np.zeros((m, 0), bool), x_range)
    has = run.param_stat(ParamStat.HAS_GRAD) > 0.5
    rms = np.stack([g.rms for g in ran], axis=1).astype(np.float64)
    had = np.stack([has[:, list(g.param_idx)].any(axis=1) for g in ran], axis=1)
    nonfinite = had & ~np.isfinite(rms)
    return GradHeat(tuple(g.module for g in ran), run.sample_steps, rms, nonfinite, x_range)


# ---- what a diagnosis names ----------------------------------------------------------------------
_LAYER_KEYS = ("layer", "layers", "module", "modules", "site", "sites", "param", "params")
_LIST_SUFFIXES = ("_layers", "_modules", "_sites", "_params")  # "vanishing_layers": at fault
_DICT_PREFIXES = ("layer_", "param_")  # "layer_update_ratios": {param name: value}


def named_modules(d: Diagnosis, run: RunData) -> frozenset[str]:
    """The modules a diagnosis points at: its layer, and the layers, sites or parameters its
    evidence names as affected (a NaN that started in ``fc2.weight`` names ``fc2``). Reference
    layers ("last_layer", the healthy one it compares with) are not named."""
    modules = {p.name: p.module for p in run.params}
    modules.update({s.name: s.module for s in run.sites})
    modules.update({s.module: s.module for s in run.sites})
    modules.update({p.module: p.module for p in run.params})
    found = set()
    if d.layer is not None:
        found.add(modules.get(d.layer, d.layer))
    for key, value in d.evidence.items():
        if key in _LAYER_KEYS or key.endswith(_LIST_SUFFIXES):
            names = value if isinstance(value, (list, tuple)) else [value]
        elif key.startswith(_DICT_PREFIXES) and isinstance(value, dict):
            names = list(value)
        else:
            continue
        found.update(modules[n] for n in names if isinstance(n, str) and n in modules)
    return frozenset(found)
