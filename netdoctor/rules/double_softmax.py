"""``double_softmax``: the model ends in a softmax and its probabilities go into a loss that
applies its own softmax (``nn.CrossEntropyLoss`` / ``F.cross_entropy``).

Cross-entropy treats its input as logits. Fed probabilities p in [0, 1], one sample's loss is
``-p_t + log(sum_j exp(p_j))``, which is smallest when p is one-hot on the right class, and that
smallest value is ``log(C - 1 + e) - 1`` for C classes (0.31 for 2 classes, 1.46 for 10, 3.64
for 100) instead of 0. Every sample's loss is at least that floor, so the batch mean is too, with
or without label smoothing or class weights. A model trained this way becomes confident and
correct, yet its loss plateaus near the floor, and the gradients that reach the logits through
the saturated softmax are small, so learning is slow.

Read from the log: the last site in forward order is a softmax-family module whose outputs lie
in [0, 1] (a LogSoftmax's do not), its mean gives C (every row sums to 1 over C entries, so the
mean of all entries is 1/C, whatever the layout), and then three things must hold together:

* the loss never went below the floor (on any step): a log taken after the softmax (NLL on
  log-probabilities) goes below it as soon as the model learns, so it stays quiet;
* at the end the loss sits near the floor: within ``near_floor`` of the gap from the floor to
  chance, log(C);
* the softmax outputs are confident: the entropy of rows as pure as the measured ones is at most
  ``confident_entropy`` × the floor, so a loss computed on their log-probabilities would be
  below the floor. That keeps a model still learning, or a calibrated classifier on noisy labels,
  out.

``netdoctor.checkup`` tests the same thing directly before training (outputs that are
distributions, a loss that does not change when every row is shifted by a constant).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from netdoctor.diagnosis import Diagnosis, Fix, Severity
from netdoctor.rules.base import Rule, RuleDoc, Threshold
from netdoctor.rules.facts import MIN_STEPS, fmt, step_of, valid_loss
from netdoctor.rules.fixes import fix
from netdoctor.runlog.run_data import RunData, SiteInfo
from netdoctor.runlog.schema import ActStat

RULE_ID = "double_softmax"
#: Types of the softmax family whose outputs are probabilities (LogSoftmax's are log-probs).
PROBABILITY_TYPES = frozenset({"Softmax", "Softmin", "Softmax2d"})
#: Slack on the [0, 1] range and on the loss floor: float32 rounding of values that are exact
#: in real numbers (a softmax output of exactly 1.0000001, a mean loss a hair under the floor).
TOLERANCE = 1e-4
#: Samples (from the end) and the share of steps over which the end of the run is read.
END_SAMPLES = 3
END_SHARE = 0.1


def ce_floor(classes: int) -> float:
    """The least cross-entropy a sample can have when the "logits" are probabilities in [0, 1]:
    the target's entry 1 and the others 0, so -1 + log(e + C - 1)."""
    return math.log(classes - 1 + math.e) - 1.0


def row_entropy(purity: float, classes: int) -> float:
    """Entropy of a probability row of C entries with sum of squares ``purity``, shaped as one
    large entry a and C - 1 equal ones (the shape a trained classifier's rows take).

    Purity goes from 1/C (uniform, entropy log C) to 1 (one-hot, entropy 0); solving
    a² + (1 - a)² / (C - 1) = purity for a ≥ 1/C gives the row.
    """
    c = float(classes)
    purity = min(max(purity, 1.0 / c), 1.0)
    # c·a² - 2a + 1 - (c - 1)·purity = 0
    disc = max(4.0 - 4.0 * c * (1.0 - (c - 1.0) * purity), 0.0)
    a = min((2.0 + math.sqrt(disc)) / (2.0 * c), 1.0)
    rest = (1.0 - a) / (c - 1.0)
    return -sum(v * math.log(v) for v in (a, *([rest] * (classes - 1))) if v > 0)


@dataclass(frozen=True, slots=True)
class _Output:
    """The model's last site when it is a softmax of probabilities, read at the last samples."""

    site: SiteInfo
    classes: int
    purity: float  # mean sum of squares of a row, 1/C (uniform) .. 1 (one-hot)


def probability_output(run: RunData) -> _Output | None:
    """The last output site in forward order, when it is a softmax whose values are in [0, 1]."""
    outputs = run.sites_in_forward_order("output")
    if not outputs or not run.sample_steps.size:
        return None
    site = outputs[-1]
    if site.family != "softmax" or site.module_type not in PROBABILITY_TYPES:
        return None
    stats = run.act[-END_SAMPLES:, site.idx, :].astype(np.float64)
    ok = np.isfinite(stats[:, ActStat.MEAN]) & (stats[:, ActStat.CALLS] > 0)
    if not ok.any():
        return None
    stats = stats[ok]
    if stats[:, ActStat.MIN].min() < -TOLERANCE or stats[:, ActStat.MAX].max() > 1 + TOLERANCE:
        return None
    mean = float(np.median(stats[:, ActStat.MEAN]))
    if not mean > 0:
        return None
    classes = round(1.0 / mean)
    if classes < 2 or abs(mean * classes - 1.0) > 0.01:
        return None  # not rows that sum to 1
    std = float(np.median(stats[:, ActStat.STD]))
    purity = classes * (std * std + 1.0 / classes**2)  # C · E[p²]
    return _Output(site, classes, purity)


def check(run: RunData, th: Mapping[str, float]) -> list[Diagnosis]:
    out = probability_output(run)
    if out is None:
        return []
    loss = valid_loss(run)
    ok = np.isfinite(loss)
    if ok.sum() < MIN_STEPS:
        return []
    values = loss[ok]
    floor, chance = ce_floor(out.classes), math.log(out.classes)
    lowest = float(values.min())
    if lowest < floor - TOLERANCE * max(floor, 1.0):
        return []  # below what CE on probabilities can reach: the loss is not that
    end = float(np.median(values[-max(5, int(END_SHARE * values.size)) :]))
    near = (end - floor) / (chance - floor)
    if near > th["near_floor"]:
        return []
    entropy = row_entropy(out.purity, out.classes)
    if entropy > th["confident_entropy"] * floor:
        return []  # outputs not confident enough to tell it from a model still learning
    first = int(np.nonzero(ok)[0][0])
    evidence = {
        "layer": out.site.module,
        "module_type": out.site.module_type,
        "classes": out.classes,
        "loss_floor": floor,
        "chance_loss": chance,
        "lowest_loss": lowest,
        "end_loss": end,
        "end_above_floor": end - floor,
        "output_purity": out.purity,
        "output_entropy": entropy,
        "steps": int(ok.sum()),
    }
    message = (
        f"the model ends in {out.site.module} ({out.site.module_type}): its outputs are "
        f"probabilities over {out.classes} classes, and the loss never went below "
        f"{fmt(floor)} (lowest {fmt(lowest)}, {fmt(end)} at the end), the least cross-entropy "
        f"can give when fed probabilities instead of logits, while the outputs are confident "
        f"enough for a loss near 0: the loss applies a second softmax; return the logits and "
        "let nn.CrossEntropyLoss do the softmax"
    )
    return [
        Diagnosis(
            RULE_ID,
            Severity.ERROR,
            step_of(run, first),
            out.site.module,
            message,
            evidence,
            fixes_for(out.site.module),
        )
    ]


def fixes_for(module: str) -> tuple[Fix, ...]:
    """The fix for a softmax at the end of ``module``: shared with netdoctor.checkup."""
    return (
        fix(
            "stable_loss",
            f"return the logits: remove the softmax at the end of the model ({module}), since "
            "nn.CrossEntropyLoss / F.cross_entropy apply log-softmax themselves, and take "
            "torch.softmax(logits, dim=1) only where you need probabilities (at inference); "
            "a model that must return probabilities can keep them and train on "
            "F.nll_loss(torch.log(probs + 1e-8), y) instead",
        ),
    )


RULE = Rule(
    id=RULE_ID,
    severity=Severity.ERROR,
    title="Softmax probabilities fed to a loss that applies its own softmax (double softmax)",
    thresholds=(
        Threshold(
            "near_floor",
            0.5,
            "end-of-run loss above the floor of cross-entropy on probabilities, as a share of "
            "the gap from that floor to chance log(C), below which the loss sits at the floor",
            "netdoctor: the floor log(C - 1 + e) - 1 is the minimum of -p_t + log(sum exp p) "
            "over p in [0, 1]^C (PyTorch CrossEntropyLoss takes logits); half the gap",
        ),
        Threshold(
            "confident_entropy",
            0.75,
            "entropy of rows as pure as the measured softmax outputs, over the floor, below "
            "which the outputs are too confident for that loss to be a loss on their "
            "log-probabilities",
            "netdoctor: a calibrated model's cross-entropy is about its rows' entropy (Guo et "
            "al., On Calibration of Modern Neural Networks, ICML 2017); a quarter margin",
        ),
    ),
    fixes=("stable_loss",),
    doc=RuleDoc(
        what=(
            "The model's last module is a softmax (nn.Softmax, outputs in [0, 1] that sum to "
            "1 over C classes), the loss never went below log(C - 1 + e) - 1 (the least "
            "cross-entropy can give when its input is probabilities: 0.31 for 2 classes, "
            "1.46 for 10) and ends within half the way from that floor to chance log(C), "
            "while the softmax outputs are confident. A log after the softmax (NLLLoss on "
            "log-probabilities) goes below the floor, and LogSoftmax outputs are not "
            "probabilities: both stay quiet. netdoctor.checkup finds it before training."
        ),
        why=(
            "nn.CrossEntropyLoss and F.cross_entropy expect logits and apply log-softmax "
            "themselves. Given probabilities, they squash them a second time: the inputs only "
            "span [0, 1], so even a perfect, confident prediction scores log(C - 1 + e) - 1 "
            "instead of 0, the loss plateaus there looking like underfitting, and the "
            "gradient that reaches the logits goes through two softmaxes and shrinks as the "
            "model grows confident, so training is slow and the loss says little."
        ),
        how_to_fix=(
            "Return logits from the model: remove the final nn.Softmax and keep "
            "nn.CrossEntropyLoss; apply torch.softmax(logits, dim=1) only when you need "
            "probabilities (at inference or for metrics). If the model must output "
            "probabilities, train with F.nll_loss(torch.log(probs + 1e-8), y) instead, or "
            "better end it in nn.LogSoftmax and use nn.NLLLoss."
        ),
        example=(
            "model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 4), "
            "nn.Softmax(dim=1))\n"
            "loss = nn.CrossEntropyLoss()(model(x), y)  # stuck at 0.74 = log(3 + e) - 1\n"
            "model = model[:-1]  # logits: the loss goes to 0"
        ),
    ),
    check=check,
)
