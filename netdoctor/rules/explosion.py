"""The evidence ``exploding_gradients`` weighs: five scale-free tests on one run.

Each returns a ``Finding`` (the step where it first held, a message clause, its numbers) or None.
Kept apart from the rule so that each test reads on its own and can be tested on its own.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from netdoctor.rules.facts import fmt, layer_rms, step_of
from netdoctor.rules.onset import NonFiniteOnset, trend_before
from netdoctor.rules.series import (
    GrowthSpan,
    falls_less_than,
    finite,
    growth_spans,
    median3,
    share,
)
from netdoctor.runlog.run_data import RunData

#: Loss after a rise over the loss before it that shows the rise did lasting damage.
LOSS_HELD = 2.0


@dataclass(frozen=True, slots=True)
class Finding:
    """One criterion that held: where it first held, a message clause, and its numbers."""

    criterion: str
    step: int
    text: str
    evidence: dict[str, Any]
    layer: str | None = None


def into_nonfinite(
    run: RunData, th: Mapping[str, float], onset: NonFiniteOnset | None
) -> Finding | None:
    """The grad norm grew ``trend_growth``-fold in the window before the first NaN."""
    if onset is None:
        return None
    window = int(th["nan_window"])
    trend = trend_before(run, onset.index, window)
    if trend is None or trend.growth < th["trend_growth"] or not trend.loss_not_falling:
        return None
    text = (
        f"grad norm grew ×{fmt(trend.growth)} (from {fmt(trend.baseline)} to {fmt(trend.peak)}) "
        f"in the {window} steps before step {onset.step}, where the {onset.source} became "
        "non-finite"
    )
    evidence = {
        "grad_norm_growth": trend.growth,
        "grad_norm_baseline": trend.baseline,
        "grad_norm_peak": trend.peak,
        "window": window,
    }
    return Finding("into_nonfinite", trend.rise_step, text, evidence)


def growth(run: RunData, th: Mapping[str, float], end: int, loss: np.ndarray) -> Finding | None:
    """TheDeepChecker's ×2 per check over 5 checks, on windowed medians, loss not falling.

    The rise must also leave a mark: the grad norm stays up, or the loss does (it doubled and
    stayed so), or the run went non-finite or ended right after it. Noise always falls back.
    """
    window = int(th["nan_window"])
    for span in growth_spans(
        run.grad_norm[:end], th["growth_factor"], int(th["growth_checks"]), th["min_total_growth"]
    ):
        during = loss[span.start : span.end + 1]
        if falls_less_than(during, 0.1) is False:  # loss fell >10 % meanwhile: a warm-up
            continue
        before = finite(loss[max(0, span.start - window) : span.start + 1])
        after = finite(loss[span.end + 1 : span.end + 1 + window])
        loss_held = (
            before.size > 0
            and after.size >= 3
            and float(np.median(after)) >= LOSS_HELD * abs(float(np.median(before)))
        )
        if span.held is False and not loss_held:
            continue
        return _growth_finding(run, span, during)
    return None


def _growth_finding(run: RunData, span: GrowthSpan, during: np.ndarray) -> Finding:
    kept = finite(during)
    edge = max(1, min(3, kept.size // 2))
    l0 = float(np.median(kept[:edge])) if kept.size else math.nan
    l1 = float(np.median(kept[-edge:])) if kept.size else math.nan
    first, last = step_of(run, span.start), step_of(run, span.end)
    pace = "every step" if span.block == 1 else f"every {span.block} steps"
    text = (
        f"grad norm grew ×{fmt(span.per_check)} {pace} for {span.checks} checks in a row "
        f"(×{fmt(span.total)} in total, steps {first}-{last}) while the loss went from "
        f"{fmt(l0)} to {fmt(l1)}"
    )
    evidence = {
        "growth_per_check": span.per_check,
        "growth_checks": span.checks,
        "growth_block_steps": span.block,
        "growth_total": span.total,
        "growth_start_step": first,
        "growth_end_step": last,
        "loss_start": l0,
        "loss_end": l1,
    }
    return Finding("geometric_growth", first, text, evidence)


def jump(run: RunData, th: Mapping[str, float], end: int, loss: np.ndarray) -> Finding | None:
    """A jump of the grad norm far above its recent median after which the loss stayed high.

    Explosions in recurrent nets are often too fast for growth checks: the norm leaps a thousand
    times in one or two steps. It counts only when the loss did not come back, so a spike that
    training shrugged off is left alone.
    """
    norms = run.grad_norm[:end]
    ok = np.isfinite(norms) & (norms > 0)
    window = int(th["nan_window"])
    floor = np.minimum.accumulate(np.where(ok, norms, np.inf))  # smallest norm so far
    before_min = np.concatenate(([np.inf], floor[:-1]))
    for i in np.nonzero(ok & (norms >= th["spike"] * before_min))[0][:1000].tolist():
        recent = norms[max(0, i - window) : i]
        recent = recent[np.isfinite(recent) & (recent > 0)]
        if recent.size < 2 or norms[i] < th["spike"] * float(np.median(recent)):
            continue
        l0, l1 = finite(loss[max(0, i - window) : i]), finite(loss[i + 1 : i + 1 + window])
        if not l0.size or l1.size < 3 or float(np.median(l0)) <= 0:
            continue
        jump = float(np.median(l1)) / float(np.median(l0))
        if jump < th["loss_jump"]:
            continue
        at, base = step_of(run, i), float(np.median(recent))
        text = (
            f"grad norm jumped to {fmt(float(norms[i]))} at step {at}, ×{fmt(norms[i] / base)} its "
            f"recent median {fmt(base)}, and the loss stayed ×{fmt(jump)} higher afterwards"
        )
        evidence = {
            "jump_step": at,
            "jump_grad_norm": float(norms[i]),
            "jump_factor": float(norms[i] / base),
            "loss_before": float(np.median(l0)),
            "loss_after": float(np.median(l1)),
        }
        return Finding("jump", at, text, evidence)
    return None


def blowup(run: RunData, th: Mapping[str, float], end: int, loss: np.ndarray) -> Finding | None:
    """AUTOTRAINER: the (3-step median) loss reached ``loss_blowup`` times its initial value."""
    part = loss[:end]
    rows = np.nonzero(np.isfinite(part))[0]
    if rows.size < 3:
        return None
    initial = float(np.median(part[rows[:5]]))
    if initial <= 0:  # a ratio means nothing for losses that can be zero or negative
        return None
    smooth = median3(part)
    hits = np.nonzero(smooth >= th["loss_blowup"] * initial)[0]
    if not hits.size:
        return None
    peak, at = float(np.nanmax(smooth)), step_of(run, int(hits[0]))
    text = (
        f"loss rose to {fmt(peak)}, ×{fmt(peak / initial)} its initial {fmt(initial)}, by step {at}"
    )
    evidence = {"initial_loss": initial, "peak_loss": peak, "loss_ratio": peak / initial}
    return Finding("loss_blowup", at, text, evidence)


def layer_ratio(
    run: RunData, th: Mapping[str, float], end: int, loss: np.ndarray
) -> Finding | None:
    """AUTOTRAINER's first/last gradient ratio > 70, on RMS, on most samples, with a bad sign."""
    layers = layer_rms(run)
    if len(layers.modules) < 2:
        return None
    before = layers.steps < (step_of(run, end) if end < run.n_steps else np.inf)
    first, last = layers.rms[before, 0], layers.rms[before, -1]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = first / last
    valid = np.isfinite(ratio) & (last > 0)
    high = valid & (ratio > th["layer_ratio"])
    fraction, n = share(high, valid)
    if n < 3 or fraction < th["min_fraction"]:
        return None
    sign = _unhealthy_sign(run.grad_norm[:end], loss[:end], th["trend_growth"])
    if sign is None:
        return None
    median = float(np.median(ratio[valid]))
    hits = int(np.count_nonzero(high))
    at = int(layers.steps[before][np.nonzero(high)[0][0]])
    text = (
        f"RMS gradient of the first layer {layers.modules[0]} stayed ×{fmt(median)} that of the "
        f"last layer {layers.modules[-1]} on {hits} of {n} sampled steps from step {at}, with "
        f"{sign}"
    )
    evidence = {
        "first_layer": layers.modules[0],
        "last_layer": layers.modules[-1],
        "layer_ratio": median,
        "ratio_share": fraction,
        "ratio_samples": n,
        "unhealthy_sign": sign,
    }
    return Finding("layer_ratio", at, text, evidence, layers.modules[0])


def _unhealthy_sign(norms: np.ndarray, loss: np.ndarray, growth: float) -> str | None:
    """Why a large layer ratio hurts here: a growing grad norm, or a rising loss.

    A loss that is merely flat is not one: that is a run that does not learn (too small a
    learning rate, too small a model), and a convnet's first layer often has large RMS
    gradients anyway (each filter weight sums over every position).
    """
    g = finite(norms)
    if g.size >= 8:
        q = g.size // 4
        rise = float(np.median(g[-q:]) / max(float(np.median(g[:q])), 1e-300))
        if rise >= growth:
            return f"the grad norm growing ×{fmt(rise)}"
    kept = finite(loss)
    if kept.size >= 8:
        q = kept.size // 4
        start, now = float(np.median(kept[:q])), float(np.median(kept[-q:]))
        if now > start + 0.1 * abs(start):
            return f"the loss rising from {fmt(start)} to {fmt(now)}"
    return None
