"""Facts about a run that several rules need: clean loss, step numbers, layer kinds, formatting.

The rules state their logic; this module answers the bookkeeping questions ("which step is row
i", "is there a recurrent layer", "the RMS gradient of each layer in forward order") once, in the
same way for every rule, from what the capture side wrote.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from netdoctor.rules.base import Threshold
from netdoctor.runlog.run_data import ParamInfo, RunData, SiteInfo
from netdoctor.runlog.schema import ActStat, ParamStat, StepField

RECURRENT_TYPES = frozenset({"LSTM", "GRU", "RNN", "LSTMCell", "GRUCell", "RNNCell"})
BOUNDED_TYPES = frozenset(
    {"Sigmoid", "Tanh", "Hardtanh", "Hardsigmoid", "Softsign", "LogSigmoid", "Tanhshrink"}
)
RELU_TYPES = frozenset({"ReLU", "ReLU6", "RReLU"})
#: Gradients of embedding tables are sparse by design (only the rows in the batch get one), so
#: their RMS says nothing about gradient flow: the layer comparisons leave them out.
EMBEDDING_TYPES = frozenset({"Embedding", "EmbeddingBag"})
LINEAR_TYPES = frozenset({"Linear", "LazyLinear", "Bilinear", "NonDynamicallyQuantizableLinear"})
#: Fewer optimizer steps than this are judged on facts only (a NaN happened), never on trends:
#: a handful of points cannot tell a trend from noise.
MIN_STEPS = 10


def fmt(value: float) -> str:
    """A number for a message: 3 significant digits in a readable range, else 1.2e-05."""
    if value is None or not math.isfinite(value):
        return str(value).lower() if value is not None else "n/a"
    if value == 0:
        return "0"
    if 1e-3 <= abs(value) < 1e4:
        return f"{value:.3g}"
    return f"{value:.1e}"


def step_of(run: RunData, index: int) -> int:
    """Optimizer step number of row ``index`` of the step table."""
    return int(run.steps[index, StepField.STEP])


def index_of(run: RunData, step: int) -> int | None:
    """Row of the step table that holds optimizer step ``step``, or None."""
    rows = np.nonzero(run.step_numbers == step)[0]
    return int(rows[0]) if rows.size else None


def lr_at(run: RunData, index: int) -> float:
    """Learning rate (param group 0) at row ``index``; NaN when not recorded."""
    if not 0 <= index < run.n_steps:
        return math.nan
    return float(run.steps[index, StepField.LR])


def uses_adam(run: RunData) -> bool:
    """Whether the run's optimizer is already an Adam variant (then "try Adam" is no advice)."""
    optimizer = run.meta.get("optimizer")
    name = optimizer.get("class") if isinstance(optimizer, dict) else None
    return isinstance(name, str) and "adam" in name.lower()


def valid_loss(run: RunData) -> np.ndarray:
    """Loss per step with NaN wherever no loss was given; non-finite losses are kept as they are."""
    return np.where(run.has_loss, run.loss, math.nan)


def sites_by_module(run: RunData) -> dict[str, SiteInfo]:
    """First site (in forward order) of each module: where its type and family are known."""
    found: dict[str, SiteInfo] = {}
    for site in run.sites_in_forward_order():
        found.setdefault(site.module, site)
    for site in run.sites:
        found.setdefault(site.module, site)
    return found


def sites_of_type(run: RunData, types: frozenset[str], family: str | None = None) -> list[SiteInfo]:
    """Sites whose module type is in ``types`` or whose family is ``family``, forward order."""
    return [
        s
        for s in run.sites_in_forward_order()
        if s.module_type in types or (family is not None and s.family == family)
    ]


def has_recurrent(run: RunData) -> bool:
    return bool(sites_of_type(run, RECURRENT_TYPES, "recurrent"))


def param_module(run: RunData, param_name: str | None) -> str | None:
    """Module that owns the parameter called ``param_name`` (None when unknown)."""
    for p in run.params:
        if p.name == param_name:
            return p.module
    return None


@dataclass(frozen=True, slots=True)
class LayerRMS:
    """RMS gradient entry of each layer on each sampled step, layers in forward order.

    RMS (norm / sqrt(numel)) makes layers of different sizes comparable: the norm of a
    784x512 weight is larger than that of a 512x10 one for the same per-weight gradient.
    """

    modules: tuple[str, ...]
    steps: np.ndarray  # (m,) sampled optimizer steps
    rms: np.ndarray  # (m, L) NaN where the layer had no gradient


def layer_rms(run: RunData) -> LayerRMS:
    """Per-layer RMS gradients of the trainable layers that ran forward, minus embeddings.

    Modules that never ran forward (a parameter on the root module, an unused head) have no
    place in the forward order, so they are left out when any layer has one.
    Embedding tables are left out too (see ``EMBEDDING_TYPES``).
    """
    grads = run.layer_grads()
    order = run.module_order()
    kinds = sites_by_module(run)
    ran = [g for g in grads if g.module in order] or grads  # names that do not match: keep all
    kept = [
        g
        for g in ran
        if g.module not in kinds or kinds[g.module].module_type not in EMBEDDING_TYPES
    ]
    if not kept:
        return LayerRMS((), run.sample_steps, np.zeros((run.sample_steps.size, 0)))
    rms = np.stack([g.rms for g in kept], axis=1).astype(np.float64)
    return LayerRMS(tuple(g.module for g in kept), run.sample_steps, rms)


def output_size(run: RunData) -> int | None:
    """Number of outputs of the model's last linear layer (its logits), or None if unknown."""
    for site in reversed(run.sites_in_forward_order("output")):
        if site.module_type in LINEAR_TYPES or site.family == "linear":
            if site.shape:
                return int(site.shape[-1])
            return None
    return None


# ---- weights, updates, optimizer settings ------------------------------------------------------
def _matrices(run: RunData) -> list[ParamInfo]:
    """Trainable weights with at least two dimensions (matrices, conv kernels).

    Biases and norm scales are left out: they often start at zero or one, so their update ratio
    (a first update over a zero bias is 1) and their scale say nothing about the step size.
    """
    return [p for p in run.params if p.trainable and len(p.shape) >= 2 and p.numel > 0]


def init_scale(param: ParamInfo) -> float:
    """He's standard deviation sqrt(2 / fan_in): the largest common initialisation scale."""
    fan_in = int(np.prod(param.shape[1:])) if len(param.shape) >= 2 else param.numel
    return math.sqrt(2.0 / max(fan_in, 1))


def update_ratio(run: RunData) -> float | None:
    """Typical ‖ΔW‖ / ‖W‖ per step of the fastest-moving matrix (median over sampled steps).

    The fastest one, because layers starved by vanishing gradients move slowly whatever the
    learning rate: only when even the fastest layer barely moves is the step size to blame.

    cs231n: about 1e-3 in a healthy run; TheDeepChecker flags it outside [1e-4, 1e-1]. Updates of
    exactly zero (a frozen or dead layer) are left out: they say nothing about the step size.
    None when updates were not measured (no optimizer given to ``watch``).
    """
    mats = _matrices(run)
    if not mats or not run.sample_steps.size:
        return None
    idx = [p.idx for p in mats]
    update = run.param_stat(ParamStat.UPDATE_NORM)[:, idx].astype(np.float64)
    weight = run.param_stat(ParamStat.WEIGHT_NORM)[:, idx].astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):  # no update at all: frozen or dead,
        ratio = np.where((weight > 0) & (update > 0), update / weight, np.nan)  # not the lr
    ratio[~np.isfinite(ratio)] = np.nan
    ok = np.isfinite(ratio).any(axis=1)
    if not ok.any():
        return None
    return float(np.median(np.nanmax(ratio[ok], axis=1)))


@dataclass(frozen=True, slots=True)
class ThrownWeight:
    """A weight matrix that one update moved far beyond any initialisation scale."""

    param: str
    module: str
    step: int
    update_ratio: float  # ‖ΔW‖ / ‖W‖ after that step
    scale: float  # RMS of W after the step over He's sqrt(2 / fan_in)


#: ‖ΔW‖ / ‖W‖ from which one update replaced the weight rather than nudged it (cs231n: ~1e-3 is
#: healthy; TheDeepChecker's upper bound 1e-1; 0.5 means the update is most of the new weight).
THROWN_UPDATE = 0.5
#: RMS over He's scale from which a weight is far outside anything an initialisation or normal
#: training gives (DeepDiagnosis flags a weight variance outside [1e-5, 10]).
THROWN_SCALE = 10.0


def thrown_weights(
    run: RunData,
    first_step: int = 0,
    last_step: int | None = None,
    min_update: float = THROWN_UPDATE,
    min_scale: float = THROWN_SCALE,
) -> list[ThrownWeight]:
    """Weight matrices that a single update threw ``min_scale`` times past He's scale.

    Looks at the sampled steps from ``first_step`` to ``last_step`` and returns each matrix once
    (its worst step), in forward order: the first one is where the damage entered the model.
    A zero-initialised weight has an update ratio of 1 after its first step too, but stays far
    below He's scale, so it is not counted.
    """
    mats = _matrices(run)
    steps = run.sample_steps
    keep = (steps >= first_step) & (steps <= (np.inf if last_step is None else last_step))
    if not mats or not keep.any():
        return []
    found: dict[str, ThrownWeight] = {}
    update = run.param_stat(ParamStat.UPDATE_NORM)
    weight = run.param_stat(ParamStat.WEIGHT_NORM)
    for row in np.nonzero(keep)[0].tolist():
        for p in mats:
            u, w = float(update[row, p.idx]), float(weight[row, p.idx])
            if not (math.isfinite(u) and math.isfinite(w)) or w <= 0:
                continue
            scale = w / math.sqrt(p.numel) / init_scale(p)
            seen = found.get(p.name)
            if u / w >= min_update and scale >= min_scale and (seen is None or scale > seen.scale):
                found[p.name] = ThrownWeight(p.name, p.module, int(steps[row]), u / w, scale)
    order = run.module_order()
    rank = {p.name: (order.get(p.module, 1 << 30), p.idx) for p in mats}
    return sorted(found.values(), key=lambda t: rank[t.param])


def input_rms(run: RunData) -> float | None:
    """RMS of the model's input (its first input site, embeddings' indices excluded), first sample.

    sqrt(mean² + std²): large for inputs far from zero or widely spread alike.
    """
    if not run.sample_steps.size:
        return None
    for site in run.sites_in_forward_order("input"):
        if site.module_type in EMBEDDING_TYPES:
            continue
        mean = float(run.act[0, site.idx, ActStat.MEAN])
        std = float(run.act[0, site.idx, ActStat.STD])
        if math.isfinite(mean) and math.isfinite(std):
            return math.sqrt(mean * mean + std * std)
        return None
    return None


@dataclass(frozen=True, slots=True)
class WeightDecay:
    """The largest weight decay among the optimizer's groups, and how it is applied."""

    value: float
    lr: float  # learning rate of that group (NaN when unknown)
    decoupled: bool  # AdamW-style: w -= lr * wd * w, not added to the gradient


def weight_decay(run: RunData) -> WeightDecay | None:
    """From the optimizer settings in the run's meta; None when absent or zero."""
    optimizer = run.meta.get("optimizer")
    if not isinstance(optimizer, dict):
        return None
    name = str(optimizer.get("class", ""))
    best: WeightDecay | None = None
    for group in optimizer.get("groups") or []:
        if not isinstance(group, dict):
            continue
        wd, lr = group.get("weight_decay"), group.get("lr")
        if isinstance(wd, bool) or not isinstance(wd, (int, float)) or not wd > 0:
            continue
        decoupled = "adamw" in name.lower() or bool(group.get("decoupled_weight_decay"))
        number = isinstance(lr, (int, float)) and not isinstance(lr, bool)
        lr_value = float(lr) if number else math.nan
        if best is None or wd > best.value:
            best = WeightDecay(float(wd), lr_value, decoupled)
    return best


def output_spread(run: RunData) -> tuple[str, float] | None:
    """(site, spread) of a single-output model's predictions over the batch, last samples.

    Only for one output per sample (a regression, or one logit), where the activation's
    standard deviation is the spread of the predictions across inputs; the median over the last
    five samples. None for models with several outputs (their std mixes in the classes).
    """
    outputs = run.sites_in_forward_order("output")
    if not outputs or not run.sample_steps.size:
        return None
    site = outputs[-1]
    if not site.shape or site.shape[-1] != 1:
        return None
    std = run.act[-5:, site.idx, ActStat.STD].astype(np.float64)
    std = std[np.isfinite(std)]
    return (site.name, float(np.median(std))) if std.size else None


#: Shared by the rules whose advice turns on raw inputs (exploding_gradients, underfitting).
INPUT_SCALE = Threshold(
    "input_scale",
    10.0,
    "RMS of the model's input from which normalising the inputs leads the fixes",
    "UMLAUT (CHI'21) / DeepDiagnosis (ICSE'22): inputs within ±1; netdoctor margin",
)
