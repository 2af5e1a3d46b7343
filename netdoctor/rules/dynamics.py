"""How big the optimizer's steps are and how far the loss got: what the learning-rate rules read.

``lr_too_high``, ``lr_too_low`` and ``loss_not_decreasing`` (and ``frozen_parameters``, for its
severity) ask the same two questions of a run, so they are answered here once, the same way:

- *step size*: ‖ΔW‖ / ‖W‖ of each weight matrix on each sampled step (cs231n's update/weight
  ratio, about 1e-3 in a healthy run), read at the run's own peak learning rate so that a
  warm-up or an annealed tail does not pass for a learning rate that is too small;
- *progress*: the lowest level the loss reached (medians of blocks of steps, so one lucky batch
  does not count) against the level it started at, as a share of that start: scale-free, so a
  loss of 1e-3 and one of 1e3 are judged alike.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from netdoctor.rules.facts import valid_loss
from netdoctor.rules.onset import nonfinite_onset
from netdoctor.rules.series import block_medians, finite
from netdoctor.runlog.run_data import ParamInfo, RunData
from netdoctor.runlog.schema import ParamStat, StepField

#: Losses that make the initial level: few, because a healthy loss falls fast, and more than
#: one, because a single batch can be off by chance.
INITIAL_STEPS = 5
#: Learning rates below this share of the run's peak are a warm-up or an annealed tail: the
#: step size is judged where the schedule is near its peak, where the user chose the rate.
PEAK_LR_SHARE = 0.5


# ---- step size --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class UpdateRatios:
    """‖ΔW‖ / ‖W‖ of each trainable weight matrix on each sampled step.

    ``ratio`` is NaN where the update was not measured (no optimizer given to ``watch``), was
    exactly zero (a frozen or dead layer: that says nothing about the step size) or the weight
    is zero. Biases and norm scales are left out (see ``facts._matrices``).
    """

    params: tuple[ParamInfo, ...]
    steps: np.ndarray  # (m,) sampled optimizer steps
    ratio: np.ndarray  # (m, k)

    @property
    def measured(self) -> bool:
        return bool(np.isfinite(self.ratio).any())

    def typical(self) -> np.ndarray:
        """(m,) median over the matrices: how far most layers moved on each sampled step."""
        return _nan_reduce(np.nanmedian, self.ratio)

    def fastest(self) -> np.ndarray:
        """(m,) largest over the matrices: how far the fastest-moving layer moved."""
        return _nan_reduce(np.nanmax, self.ratio)

    def per_layer(self, rows: np.ndarray) -> dict[str, float]:
        """Median ratio of each matrix over the sampled rows ``rows`` (for the evidence)."""
        out: dict[str, float] = {}
        for col, p in enumerate(self.params[:30]):
            values = finite(self.ratio[rows, col])
            if values.size:
                out[p.name] = float(np.median(values))
        return out


def _nan_reduce(fn: Any, arr: np.ndarray) -> np.ndarray:
    if arr.shape[1] == 0:
        return np.full(arr.shape[0], math.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows are expected
        return fn(arr, axis=1)


def update_ratios(run: RunData) -> UpdateRatios:
    """The update/weight ratio of every trainable matrix on every sampled step."""
    mats = tuple(p for p in run.params if p.trainable and len(p.shape) >= 2 and p.numel > 0)
    idx = [p.idx for p in mats]
    update = run.param_stat(ParamStat.UPDATE_NORM)[:, idx].astype(np.float64)
    weight = run.param_stat(ParamStat.WEIGHT_NORM)[:, idx].astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where((weight > 0) & (update > 0), update / weight, math.nan)
    ratio[~np.isfinite(ratio)] = math.nan
    return UpdateRatios(mats, run.sample_steps, ratio)


def sample_lrs(run: RunData) -> np.ndarray:
    """(m,) learning rate (param group 0) at each sampled step; NaN where not recorded."""
    out = np.full(run.sample_steps.size, math.nan)
    steps = run.step_numbers  # increasing (the reader checks it)
    if not steps.size or not run.sample_steps.size:
        return out
    rows = np.clip(np.searchsorted(steps, run.sample_steps), 0, steps.size - 1)
    found = steps[rows] == run.sample_steps
    out[found] = run.steps[rows[found], StepField.LR]
    return out


def at_peak_lr(run: RunData) -> np.ndarray:
    """(m,) bool: sampled steps whose learning rate is at least half the run's peak.

    All of them when the learning rate was not recorded or never positive.
    """
    lrs = sample_lrs(run)
    ok = np.isfinite(lrs) & (lrs > 0)
    if not ok.any():
        return np.ones(run.sample_steps.size, dtype=bool)
    return ok & (lrs >= PEAK_LR_SHARE * float(np.max(lrs[ok])))


def warming_up(run: RunData) -> bool:
    """Whether the learning rate is still climbing at the end of an unfinished run.

    A warm-up starts near zero on purpose: until it ends, a loss that barely moves and tiny
    updates are the schedule's doing, not the user's choice of rate.
    """
    if run.finished or not run.writer_alive:
        return False
    lrs = finite(run.steps[:, StepField.LR])
    lrs = lrs[lrs > 0]
    if lrs.size < 2:
        return False
    return float(lrs[-1]) >= float(np.max(lrs)) and float(lrs[-1]) > 2 * float(lrs[0])


# ---- progress of the loss ---------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Progress:
    """How far the loss got below where it started.

    ``initial`` is the loss before training moved it (the first loss, or the median of the
    first few when that is lower), ``lowest`` and ``highest`` the lowest and
    highest medians of a block of ``block`` steps, ``final`` the median of the last block;
    ``progress`` = 1 - lowest / initial (0: never below the start; 1: down to zero; negative: it
    only rose).
    """

    initial: float
    first: float
    lowest: float
    highest: float
    final: float
    block: int
    steps: int  # finite losses judged
    first_step: int
    last_step: int

    @property
    def progress(self) -> float:
        return 1.0 - self.lowest / self.initial


def loss_progress(run: RunData, min_steps: int) -> Progress | None:
    """Progress of the loss up to the first non-finite step; None without ``min_steps`` losses.

    None too when the initial level is not positive: a share of it means nothing for a loss
    that can be zero or negative (a log-likelihood, an ELBO).
    """
    onset = nonfinite_onset(run)
    end = onset.index if onset is not None else run.n_steps
    loss = valid_loss(run)[:end]
    rows = np.nonzero(np.isfinite(loss))[0]
    if rows.size < max(min_steps, 2 * INITIAL_STEPS):
        return None
    values = loss[rows]
    # before training moved it: the first loss, or the median of the first few if that is
    # lower (a hard first batch does not set it, nor does a jump the first updates caused)
    initial = min(float(values[0]), float(np.median(values[:INITIAL_STEPS])))
    if not initial > 0:
        return None
    block = max(INITIAL_STEPS, values.size // 10)
    medians, _ = block_medians(values, block)
    medians = finite(medians)
    if not medians.size:
        return None
    steps = run.step_numbers
    return Progress(
        initial=initial,
        first=float(values[0]),
        lowest=float(np.min(medians)),
        highest=float(np.max(medians)),
        final=float(medians[-1]),
        block=block,
        steps=int(values.size),
        first_step=int(steps[rows[0]]),
        last_step=int(steps[rows[-1]]),
    )


def chance_loss(run: RunData) -> float | None:
    """The loss of a model that knows nothing, when the run states its task; else None."""
    task = run.task
    for key in ("chance_loss", "num_classes"):
        value = task.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if not (math.isfinite(value) and value > 0):
            continue
        return float(value) if key == "chance_loss" else math.log(max(2, int(value)))
    return None


def optimizer_class(run: RunData) -> str:
    """The optimizer's class name as ``watch`` recorded it ("SGD" when unknown), for snippets."""
    optimizer = run.meta.get("optimizer")
    name = optimizer.get("class") if isinstance(optimizer, dict) else None
    return name if isinstance(name, str) and name.isidentifier() else "SGD"


def lr_literal(value: float) -> str:
    """A learning rate as it would be typed in code: two significant digits (0.001, 5e-05)."""
    return f"{value:.2g}"
