"""``unnormalized_inputs``: the model's first layer is fed values far from zero mean, unit scale.

Read at the input of the first module that runs (its 'input' site), median over all sampled
steps: the data's distribution does not change with training, so every batch is a witness.
Three ways to be off: too large (RMS = sqrt(mean² + std²) ≥ ``input_scale``, the shared
threshold at which the other rules put normalising the inputs first), too small (a dense input
whose RMS is below ``min_scale``; sparse inputs such as bag-of-words or one-hot vectors are
small by nature and left out) and off-centre (|mean| ≥ ``offset_ratio`` × std). Token ids (an
Embedding first) are not activations and are skipped, and so is a model whose first layer is a
normalisation layer: it standardises its inputs itself.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from netdoctor.diagnosis import Diagnosis, Fix, Severity
from netdoctor.rules.activity import first_site
from netdoctor.rules.base import Rule, RuleDoc, Threshold
from netdoctor.rules.facts import INPUT_SCALE, fmt
from netdoctor.rules.fixes import fix
from netdoctor.runlog.run_data import RunData
from netdoctor.runlog.schema import ActStat

RULE_ID = "unnormalized_inputs"
#: Share of exact zeros from which an input is sparse (bag-of-words, one-hot, masks): its
#: small RMS is its nature, not a scaling mistake.
SPARSE_ZEROS = 0.5


def check(run: RunData, th: Mapping[str, float]) -> list[Diagnosis]:
    site = first_site(run)
    if site is None or site.role != "input" or site.family != "input":
        return []  # the model starts with a module whose input is not measured (an Embedding)
    if any(s.module == site.module and s.family == "norm" for s in run.sites):
        return []  # the model normalises its own inputs
    stats = run.act[:, site.idx, :].astype(np.float64)
    ok = np.isfinite(stats[:, ActStat.MEAN]) & np.isfinite(stats[:, ActStat.STD])
    ok &= stats[:, ActStat.CALLS] > 0
    if not ok.any():
        return []
    rows = stats[ok]
    mean = float(np.median(rows[:, ActStat.MEAN]))
    std = float(np.median(rows[:, ActStat.STD]))
    low = float(np.min(rows[:, ActStat.MIN]))
    high = float(np.max(rows[:, ActStat.MAX]))
    zeros = float(np.median(rows[:, ActStat.ZERO_FRAC]))
    rms = math.sqrt(mean * mean + std * std)
    if rms >= th["input_scale"]:
        problem = "too_large"
    elif rms <= th["min_scale"] and zeros < SPARSE_ZEROS:
        problem = "too_small"
    elif abs(mean) >= th["offset_ratio"] * std and abs(mean) > 0:
        problem = "off_centre"
    else:
        return []
    step = int(run.sample_steps[np.nonzero(ok)[0][0]])
    evidence: dict[str, Any] = {
        "layer": site.module,
        "site": site.name,
        "problem": problem,
        "mean": mean,
        "std": std,
        "rms": rms,
        "min": low,
        "max": high,
        "zero_fraction": zeros,
        "samples": int(ok.sum()),
    }
    pixels = 1.0 < high <= 255.0 and low >= 0.0 and problem == "too_large"
    evidence["looks_like_raw_pixels"] = pixels
    what = {
        "too_large": f"RMS {fmt(rms)}, far above 1",
        "too_small": f"RMS {fmt(rms)}, far below 1",
        "off_centre": f"mean {fmt(mean)} is {fmt(abs(mean) / std) if std > 0 else 'inf'}× its std",
    }[problem]
    message = (
        f"the model's input (at {site.module}) has mean {fmt(mean)} and std {fmt(std)}, values "
        f"from {fmt(low)} to {fmt(high)} ({what}): the first layer's pre-activations and "
        "gradients scale with it, so standardise the inputs with the training-set mean and std"
    )
    fixes = _fixes(mean, std, pixels)
    return [Diagnosis(RULE_ID, Severity.WARNING, step, site.module, message, evidence, fixes)]


def _fixes(mean: float, std: float, pixels: bool) -> tuple[Fix, ...]:
    if pixels:
        norm = fix(
            "normalize_inputs",
            "scale the raw pixels to [0, 1] and standardise them with the training set's "
            "per-channel statistics: transforms.Compose([transforms.ToTensor(), "
            "transforms.Normalize(mean, std)]), or x = (x / 255 - mean) / std",
        )
    else:
        norm = fix(
            "normalize_inputs",
            f"standardise each input feature with the training-set statistics (here mean "
            f"{fmt(mean)}, std {fmt(std)} overall): mean, std = x_train.mean(0), "
            "x_train.std(0); x = (x - mean) / (std + 1e-8), the same for validation and test",
        )
    bn = fix(
        "batchnorm",
        "or let the model standardise its inputs itself: make nn.BatchNorm1d(n_features) "
        "(nn.BatchNorm2d(channels) for images) its first layer",
    )
    return (norm, bn)


RULE = Rule(
    id=RULE_ID,
    severity=Severity.WARNING,
    title="The model's inputs are not normalised",
    thresholds=(
        INPUT_SCALE,
        Threshold(
            "min_scale",
            0.01,
            "RMS of a dense input (under half exact zeros) at or below which it is too small",
            "LeCun et al., Efficient BackProp (1998): inputs scaled to unit covariance; "
            "netdoctor margin (raw audio and [0, 1] images stay above it)",
        ),
        Threshold(
            "offset_ratio",
            5.0,
            "|mean| over std of the input from which it is far off-centre",
            "LeCun et al., Efficient BackProp (1998) / cs231n: zero-centre the data; "
            "netdoctor margin ([0, 1] images, mean ≈ 2 std, stay below it)",
        ),
    ),
    fixes=("normalize_inputs", "batchnorm"),
    doc=RuleDoc(
        what=(
            "The input of the model's first layer, over all sampled steps, is far from zero "
            "mean and unit scale: RMS ≥ 10 (raw pixels 0-255, prices, years), a dense input "
            "with RMS ≤ 0.01, or a mean at least 5 times its standard deviation. Token ids "
            "(an Embedding first) and models that start with a normalisation layer are "
            "skipped."
        ),
        why=(
            "The first layer's pre-activations and its weight gradients are proportional to "
            "the inputs. Inputs in the hundreds or thousands make huge pre-activations (sigmoid "
            "and tanh saturate, ReLUs die) and huge gradients (the first updates overshoot and "
            "can explode to NaN), so only a tiny learning rate works; features on different "
            "scales make one learning rate too large for some weights and too small for "
            "others; inputs all on one side of zero make every weight of a unit move in the "
            "same direction, which zig-zags and slows learning. Most activations bend around "
            "[-1, 1], and float arithmetic loses precision when small and large values mix."
        ),
        how_to_fix=(
            "Standardise every input feature with the mean and standard deviation of the "
            "training set (not the validation or test set), and use the same numbers at "
            "validation and test time: x = (x - mean) / std. For images, scale pixels to "
            "[0, 1] and apply transforms.Normalize with the per-channel mean and std. For a "
            "regression, standardise the targets too. Alternatively make a BatchNorm layer "
            "the model's first layer."
        ),
        example=(
            "x = torch.stack([sqft, bedrooms, year], 1)  # RMS ~1e3: unnormalised\n"
            "x = (x - x_train.mean(0)) / x_train.std(0)  # zero mean, unit std per feature"
        ),
    ),
    check=check,
)
