"""``exploding_gradients``: the gradient norm grows geometrically, or the first layer's is huge.

Six pieces of evidence, each scale-free, the most telling first: (1) the windowed median of the
grad norm rose check after check, ×2 per check on average, while the loss did not fall, (2) the
grad norm grew tenfold or more just before the run went NaN, (3) it leapt a thousandfold over its
recent median and the loss never recovered, (4) it leapt a thousandfold over the whole run's
median, often in the very first steps, and did lasting damage (the loss stayed up, or the update
threw a weight matrix far past its initialisation scale, after which saturated or dead units pass
no gradient), (5) the loss rose a thousandfold, (6) the first layer's RMS gradient stayed more
than 70 times the last layer's while training was unhealthy. When the run ended in NaN, this is
the root cause and the NaN is folded into the evidence; ``nan_loss`` is ordered after it, and so
are the vanishing gradients and the underfitting that an early explosion leaves behind.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from netdoctor.diagnosis import Diagnosis, Fix, Severity
from netdoctor.rules.base import Rule, RuleDoc, Threshold
from netdoctor.rules.explosion import blowup, growth, into_nonfinite, jump, layer_ratio, spike
from netdoctor.rules.facts import (
    INPUT_SCALE,
    MIN_STEPS,
    RECURRENT_TYPES,
    THROWN_SCALE,
    THROWN_UPDATE,
    fmt,
    has_recurrent,
    input_rms,
    layer_rms,
    lr_at,
    sites_of_type,
    valid_loss,
)
from netdoctor.rules.fixes import fix
from netdoctor.rules.onset import nonfinite_onset
from netdoctor.runlog.run_data import RunData

RULE_ID = "exploding_gradients"


def check(run: RunData, th: Mapping[str, float]) -> list[Diagnosis]:
    onset = nonfinite_onset(run)
    end = onset.index if onset is not None else run.n_steps  # judge the run before any NaN
    loss = valid_loss(run)
    trends = end >= MIN_STEPS  # trends need enough steps before any NaN
    candidates = [  # most telling first: it leads the message
        growth(run, th, end, loss) if trends else None,
        into_nonfinite(run, th, onset),
        jump(run, th, end, loss) if trends else None,
        spike(run, th, end, loss) if trends else None,
        blowup(run, th, end, loss) if trends else None,
        layer_ratio(run, th, end, loss) if trends else None,
    ]
    findings = [f for f in candidates if f is not None]
    if not findings:
        return []
    primary = findings[0]
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
    scale = input_rms(run)
    raw = scale is not None and scale >= th["input_scale"]
    evidence.update(input_rms=scale)
    fixes = _fixes(recurrent, ratio_only=primary.criterion == "layer_ratio")
    if raw:  # the gradient is as large as the inputs: scale them, then the lr can stay sane
        fixes = [_normalize(scale or 0.0), *(f for f in fixes if f.id != "normalize_inputs")]
    tail = "" if math.isnan(lr) else f" (lr {fmt(lr)})"
    if onset is not None and primary.criterion != "into_nonfinite":  # fold the NaN in
        tail += f", then the {onset.source} became non-finite at step {onset.step}"
    if raw:
        advice = (
            f"the inputs are not normalised (RMS {fmt(scale or 0.0)}): standardise them (and a "
            "regression's targets), lower the learning rate and clip gradients"
        )
    elif fixes[0].id == "batchnorm":
        advice = "add batchnorm or use Xavier init, and clip gradients"
    else:
        advice = "clip gradients (clip_grad_norm_, max_norm=1.0) and lower the learning rate"
    message = f"{primary.text}{tail}: {advice}"
    return [Diagnosis(RULE_ID, Severity.ERROR, step, layer, message, evidence, tuple(fixes))]


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


def _normalize(scale: float) -> Fix:
    return fix(
        "normalize_inputs",
        f"standardise the inputs (their RMS is {fmt(scale)}, not about 1) with the training-set "
        "statistics, x = (x - mean) / std, and for a regression the targets too, y = (y - "
        "y_mean) / y_std (predict y * y_std + y_mean): gradients scale with the inputs and the "
        "loss, so raw columns in the thousands make any usual learning rate diverge",
    )


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
            "grad norm over its recent median that counts as a jump, and over the whole run's "
            "median that counts as a one-off leap",
            "Pascanu et al. 2013 (gradient spikes); AUTOTRAINER's 1e3 magnitude",
        ),
        Threshold(
            "loss_jump",
            10.0,
            "loss after a jump over the loss before it, for the jump to count (no recovery)",
            "netdoctor",
        ),
        Threshold(
            "thrown_update",
            THROWN_UPDATE,
            "‖ΔW‖/‖W‖ of one update from which it replaced the weight matrix (with thrown_scale, "
            "the damage a one-off leap must leave)",
            "cs231n (≈1e-3 is healthy); TheDeepChecker (TOSEM'22): upper bound 1e-1",
        ),
        Threshold(
            "thrown_scale",
            THROWN_SCALE,
            "RMS of a weight matrix over He's sqrt(2/fan_in) after such an update",
            "DeepDiagnosis (ICSE'22): weight variance outside [1e-5, 10]; netdoctor margin",
        ),
        INPUT_SCALE,
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
    fixes=("grad_clipping", "lower_lr", "batchnorm", "xavier_init", "normalize_inputs"),
    doc=RuleDoc(
        what=(
            "Gradients that grow geometrically during training: the total gradient norm doubles "
            "check after check (windowed medians, so single spikes do not count) while the loss "
            "does not fall; or it grows tenfold just before the run turns NaN; or it leaps a "
            "thousandfold over its recent median and the loss never recovers; or it leaps a "
            "thousandfold over the whole run's median (often in the first steps) and the loss "
            "stays up or the update throws a weight matrix 10x past He's scale; or the loss "
            "climbs a thousandfold; or "
            "the first layer's RMS gradient stays 70x the last layer's while "
            "training is unhealthy (grad norm growing tenfold, or loss rising)."
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
            "Standardise raw inputs (and a regression's targets): gradients scale with them. "
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
