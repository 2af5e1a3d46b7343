"""``saturated_activations``: sigmoid/tanh units pinned at their bounds for most of a layer.

The capture side counts, per bounded activation module (sigmoid, tanh, hardtanh, softsign...),
the share of its outputs within 0.5 % of the half-range from a bound, where the derivative is
below 1 % of its peak. A layer counts when at least half of its outputs sit there on most of
the run's later samples; a run that went non-finite is judged up to that point. The model's own
output activation (a final sigmoid for BCELoss, a tanh that makes pixels) is left out: reaching
its bounds is what a confident model does. One module used after several layers pools its
calls, so its first call is also estimated from the pre-activations that feed it. Which fix
leads depends on the cause the log shows: raw inputs, saturation from the first step (weights
too large for tanh/sigmoid), or saturation that set in right after large updates.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from netdoctor.diagnosis import Diagnosis, Fix, Severity
from netdoctor.rules.activity import (
    Persistence,
    feeds_a_layer,
    layer_before,
    percent,
    persistence,
    update_before_onset,
    usable_rows,
)
from netdoctor.rules.base import Rule, RuleDoc, Threshold
from netdoctor.rules.facts import INPUT_SCALE, MIN_STEPS, fmt, input_rms
from netdoctor.rules.fixes import fix
from netdoctor.runlog.run_data import RunData, SiteInfo
from netdoctor.runlog.schema import ActStat

RULE_ID = "saturated_activations"
#: The capture side counts an output as saturated within 0.5 % of the half-range from a bound
#: (capture.sites.SATURATION_MARGIN): for these activations, beyond this |pre-activation|.
SATURATING_INPUT = {"Tanh": math.atanh(0.995), "Sigmoid": math.log(0.9975 / 0.0025)}


def _tail(mean: float, std: float, bound: float) -> float:
    """P(|z| ≥ bound) for z ~ N(mean, std²): the saturated share the pre-activations imply."""
    if not (math.isfinite(mean) and math.isfinite(std)) or std <= 0:
        return math.nan
    below = 0.5 * math.erfc((bound + mean) / (std * math.sqrt(2)))  # z ≤ -bound
    above = 0.5 * math.erfc((bound - mean) / (std * math.sqrt(2)))  # z ≥ bound
    return below + above


def saturated_fraction(run: RunData, site: SiteInfo) -> tuple[np.ndarray, bool]:
    """Per-sample saturated share of ``site``; and whether it is partly estimated.

    A module used more than once per step (one ``self.act = nn.Tanh()`` after every layer) has
    its calls pooled: a first layer pinned at ±1 and a healthy second one read as 50 %. For
    Tanh and Sigmoid its first call is then also estimated from the layer that feeds it (its
    pre-activations' mean and std, taken as Gaussian), and the larger of the two counts.
    """
    measured = run.act[:, site.idx, ActStat.SAT_FRAC].astype(np.float64)
    calls = run.act[:, site.idx, ActStat.CALLS]
    bound = SATURATING_INPUT.get(site.module_type)
    before = layer_before(run, site)
    shared = calls.size > 0 and float(np.nanmedian(calls)) > 1
    if not shared or bound is None or before is None:
        return measured, False
    pre = run.act[:, before.idx, :].astype(np.float64)
    means, stds = pre[:, ActStat.MEAN], pre[:, ActStat.STD]
    estimate = np.array([_tail(m, sd, bound) for m, sd in zip(means, stds, strict=True)])
    return np.fmax(measured, estimate), True


def bounded_sites(run: RunData) -> list[SiteInfo]:
    """Bounded activation modules that feed another layer, in forward order."""
    return [
        s
        for s in run.sites_in_forward_order("output")
        if s.family == "bounded" and feeds_a_layer(run, s)
    ]


def check(run: RunData, th: Mapping[str, float]) -> list[Diagnosis]:
    if run.n_steps < MIN_STEPS:
        return []
    rows = usable_rows(run)
    found: list[tuple[SiteInfo, Persistence]] = []
    estimated: set[int] = set()
    for site in bounded_sites(run):
        values, partly = saturated_fraction(run, site)
        if partly:
            estimated.add(site.idx)
        held = persistence(
            run,
            values,
            th["saturated_fraction"],
            th["min_share"],
            th["min_samples"],
            rows,
        )
        if held is not None:
            found.append((site, held))
    if not found:
        return []
    site, held = found[0]  # the earliest in forward order: what it saturates feeds the rest
    before = layer_before(run, site)
    from_start = held.rise_step is None
    feeding = before.module if before is not None else None
    big = update_before_onset(run, held, feeding, th["big_update"])
    after_big = big is not None and big.ratio >= th["big_update"]
    scale = input_rms(run)
    raw = scale is not None and scale >= th["input_scale"]
    evidence: dict[str, Any] = {
        "layer": site.module,
        "activation": site.module_type,
        "after_layer": before.module if before is not None else None,
        "saturated_fraction": held.level,
        "saturated_at_start": held.first,
        "since_step": held.onset_step,
        "share": held.share,
        "samples": held.samples,
        "saturated_layers": {s.module: h.level for s, h in found},
        "from_start": from_start,
        "input_rms": scale,
        "shared_module": site.idx in estimated,
    }
    if before is not None:
        pre = run.act[:, before.idx, ActStat.STD].astype(np.float64)
        pre = pre[np.isfinite(pre)]
        if pre.size:
            evidence["pre_activation_std"] = float(np.median(pre[-5:]))
    if big is not None:
        evidence.update(
            largest_update=big.ratio, largest_update_param=big.param, largest_update_step=big.step
        )
    fixes, why = _fixes(raw, from_start, after_big, big, scale, site.module_type)
    after = f" (after {before.module})" if before is not None else ""
    message = (
        f"{percent(held.level)} of the outputs of {site.module_type} {site.module}{after} sit at "
        f"its bounds, where it passes back almost no gradient, on {held.hits} of "
        f"{held.samples} later sampled steps since step {held.onset_step} "
        f"({percent(held.first)} at the start): {why}"
    )
    return [
        Diagnosis(
            RULE_ID, Severity.WARNING, held.onset_step, site.module, message, evidence, tuple(fixes)
        )
    ]


def _fixes(
    raw: bool, from_start: bool, after_big: bool, big: Any, scale: float | None, kind: str
) -> tuple[list[Fix], str]:
    """Rank the fixes for the cause the log shows, and say the first in words."""
    rest = [fix("xavier_init"), fix("batchnorm"), fix("relu_activation")]
    if raw:
        norm = fix(
            "normalize_inputs",
            f"standardise the inputs (their RMS is {fmt(scale)}, not about 1) with the "
            "training-set statistics so the first pre-activations land in the activation's "
            "working range: x = (x - mean) / std",
        )
        return (
            [norm, *rest],
            f"the raw inputs (RMS {fmt(scale)}) drive the pre-activations far past the range "
            "where it bends; standardise the inputs",
        )
    if after_big:
        return (
            [fix("lower_lr"), fix("batchnorm"), fix("relu_activation"), fix("xavier_init")],
            f"it saturated after an update moved {big.param} by ×{fmt(big.ratio)} of its norm in "
            f"one step (step {big.step}): a learning rate that high grows the weights until the "
            "pre-activations leave its working range; lower the learning rate",
        )
    if from_start:
        return (
            rest,
            f"it was saturated from the first step, so the weights before it are too large for "
            f"{kind}: initialise them with Xavier/Glorot, or normalise the pre-activations",
        )
    return (
        [fix("relu_activation"), fix("batchnorm"), fix("xavier_init")],
        "its pre-activations grew out of its working range during training: use ReLU in hidden "
        "layers, or batchnorm to keep the pre-activations in range",
    )


RULE = Rule(
    id=RULE_ID,
    severity=Severity.WARNING,
    title="Sigmoid/tanh units stuck at their bounds (saturated activations)",
    thresholds=(
        Threshold(
            "saturated_fraction",
            0.5,
            "share of a bounded activation's outputs at its bounds (within 0.5 % of the "
            "half-range, derivative < 1 % of its peak) from which the layer is saturated",
            "SageMaker Debugger SaturatedActivation: threshold_layer 50 %; DeepDiagnosis "
            "(ICSE'22): > 50 %",
        ),
        Threshold(
            "min_share",
            0.75,
            "share of the run's later sampled steps (its second half) on which it must hold",
            "netdoctor",
        ),
        Threshold("min_samples", 3.0, "later sampled steps needed before judging", "netdoctor"),
        Threshold(
            "big_update",
            0.1,
            "update over weight norm (‖ΔW‖ / ‖W‖) of one step before the onset from which the "
            "saturation is put down to a learning rate too high",
            "cs231n (≈1e-3 is healthy); TheDeepChecker (TOSEM'22): upper bound 1e-1",
        ),
        INPUT_SCALE,
    ),
    fixes=("normalize_inputs", "lower_lr", "xavier_init", "batchnorm", "relu_activation"),
    doc=RuleDoc(
        what=(
            "A sigmoid, tanh or other bounded activation (not the model's output) with at least "
            "half of its outputs pinned at its bounds on most of the run's later sampled steps. "
            "A Tanh/Sigmoid module shared by several layers is also judged on its first call, "
            "estimated from the pre-activations that feed it. "
            "Reports the earliest such layer, since when, how saturated it was at the start, "
            "and the input scale and largest update before it saturated."
        ),
        why=(
            "Sigmoid and tanh flatten out for large inputs: at the bounds their derivative is "
            "almost zero, so the gradient through a saturated unit vanishes and the weights "
            "before it stop learning, while the unit's output carries one bit instead of a "
            "value. Inputs that are not normalised, weights initialised too large for "
            "tanh/sigmoid (N(0, 1) instead of a 1/sqrt(fan_in) scale) or weights grown by a "
            "learning rate that is too high all push the pre-activations into the flat region."
        ),
        how_to_fix=(
            "Standardise the inputs to zero mean and unit variance; initialise tanh/sigmoid "
            "layers with Xavier/Glorot so pre-activations start near the activation's working "
            "range; add batch normalisation before the activation to keep them there; lower "
            "the learning rate if the saturation followed large updates; or use ReLU-family "
            "activations in hidden layers, which do not saturate for positive inputs."
        ),
        example=(
            "nn.Linear(64, 128), nn.Tanh()  # with nn.init.normal_(w, std=1.0): saturated\n"
            "nn.Linear(64, 128), nn.Tanh()  # with nn.init.xavier_uniform_(w): in range"
        ),
    ),
    check=check,
)
