"""``exploding_gradients``: the gradient norm grows geometrically, or the first layer's is huge.

Five pieces of evidence, each scale-free: (1) the grad norm grew tenfold or more just before the
run went NaN, (2) the windowed median of the grad norm rose check after check, ×2 per check on
average, while the loss did not fall, (3) it leapt a thousandfold and the loss never recovered,
(4) the loss rose a thousandfold, (5) the first layer's RMS gradient stayed more than 70 times
the last layer's while training was unhealthy. When the run ended in NaN, this is the root cause
and the NaN is folded into the evidence; ``nan_loss`` is ordered after it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from netdoctor.diagnosis import Diagnosis, Fix, Severity
from netdoctor.rules.base import Rule, RuleDoc, Threshold
from netdoctor.rules.facts import (
    RECURRENT_TYPES,
    fmt,
    has_recurrent,
    layer_rms,
    lr_at,
    sites_of_type,
    step_of,
    valid_loss,
)
from netdoctor.rules.fixes import fix
from netdoctor.rules.onset import NonFiniteOnset, nonfinite_onset, trend_before
from netdoctor.rules.series import falls_less_than, finite, geometric_growth, median3, share
from netdoctor.runlog.run_data import RunData

RULE_ID = "exploding_gradients"


@dataclass(frozen=True, slots=True)
class _Finding:
    """One criterion that held: where it first held, a message clause, and its numbers."""

    criterion: str
    step: int
    text: str
    evidence: dict[str, Any]
    layer: str | None = None


def check(run: RunData, th: Mapping[str, float]) -> list[Diagnosis]:
    onset = nonfinite_onset(run)
    end = onset.index if onset is not None else run.n_steps  # judge the run before any NaN
    loss = valid_loss(run)
    findings = [
        f
        for f in (
            _into_nonfinite(run, th, onset),
            _growth(run, th, end, loss),
            _jump(run, th, end, loss),
            _blowup(run, th, end, loss),
            _layer_ratio(run, th, end, loss),
        )
        if f is not None
    ]
    if not findings:
        return []
    primary = findings[0]  # most telling first: NaN after growth, growth, jump, blow-up, ratio
    step = min(f.step for f in findings)
    recurrent = has_recurrent(run)
    layer = (
        primary.layer
        or _recurrent_layer(run)
        or _grown_layer(run, None if onset is None else onset.step)
    )
    lr = lr_at(run, min(end, run.n_steps - 1))
    evidence: dict[str, Any] = {"criteria": [f.criterion for f in findings], "step": step}
    for f in findings:
        evidence.update(f.evidence)
    evidence.update(
        layer=layer,
        recurrent=recurrent,
        lr=None if math.isnan(lr) else lr,
        nonfinite_step=None if onset is None else onset.step,
    )
    fixes = _fixes(recurrent, ratio_only=primary.criterion == "layer_ratio")
    tail = "" if math.isnan(lr) else f" (lr {fmt(lr)})"
    if onset is not None and primary.criterion != "into_nonfinite":
        tail += f", then the {onset.source} became non-finite at step {onset.step}"
    advice = (
        "add batchnorm or use Xavier init, and clip gradients"
        if fixes[0].id == "batchnorm"
        else "clip gradients (clip_grad_norm_, max_norm=1.0) and lower the learning rate"
    )
    message = f"{primary.text}{tail}: {advice}"
    return [Diagnosis(RULE_ID, Severity.ERROR, step, layer, message, evidence, tuple(fixes))]


def _into_nonfinite(
    run: RunData, th: Mapping[str, float], onset: NonFiniteOnset | None
) -> _Finding | None:
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
    return _Finding("into_nonfinite", trend.rise_step, text, evidence)


def _growth(run: RunData, th: Mapping[str, float], end: int, loss: np.ndarray) -> _Finding | None:
    """TheDeepChecker's ×2 per check over 5 checks, on windowed medians, loss not falling."""
    span = geometric_growth(
        run.grad_norm[:end], th["growth_factor"], int(th["growth_checks"]), th["min_total_growth"]
    )
    if span is None:
        return None
    during = loss[span.start : span.end + 1]
    if falls_less_than(during, 0.1) is False:  # loss fell >10 % meanwhile: a healthy warm-up
        return None
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
    return _Finding("geometric_growth", first, text, evidence)


def _jump(run: RunData, th: Mapping[str, float], end: int, loss: np.ndarray) -> _Finding | None:
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
        return _Finding("jump", at, text, evidence)
    return None


def _blowup(run: RunData, th: Mapping[str, float], end: int, loss: np.ndarray) -> _Finding | None:
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
    return _Finding("loss_blowup", at, text, evidence)


def _layer_ratio(
    run: RunData, th: Mapping[str, float], end: int, loss: np.ndarray
) -> _Finding | None:
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
    return _Finding("layer_ratio", at, text, evidence, layers.modules[0])


def _unhealthy_sign(norms: np.ndarray, loss: np.ndarray, growth: float) -> str | None:
    """Why a large layer ratio hurts here: a growing norm, or a loss rising or never falling."""
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
        if float(np.min(median3(kept))) >= start - 0.1 * abs(start):
            return f"the loss never falling 10 % below its start {fmt(start)}"
    return None


def _recurrent_layer(run: RunData) -> str | None:
    """The first recurrent module: where gradients compound over time steps."""
    found = sites_of_type(run, RECURRENT_TYPES, "recurrent")
    return found[0].module if found else None


def _grown_layer(run: RunData, before_step: int | None) -> str | None:
    """The layer whose RMS gradient grew most over the sampled steps (None: no clear one)."""
    layers = layer_rms(run)
    keep = layers.steps < (np.inf if before_step is None else before_step)
    best, best_growth = None, 2.0
    for col, module in enumerate(layers.modules):
        values = layers.rms[keep, col]
        values = values[np.isfinite(values) & (values > 0)]
        if values.size >= 2 and values[-1] / values[0] > best_growth:
            best, best_growth = module, float(values[-1] / values[0])
    return best


def _fixes(recurrent: bool, ratio_only: bool) -> list[Fix]:
    if recurrent:
        clip = fix(
            "grad_clipping",
            "clip the gradient norm between backward() and step(): recurrent layers multiply "
            "gradients once per time step, so they can grow geometrically with sequence length: "
            "torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)",
        )
        return [clip, fix("lower_lr"), fix("xavier_init")]
    if ratio_only:
        return [fix("batchnorm"), fix("xavier_init"), fix("grad_clipping"), fix("lower_lr")]
    return [fix("grad_clipping"), fix("lower_lr"), fix("batchnorm"), fix("xavier_init")]


RULE = Rule(
    id=RULE_ID,
    severity=Severity.ERROR,
    title="Gradients grow geometrically (exploding gradients)",
    thresholds=(
        Threshold(
            "growth_factor",
            2.0,
            "rise of the windowed median grad norm per check",
            "TheDeepChecker (TOSEM'22): ×2 growth over 5 checks",
        ),
        Threshold(
            "growth_checks",
            5.0,
            "checks in a row that must each show that rise",
            "TheDeepChecker (TOSEM'22)",
        ),
        Threshold(
            "min_total_growth",
            100.0,
            "total growth the rising stretch must reach, so noise cannot fake it",
            "netdoctor (2^5 = 32, rounded up for noise)",
        ),
        Threshold(
            "trend_growth",
            10.0,
            "grad-norm growth just before a NaN that makes it an explosion, and growth "
            "over the run that makes a large layer ratio unhealthy",
            "Pascanu et al. 2013; netdoctor",
        ),
        Threshold(
            "nan_window",
            20.0,
            "steps before the first NaN in which that growth counts; also the window around a jump",
            "netdoctor",
        ),
        Threshold(
            "spike",
            1000.0,
            "grad norm over its recent median that counts as a jump",
            "Pascanu et al. 2013 (gradient spikes); AUTOTRAINER's 1e3 magnitude",
        ),
        Threshold(
            "loss_jump",
            10.0,
            "loss after a jump over the loss before it, for the jump to count (no recovery)",
            "netdoctor",
        ),
        Threshold(
            "loss_blowup",
            1000.0,
            "loss over its initial value that counts as divergence",
            "AUTOTRAINER (ICSE'21): loss ≥ 1e3",
        ),
        Threshold(
            "layer_ratio",
            70.0,
            "first-layer over last-layer RMS gradient that counts as exploding",
            "AUTOTRAINER (ICSE'21): ‖g1‖/‖gL‖ > 70",
        ),
        Threshold(
            "min_fraction",
            0.5,
            "share of sampled steps on which the layer ratio must hold",
            "netdoctor",
        ),
    ),
    fixes=("grad_clipping", "lower_lr", "batchnorm", "xavier_init"),
    doc=RuleDoc(
        what=(
            "Gradients that grow geometrically during training: the total gradient norm doubles "
            "check after check (windowed medians, so single spikes do not count) while the loss "
            "does not fall; or it grows tenfold just before the run turns NaN; or it leaps a "
            "thousandfold and the loss never recovers; or the loss climbs a thousandfold; or "
            "the first layer's RMS gradient stays 70x the last layer's while "
            "training is unhealthy (norm growing, loss rising or never falling)."
        ),
        why=(
            "Backpropagation multiplies the gradient by each layer's weights on its way back. "
            "When those factors are above one, the gradient grows exponentially with depth (and "
            "with time steps in a recurrent network), so the updates become huge, the weights "
            "jump far away, training turns unstable and usually ends in NaN. Deep feed-forward "
            "and recurrent networks are where it happens most."
        ),
        how_to_fix=(
            "Clip the gradient: by norm (scale the whole gradient down when its norm passes a "
            "threshold, usually 1 to 10) or by value (cap each entry). Lower the learning rate. "
            "Initialise with Xavier/He so each layer keeps the gradient's size, and add "
            "batchnorm to keep each layer's inputs in range."
        ),
        example=(
            "loss.backward()\n"
            "torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)  # by norm\n"
            "# or: torch.nn.utils.clip_grad_value_(model.parameters(), clip_value=0.5)\n"
            "optimizer.step()"
        ),
    ),
    check=check,
)
