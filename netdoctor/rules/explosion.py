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

from netdoctor.rules.facts import (
    ThrownWeight,
    fmt,
    layer_rms,
    step_of,
    thrown_weights,
)
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


def spike(run: RunData, th: Mapping[str, float], end: int, loss: np.ndarray) -> Finding | None:
    """A one-off leap of the grad norm ``spike`` times the run's median, that did lasting damage.

    Catches what ``jump`` cannot: an explosion in the first steps, before there is a recent
    median to compare with, after which the units it saturated or killed pass little or no
    gradient (so every later step looks quiet). The yardstick is the rest of the run. The leap
    must come or go abruptly (×``spike`` against the step before or after it: a smooth decay
    from a large start does not), and it must have done damage: the loss stayed ×``loss_jump``
    above the loss before it, or the update threw a weight matrix far past any initialisation
    scale (‖ΔW‖/‖W‖ ≥ 0.5 and an RMS ≥ 10× He's), or a layer that had a gradient up to the leap
    has had exactly none since (its units died or saturated). A batch the run shrugs off does
    none of these.
    """
    norms = run.grad_norm[:end]
    ok = np.isfinite(norms) & (norms > 0)
    if np.count_nonzero(ok) < 10:
        return None
    median = float(np.median(norms[ok]))
    high = ok & (norms >= th["spike"] * median)
    window = int(th["nan_window"])
    i = 0
    for _ in range(100):  # a bounded number of separate leaps
        hits = np.nonzero(high[i:])[0]
        if not hits.size:
            return None
        i0 = i + int(hits[0])
        j = i0
        while j < end and high[j]:
            j += 1
        i = j
        peak = i0 + int(np.argmax(norms[i0:j]))
        rise = i0 > 0 and ok[i0 - 1] and norms[i0] >= th["spike"] * norms[i0 - 1]
        fall = j < end and ok[j] and norms[peak] >= th["spike"] * norms[j]
        if j - i0 > window or not (rise or fall):
            continue
        before = finite(loss[max(0, i0 - window) : i0] if i0 > 0 else loss[:1])
        after = finite(loss[j : j + window])
        held = (
            before.size > 0
            and after.size >= 3
            and float(np.median(before)) > 0
            and float(np.median(after)) >= th["loss_jump"] * float(np.median(before))
        )
        thrown = thrown_weights(
            run, step_of(run, i0), step_of(run, j - 1), th["thrown_update"], th["thrown_scale"]
        )
        silenced = _silenced(run, step_of(run, j - 1))
        if held or thrown or silenced:
            found = _spike_finding(run, i0, peak, median, before, after, held, thrown)
            if silenced and not thrown:
                text = f"{found.text}; {silenced} has had no gradient at all since"
                evidence = {**found.evidence, "silenced_layer": silenced}
                return Finding(found.criterion, found.step, text, evidence, silenced)
            return found
    return None


def _silenced(run: RunData, last_step: int) -> str | None:
    """First layer (forward order) with a gradient up to ``last_step`` and exactly none after.

    "None" means an RMS of exactly zero on most sampled steps after it: every unit of the layer
    is dead or saturated, which no healthy run does to a whole layer.
    """
    layers = layer_rms(run)
    upto, later = layers.steps <= last_step, layers.steps > last_step
    if not upto.any() or np.count_nonzero(later) < 3:
        return None
    for col, module in enumerate(layers.modules):
        before, after = layers.rms[upto, col], layers.rms[later, col]
        after = after[np.isfinite(after)]
        if not np.any(np.isfinite(before) & (before > 0)) or after.size < 3:
            continue
        if float(np.mean(after == 0)) >= 0.6:
            return module
    return None


def _spike_finding(
    run: RunData,
    i0: int,
    peak: int,
    median: float,
    before: np.ndarray,
    after: np.ndarray,
    held: bool,
    thrown: list[ThrownWeight],
) -> Finding:
    at, top = step_of(run, i0), float(run.grad_norm[peak])
    text = (
        f"grad norm leapt to {fmt(top)} at step {step_of(run, peak)}, ×{fmt(top / median)} the "
        f"run's median {fmt(median)}"
    )
    evidence: dict[str, Any] = {
        "spike_step": at,
        "spike_peak_step": step_of(run, peak),
        "spike_grad_norm": top,
        "spike_factor": top / median,
        "run_median_grad_norm": median,
    }
    if thrown:
        w = thrown[0]
        text += (
            f", and the update at step {w.step} threw {w.param} to ×{fmt(w.scale)} He's "
            f"initialisation scale (‖ΔW‖/‖W‖ {fmt(w.update_ratio)})"
        )
        evidence.update(
            thrown_param=w.param,
            thrown_step=w.step,
            thrown_scale=w.scale,
            thrown_update_ratio=w.update_ratio,
            thrown_params=[t.param for t in thrown][:10],
        )
    if held:
        l0, l1 = float(np.median(before)), float(np.median(after))
        text += f"{';' if thrown else ','} the loss stayed ×{fmt(l1 / l0)} higher afterwards"
        evidence.update(loss_before=l0, loss_after=l1)
    layer = thrown[0].module if thrown else None
    return Finding("spike", at, text, evidence, layer)


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
