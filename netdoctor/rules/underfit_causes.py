"""Why a run underfits, and so which fixes lead: the advice half of ``underfitting``.

A run that ends near chance can be too slow (raise the learning rate), too unstable (lower it),
badly initialised, crushed by weight decay, fed raw inputs, or simply too small. These advise
opposite things, so the evidence picks the order, most specific first:

1. the loss leapt ``loss_jump`` times above its first value, or the gradients exploded (the
   ``exploding_gradients`` tests at their defaults: a one-off leap that did damage, a jump, a
   geometric growth): it blew up and saturated or killed units; lower the lr, clip gradients;
2. the first loss was ``init_loss_ratio`` times the chance loss: the initial outputs are far too
   large (weights not scaled to their fan-in, or raw inputs); fix the initialisation, lower lr;
3. the loss level rose, or stayed up beyond its noise for a few steps: unstable, lower the lr;
4. the weights barely move (update/weight ratio below ``tiny_update``): raise the learning rate;
5. otherwise flat: a plain RNN loses long-range gradients (use LSTM/GRU), else more capacity;
   still falling: train longer.

On top of that, a strong weight decay leads (lower it), and raw inputs come right after it. The
advice never says "raise the learning rate" or "train longer" when 1-3 hold.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from netdoctor.diagnosis import Fix
from netdoctor.rules import exploding
from netdoctor.rules.explosion import Finding, growth, jump, spike
from netdoctor.rules.facts import (
    MIN_STEPS,
    RELU_TYPES,
    fmt,
    input_rms,
    sites_of_type,
    step_of,
    update_ratio,
    uses_adam,
    valid_loss,
    weight_decay,
)
from netdoctor.rules.fixes import fix
from netdoctor.rules.series import median3, robust_noise
from netdoctor.runlog.run_data import RunData

#: Plain recurrent cells: their gradient shrinks or grows at every time step.
PLAIN_RNN_TYPES = frozenset({"RNN", "RNNCell"})
#: How many σ of the loss's own (log-scale) batch noise a lasting rise must clear.
NOISE_SIGMAS = 4.0


@dataclass
class Advice:
    """What the rule says after its facts, the fixes in order, and the evidence behind them."""

    text: str
    fixes: list[Fix]
    evidence: dict[str, Any] = field(default_factory=dict)


def advise(
    run: RunData,
    th: Mapping[str, float],
    values: np.ndarray,
    rows: np.ndarray,
    chance: float | None,
    flat: bool,
) -> Advice:
    """The advice for an underfitting run; ``values`` are its finite losses, at rows ``rows``."""
    adam = [] if uses_adam(run) else [fix("adam")]
    advice = (
        _blew_up(run, th, values, rows)
        or _bad_init(run, th, values, chance)
        or _unstable(run, th, values, rows, adam)
        or _slow(run, th, flat, adam)
        or _plain(run, flat, adam)
    )
    _weight_decay_first(run, th, advice)
    _inputs_next(run, th, advice)
    return advice


def _exploded(run: RunData) -> Finding | None:
    """What ``exploding_gradients`` finds at its default thresholds, NaN-free runs only."""
    if run.n_steps < MIN_STEPS:
        return None
    th, loss = exploding.RULE.defaults(), valid_loss(run)
    end = run.n_steps
    return spike(run, th, end, loss) or jump(run, th, end, loss) or growth(run, th, end, loss)


def _blew_up(
    run: RunData, th: Mapping[str, float], values: np.ndarray, rows: np.ndarray
) -> Advice | None:
    """The loss leapt ``loss_jump``× above its very first value, or the gradients exploded."""
    first = float(values[0])
    if first <= 0 or values.size < 2:
        return None
    at = 1 + int(np.argmax(values[1:]))
    peak = float(values[at])
    if peak < th["loss_jump"] * first:
        boom = _exploded(run)
        if boom is None:
            return None
        text = (
            f"the gradients exploded (step {boom.step}: see exploding_gradients) and the units "
            "they saturated or killed have barely learnt since, so lower the learning rate and "
            "clip gradients; do not train longer or raise the learning rate"
        )
        return Advice(
            text,
            [fix("lower_lr"), fix("grad_clipping"), fix("normalize_inputs")],
            {"cause": "explosion", "explosion_step": boom.step},
        )
    step = step_of(run, int(rows[at]))
    text = (
        f"the loss leapt from {fmt(first)} at the first step to {fmt(peak)} at step {step}: "
        "training blew up and never recovered (units saturated or died), so lower the "
        "learning rate and clip gradients; do not train longer or raise the learning rate"
    )
    return Advice(
        text,
        [fix("lower_lr"), fix("grad_clipping"), fix("normalize_inputs")],
        {"cause": "loss_jump", "first_loss": first, "loss_jump_peak": peak, "loss_jump_step": step},
    )


def _bad_init(
    run: RunData, th: Mapping[str, float], values: np.ndarray, chance: float | None
) -> Advice | None:
    """The first losses were many times what a model that knows nothing scores."""
    if chance is None or chance <= 0:
        return None
    first = float(values[0])
    ratio = min(first, float(np.median(values[:3]))) / chance  # not one odd first batch
    if ratio < th["init_loss_ratio"]:
        return None
    relu = bool(sites_of_type(run, RELU_TYPES, "relu"))
    init = fix("he_init") if relu else fix("xavier_init")
    other = fix("xavier_init") if relu else fix("he_init")
    text = (
        f"the first loss {fmt(first)} was ×{fmt(first / chance)} the chance loss "
        f"{fmt(chance)}: the initial outputs are far too large, so the weights are not scaled "
        "to their fan-in (or "
        "the inputs are raw); initialise with Xavier/He and lower the learning rate rather than "
        "train longer"
    )
    return Advice(
        text,
        [init, fix("lower_lr"), fix("normalize_inputs"), other, fix("batchnorm")],
        {"cause": "initial_loss_too_high", "first_loss": first, "first_loss_vs_chance": ratio},
    )


def _unstable(
    run: RunData, th: Mapping[str, float], values: np.ndarray, rows: np.ndarray, adam: list[Fix]
) -> Advice | None:
    """The loss level rose, or stayed ``spike``× up (and beyond its batch noise) for a few steps.

    One high batch is not instability: small-batch losses are heavy-tailed (a regression batch
    with a few outliers easily scores three times the median). So a rise must show in the
    running median of three and clear ``NOISE_SIGMAS`` σ of the log-loss noise above both the
    initial and the typical level (a median of five noisy batches can start low by chance), or
    the typical loss after the first steps must itself sit ``spike``× above the initial one.
    """
    initial = float(np.median(values[:5]))
    later = values[5:]
    if initial <= 0 or not later.size:
        return None
    level = float(np.median(later))
    positive = values[values > 0]
    sigma = robust_noise(np.log(positive)) if positive.size >= 3 else 0.0
    bar = max(initial, level) * max(th["spike"], math.exp(NOISE_SIGMAS * sigma))
    smooth = median3(values)[5:]
    at = int(np.argmax(smooth))
    if level < th["spike"] * initial and float(smooth[at]) < bar:
        return None
    peak_row = 5 + at
    peak, step = float(values[peak_row]), step_of(run, int(rows[peak_row]))
    text = (
        f"the loss rose to {fmt(peak)} at step {step} from {fmt(initial)} at the start, so the "
        "learning rate is likely too high: lower it and check the inputs are normalised"
    )
    return Advice(
        text,
        [fix("lower_lr"), fix("normalize_inputs"), *adam, fix("more_capacity")],
        {"cause": "unstable", "loss_spike": peak, "loss_spike_step": step, "later_loss": level},
    )


def _slow(run: RunData, th: Mapping[str, float], flat: bool, adam: list[Fix]) -> Advice | None:
    """The weights barely move: every update is a tiny fraction of the weight (cs231n ≈ 1e-3)."""
    ratio = update_ratio(run)
    if ratio is None or ratio >= th["tiny_update"]:
        return None
    text = (
        f"each update moves the weights by only {fmt(ratio)} of their size (about 1e-3 is "
        "healthy), so the learning rate is too small: raise it"
    )
    rest = [fix("more_capacity")] if flat else [fix("train_longer")]
    return Advice(
        text,
        [fix("raise_lr"), *adam, *rest],
        {"cause": "tiny_updates", "update_ratio": ratio},
    )


def _plain(run: RunData, flat: bool, adam: list[Fix]) -> Advice:
    """No sign of the cause in the dynamics: capacity (or a plain RNN's memory), or time."""
    try_adam = "try Adam and " if adam else ""
    if not flat:
        return Advice(
            "train longer or raise the learning rate",
            [fix("train_longer"), fix("raise_lr"), *adam],
            {"cause": "still_falling"},
        )
    plain = sites_of_type(run, PLAIN_RNN_TYPES)
    if plain:
        cell = fix(
            "xavier_init",
            "a plain nn.RNN forgets over long sequences (its gradient shrinks or grows at every "
            "time step, which module-level gradient norms do not show): use nn.LSTM or nn.GRU, "
            "or initialise the recurrent weights orthogonally: "
            "nn.init.orthogonal_(rnn.weight_hh_l0)",
        )
        return Advice(
            f"{plain[0].module} is a plain RNN, which cannot carry information over long "
            f"sequences: use an LSTM or GRU; {try_adam}check the inputs are normalised",
            [cell, *adam, fix("more_capacity"), fix("normalize_inputs")],
            {"cause": "plain_rnn"},
        )
    return Advice(
        f"give the model more capacity or raise the learning rate; {try_adam}check the inputs "
        "are normalised",
        [fix("more_capacity"), fix("raise_lr"), *adam, fix("normalize_inputs")],
        {"cause": "capacity"},
    )


def _weight_decay_first(run: RunData, th: Mapping[str, float], advice: Advice) -> None:
    """A weight decay strong enough to hold the weights at zero leads the fixes: lower it.

    Added to the gradient (SGD, Adam), weight_decay ≥ 0.1 pulls each weight to zero as hard as
    a typical gradient pushes it; decoupled (AdamW), the shrink per step is lr × weight_decay.
    """
    wd = weight_decay(run)
    if wd is None:
        return
    per_step = wd.value * wd.lr if math.isfinite(wd.lr) else math.nan
    strong = (not wd.decoupled and wd.value >= th["weight_decay"]) or (
        wd.decoupled and per_step >= th["decay_per_step"]
    )
    if not strong:
        return
    how = "decoupled (AdamW)" if wd.decoupled else "added to the gradient"
    lower = fix(
        "weight_decay",
        f"lower the weight decay: weight_decay={fmt(wd.value)} ({how}) pulls the weights to "
        "zero faster than the gradient can grow them, so the model stays near a constant; use "
        "weight_decay=1e-4 to 1e-2 (e.g. torch.optim.AdamW(model.parameters(), lr=1e-3, "
        "weight_decay=1e-2)), or 0 to check",
    )
    advice.fixes = [lower, *(f for f in advice.fixes if f.id != "weight_decay")]
    advice.text = (
        f"the weight decay {fmt(wd.value)} ({how}) holds the weights near zero: lower it "
        f"(1e-4 to 1e-2); then {advice.text}"
    )
    advice.evidence.update(weight_decay=wd.value, weight_decay_decoupled=wd.decoupled)


def _inputs_next(run: RunData, th: Mapping[str, float], advice: Advice) -> None:
    """Raw inputs (RMS ≥ ``input_scale``) put normalising them ahead of the other fixes."""
    scale = input_rms(run)
    if scale is None or scale < th["input_scale"]:
        return
    norm = fix(
        "normalize_inputs",
        f"standardise the inputs (their RMS is {fmt(scale)}, not about 1) with the training-set "
        "statistics, x = (x - mean) / std, and for a regression the targets too",
    )
    rest = [f for f in advice.fixes if f.id != "normalize_inputs"]
    lead = 1 if rest and rest[0].id == "weight_decay" else 0
    advice.fixes = [*rest[:lead], norm, *rest[lead:]]
    advice.evidence.update(input_rms=scale)
