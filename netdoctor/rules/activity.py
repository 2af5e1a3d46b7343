"""What the activation rules share: where a layer sits, and whether a state lasted.

``dead_relu`` and ``saturated_activations`` ask the same questions of a per-site statistic
(the dead-unit or the saturated fraction): did it hold on most of the run's later samples, not
on one odd batch; since when; and did a large update come just before it (a learning rate
that pushes pre-activations out of range kills or saturates units). ``poor_init`` and
``unnormalized_inputs`` need to know which site is the model's raw input and which weighted
layer feeds an activation. The answers live here once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from netdoctor.rules.onset import nonfinite_onset
from netdoctor.runlog.run_data import RunData, SiteInfo
from netdoctor.runlog.schema import ParamStat

#: Families of sites whose module transforms its input with weights (or is a user's own layer):
#: the layer an activation's units belong to is the last of these before it in forward order.
LAYER_FAMILIES = frozenset({"linear", "conv", "recurrent", "norm", "embedding", "other"})
#: Families of parameter-free activation modules.
ACTIVATION_FAMILIES = frozenset({"relu", "smooth", "bounded", "softmax"})


def first_site(run: RunData) -> SiteInfo | None:
    """The first site called in the first step: the model's input when it has role 'input'."""
    ordered = run.sites_in_forward_order()
    return ordered[0] if ordered else None


def layer_before(run: RunData, site: SiteInfo) -> SiteInfo | None:
    """Output site of the last weighted layer that ran before ``site`` (its units' layer)."""
    ordered = run.sites_in_forward_order()
    position = next((i for i, s in enumerate(ordered) if s.idx == site.idx), None)
    if position is None:
        return None
    for earlier in reversed(ordered[:position]):
        if earlier.role == "output" and earlier.family in LAYER_FAMILIES:
            return earlier
    return None


def activation_before(run: RunData, site: SiteInfo) -> SiteInfo | None:
    """The activation module between ``site`` and the weighted layer before it, if any.

    An input site that follows a ReLU module (through dropout or pooling, which are not probed)
    measures the same units as that ReLU: the rules count them once, at the ReLU.
    """
    ordered = run.sites_in_forward_order()
    position = next((i for i, s in enumerate(ordered) if s.idx == site.idx), None)
    if position is None:
        return None
    for earlier in reversed(ordered[:position]):
        if earlier.role != "output":
            continue
        if earlier.family in ACTIVATION_FAMILIES:
            return earlier
        if earlier.family in LAYER_FAMILIES:
            return None
    return None


def feeds_a_layer(run: RunData, site: SiteInfo) -> bool:
    """Whether a weighted layer runs after ``site``: False for the model's output activation
    (a final sigmoid for BCELoss, a tanh on a generator's pixels), which is meant to reach its
    bounds once the model is sure."""
    ordered = run.sites_in_forward_order()
    position = next((i for i, s in enumerate(ordered) if s.idx == site.idx), None)
    if position is None:
        return False
    return any(
        s.role == "output" and s.family in LAYER_FAMILIES and s.module != site.module
        for s in ordered[position + 1 :]
    )


def usable_rows(run: RunData) -> np.ndarray:
    """Sampled rows before the run went non-finite (after that, statistics describe NaN)."""
    rows = np.arange(run.sample_steps.size)
    onset = nonfinite_onset(run)
    if onset is None:
        return rows
    return rows[run.sample_steps < onset.step]


@dataclass(frozen=True, slots=True)
class Persistence:
    """How a per-sample fraction behaved against its threshold over the run's later half."""

    level: float  # median over the later samples
    first: float  # at the first usable sample (the initialisation)
    hits: int  # later samples at or above the threshold
    samples: int  # later samples with a value
    onset_step: int  # first sampled step from which it held on most samples to the end
    rise_step: int | None  # last sample before the onset below half the threshold (or the
    # first sample): the rise happened after it; None when it held from the first sample

    @property
    def share(self) -> float:
        return self.hits / self.samples if self.samples else 0.0


def persistence(
    run: RunData,
    values: np.ndarray,
    threshold: float,
    min_share: float,
    min_samples: float,
    rows: np.ndarray | None = None,
) -> Persistence | None:
    """Whether ``values`` (one per sampled step) stayed at or above ``threshold`` late in the run.

    "Later" is the second half of the run by step number, so the dense sampling of the first
    steps does not outvote the rest. It holds when at least ``min_samples`` later samples have a
    value and at least ``min_share`` of them reach the threshold. The onset is the earliest
    sample that reached it and from which on ``min_share`` of the samples did. ``rows`` are the
    sampled rows to judge (default: ``usable_rows``; pass them when judging many sites).
    """
    rows = usable_rows(run) if rows is None else rows
    vals = np.asarray(values, dtype=np.float64)[rows]
    ok = np.isfinite(vals)
    rows, vals = rows[ok], vals[ok]
    if not rows.size:
        return None
    steps = run.sample_steps[rows]
    late = steps >= steps[-1] / 2
    hit = vals >= threshold
    n_late, n_hit = int(late.sum()), int((hit & late).sum())
    if n_late < min_samples or n_hit < min_share * n_late:
        return None
    suffix_hits = np.cumsum(hit[::-1])[::-1]
    suffix_len = np.arange(hit.size, 0, -1)
    starts = np.nonzero(hit & (suffix_hits >= min_share * suffix_len))[0]
    at = int(starts[0]) if starts.size else int(np.nonzero(late)[0][0])
    rise = None
    if at > 0:
        low = np.nonzero(vals[:at] < threshold / 2)[0]
        rise = int(steps[low[-1]]) if low.size else int(steps[0])
    level = float(np.median(vals[late]))
    return Persistence(level, float(vals[0]), n_hit, n_late, int(steps[at]), rise)


@dataclass(frozen=True, slots=True)
class BigUpdate:
    """The largest single update (‖ΔW‖ / ‖W‖) of any weight matrix up to some step."""

    param: str
    step: int
    ratio: float


def largest_update(
    run: RunData, first_step: int, last_step: int, module: str | None = None
) -> BigUpdate | None:
    """The largest update ratio of a weight matrix on the sampled steps in [first, last].

    Only matrices and kernels (two or more dimensions): a zero-initialised bias moves by its
    whole norm on its first step, which says nothing about the step size. With ``module``,
    only that module's matrices.
    """
    mats = [
        p
        for p in run.params
        if p.trainable and len(p.shape) >= 2 and p.numel > 0 and module in (None, p.module)
    ]
    steps = run.sample_steps
    rows = np.nonzero((steps >= first_step) & (steps <= last_step))[0]
    if not mats or not rows.size:
        return None
    idx = [p.idx for p in mats]
    update = run.param_stat(ParamStat.UPDATE_NORM)[np.ix_(rows, idx)].astype(np.float64)
    weight = run.param_stat(ParamStat.WEIGHT_NORM)[np.ix_(rows, idx)].astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(weight > 0, update / weight, np.nan)
    ratio[~np.isfinite(ratio)] = np.nan
    if np.all(np.isnan(ratio)):
        return None
    r, c = np.unravel_index(int(np.nanargmax(ratio)), ratio.shape)
    return BigUpdate(mats[c].name, int(run.sample_steps[rows[r]]), float(ratio[r, c]))


def units_of(site: SiteInfo) -> int | None:
    """Units (features of (B, F) and (B, T, F), channels of (B, C, ...)) of a site's tensor."""
    if not site.shape or len(site.shape) < 2:
        return None
    return int(site.shape[-1] if len(site.shape) <= 3 else site.shape[1])


def percent(value: float) -> str:
    """A fraction as a whole percentage for messages: 0.823 -> '82 %'."""
    return "n/a" if not math.isfinite(value) else f"{100 * value:.0f} %"


def update_before_onset(
    run: RunData, held: Persistence, module: str | None, big: float
) -> BigUpdate | None:
    """The largest update between the last sample that saw the state absent and its onset.

    The layer that feeds the units (``module``) is preferred when its own update reached
    ``big``: it is the one that moved their pre-activations. None when the state held from the
    first sample (no update came before it).
    """
    if held.rise_step is None:
        return None
    span = (held.rise_step, held.onset_step - 1)
    own = largest_update(run, *span, module) if module is not None else None
    if own is not None and own.ratio >= big:
        return own
    return largest_update(run, *span)
