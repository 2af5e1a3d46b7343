"""``vanishing_gradients``: early layers get gradients orders of magnitude smaller than the last.

Judged on RMS gradients (norm / sqrt(numel)) so layer sizes do not matter, relative to the last
layer so the loss scale does not matter, and on most sampled steps so one quiet step does not
count. Embedding tables are left out: their gradients are sparse by design. When one huge update
threw a weight matrix far past its initialisation scale before the gradients vanished, the units
it feeds are saturated or dead because of that explosion: the advice is then the explosion's
(lower the learning rate, clip gradients), and the engine lists this after exploding_gradients.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from netdoctor.diagnosis import Diagnosis, Fix, Severity
from netdoctor.rules.base import Rule, RuleDoc, Threshold
from netdoctor.rules.facts import (
    BOUNDED_TYPES,
    RECURRENT_TYPES,
    RELU_TYPES,
    LayerRMS,
    fmt,
    layer_rms,
    sites_by_module,
    sites_of_type,
    thrown_weights,
)
from netdoctor.rules.fixes import fix
from netdoctor.rules.series import share
from netdoctor.runlog.run_data import RunData
from netdoctor.runlog.schema import ParamStat

RULE_ID = "vanishing_gradients"


def check(run: RunData, th: Mapping[str, float]) -> list[Diagnosis]:
    layers = layer_rms(run)
    if len(layers.modules) < 2:
        return []
    last = layers.rms[:, -1]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = layers.rms[:, :-1] / last[:, None]  # (m, L-1)
    found: list[tuple[int, np.ndarray, np.ndarray]] = []  # (column, hits, valid)
    for col in range(ratios.shape[1]):
        layer, versus = layers.rms[:, col], ratios[:, col]
        valid = np.isfinite(layer) & np.isfinite(last) & (last > 0)
        autotrainer = (versus < th["ratio"]) & (layer < th["first_rms"])
        sagemaker = (layer < th["abs_rms"]) & (versus < th["tiny_ratio"])
        hits = valid & (autotrainer | sagemaker)
        fraction, n = share(hits, valid)
        if n >= th["min_samples"] and fraction >= th["min_fraction"]:
            found.append((col, hits, valid))
    if not found:
        return []
    col, hits, valid = found[0]  # earliest vanishing layer in forward order
    module = layers.modules[col]
    rms = float(np.median(layers.rms[valid, col]))
    last_rms = float(np.median(last[valid]))
    ratio = float(np.median(ratios[valid, col]))
    step = int(layers.steps[np.nonzero(hits)[0][0]])
    zero = float(np.mean(layers.rms[valid, col] == 0)) >= th["min_fraction"]
    bounded = [s.name for s in sites_of_type(run, BOUNDED_TYPES, "bounded")]
    relu = bool(sites_of_type(run, RELU_TYPES, "relu"))
    scale = _weight_scale_vs_he(run, module)
    kinds = sites_by_module(run)
    n_hit, n_valid = int(np.count_nonzero(hits)), int(np.count_nonzero(valid))
    evidence: dict[str, Any] = {
        "layer": module,
        "rms": rms,
        "last_layer": layers.modules[-1],
        "last_rms": last_rms,
        "ratio": ratio,
        "share": n_hit / n_valid,
        "samples": n_valid,
        "vanishing_layers": [layers.modules[c] for c, _, _ in found],
        "rms_profile": _profile(layers, valid),
        "bounded_activations": bounded[:10],
        "zero_gradients": zero,
        "weight_scale_vs_he": scale,
    }
    recurrent = kinds[module].module_type in RECURRENT_TYPES if module in kinds else False
    fixes, advice = _fixes(bool(bounded), zero and relu, scale, recurrent)
    thrown = thrown_weights(run, 0, step)
    if thrown:  # an explosion threw the weights and left the units saturated or dead
        t = thrown[0]
        evidence.update(thrown_param=t.param, thrown_step=t.step, thrown_scale=t.scale)
        fixes = [fix("lower_lr"), fix("grad_clipping"), *(f for f in fixes if f.id != "lower_lr")]
        advice = (
            f"one update at step {t.step} threw {t.param} to ×{fmt(t.scale)} He's scale and the "
            "units it feeds have saturated or died since: that explosion is the cause, so lower "
            "the learning rate and clip gradients"
        )
    size = (
        "is exactly zero"
        if zero
        else "is mostly exactly zero"
        if rms == 0
        else f"fell to {fmt(rms)}"
    )
    message = (
        f"RMS gradient of {module} {size} (last layer {layers.modules[-1]} {fmt(last_rms)}, "
        f"ratio {fmt(ratio)}) on {n_hit} of {n_valid} sampled steps from step {step}: {advice}"
    )
    return [Diagnosis(RULE_ID, Severity.WARNING, step, module, message, evidence, tuple(fixes))]


def _fixes(
    bounded: bool, dead_relu: bool, scale: float | None, recurrent: bool
) -> tuple[list[Fix], str]:
    """Rank the fixes for this case and say the first two in words."""
    if recurrent:
        orthogonal = fix(
            "xavier_init",
            "initialise the recurrent (hidden-to-hidden) weights orthogonally so repeated "
            "multiplication over time steps neither shrinks nor grows the gradient: "
            "nn.init.orthogonal_(rnn.weight_hh_l0); prefer nn.LSTM/nn.GRU to a plain nn.RNN",
        )
        return (
            [orthogonal, fix("lower_lr"), fix("residual_connections")],
            "initialise the recurrent weights orthogonally and use LSTM/GRU cells; if its gates "
            "saturated after a large update, lower the learning rate",
        )
    if bounded:
        return (
            [fix("relu_activation"), fix("he_init"), fix("batchnorm"), fix("residual_connections")],
            "sigmoid/tanh saturate and pass back little gradient: use ReLU with He init, or add "
            "batchnorm",
        )
    if dead_relu:
        return (
            [fix("leaky_relu"), fix("he_init"), fix("batchnorm")],
            "its ReLU units pass no gradient: use LeakyReLU and He init, or add batchnorm",
        )
    small = "" if scale is None or scale >= 0.5 else f" (weights at {fmt(scale)}x the He scale)"
    return (
        [fix("he_init"), fix("batchnorm"), fix("residual_connections")],
        f"use He init with ReLU{small}, or add batchnorm or residual connections",
    )


def _profile(layers: LayerRMS, valid: np.ndarray) -> dict[str, float]:
    """Median RMS gradient per layer in forward order (up to 30 layers), for the report."""
    profile: dict[str, float] = {}
    for col, module in enumerate(layers.modules[:30]):
        values = layers.rms[valid, col]
        values = values[np.isfinite(values)]
        if values.size:
            profile[module] = float(np.median(values))
    return profile


def _weight_scale_vs_he(run: RunData, module: str) -> float | None:
    """RMS of the layer's weight at the first sample over He's std sqrt(2 / fan_in)."""
    weight = next((p for p in run.params if p.name == f"{module}.weight"), None)
    if weight is None or len(weight.shape) < 2 or not run.sample_steps.size:
        return None
    fan_in = int(np.prod(weight.shape[1:]))
    norms = run.param_stat(ParamStat.WEIGHT_NORM)[:, weight.idx]
    norms = norms[np.isfinite(norms)]
    if not norms.size or fan_in <= 0 or weight.numel <= 0:
        return None
    rms = float(norms[0]) / math.sqrt(weight.numel)
    return rms / math.sqrt(2.0 / fan_in)


RULE = Rule(
    id=RULE_ID,
    severity=Severity.WARNING,
    title="Early layers get almost no gradient (vanishing gradients)",
    thresholds=(
        Threshold(
            "ratio",
            1e-3,
            "RMS gradient of a layer over the last layer's below which it is vanishing",
            "AUTOTRAINER (ICSE'21): ‖g1‖/‖gL‖ < 1e-3",
        ),
        Threshold(
            "first_rms",
            1e-4,
            "RMS gradient the layer must also be below for the ratio test",
            "AUTOTRAINER (ICSE'21): ‖g1‖ < 1e-4 (applied to the RMS)",
        ),
        Threshold(
            "abs_rms",
            1e-7,
            "RMS gradient below which a layer is vanishing on its own (RMS bounds mean|g|)",
            "SageMaker Debugger VanishingGradient: mean|g| < 1e-7",
        ),
        Threshold(
            "tiny_ratio",
            0.1,
            "with the absolute test the layer must also be 10x below the last layer, so a "
            "converged run (every gradient tiny) does not count",
            "netdoctor",
        ),
        Threshold(
            "min_fraction",
            0.6,
            "share of sampled steps on which it must hold (most, not one)",
            "netdoctor",
        ),
        Threshold("min_samples", 3.0, "sampled steps needed before judging", "netdoctor"),
    ),
    fixes=(
        "relu_activation",
        "he_init",
        "batchnorm",
        "residual_connections",
        "leaky_relu",
        "xavier_init",
        "lower_lr",
        "grad_clipping",
    ),
    doc=RuleDoc(
        what=(
            "A layer whose RMS gradient stays orders of magnitude below the last layer's "
            "(ratio < 1e-3 with an RMS < 1e-4, or an RMS < 1e-7 that is also 10x below the last "
            "layer) on most sampled steps. Reports the earliest such layer in forward order."
        ),
        why=(
            "Backpropagation multiplies the gradient by each layer's local derivative on its way "
            "to the input. Sigmoid and tanh saturate for large inputs and their derivative is "
            "at most 0.25 and 1, weights that are too small shrink it further, so in a deep "
            "network the early layers receive almost nothing: their weights barely change and "
            "they learn very slowly or not at all, while the last layers do all the work."
        ),
        how_to_fix=(
            "Use non-saturating activations (ReLU, LeakyReLU, ELU) in hidden layers; initialise "
            "with He init for ReLU or Xavier/Glorot for tanh/sigmoid so each layer keeps the "
            "signal's variance; add batch normalisation; in very deep networks add residual "
            "(skip) connections so the gradient has a short path back to the first layers. If "
            "the gradient vanished right after one huge update threw the weights (an early "
            "explosion saturated or killed the units), lower the learning rate and clip "
            "gradients instead."
        ),
        example=(
            "nn.Sequential(*[nn.Sequential(nn.Linear(64, 64), nn.Sigmoid()) for _ in range(10)])"
            "  # vanishes\n"
            "nn.Sequential(*[nn.Sequential(nn.Linear(64, 64), nn.BatchNorm1d(64), nn.ReLU()) "
            "for _ in range(10)])  # with nn.init.kaiming_normal_ on each Linear"
        ),
    ),
    check=check,
)
