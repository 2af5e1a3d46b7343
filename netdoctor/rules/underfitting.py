"""``underfitting``: the train loss stays near what guessing would score.

The yardstick is the chance loss: -log(1/C) for C classes (Karpathy's "check the initial loss"),
or the variance of the targets for a regression when the run states it. Without a yardstick the
rule stays quiet rather than guess what a good loss is for this task.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from netdoctor.diagnosis import Diagnosis, Severity
from netdoctor.rules.base import Rule, RuleDoc, Threshold
from netdoctor.rules.facts import fmt, output_size, step_of, uses_adam, valid_loss
from netdoctor.rules.fixes import fix
from netdoctor.rules.onset import nonfinite_onset
from netdoctor.rules.series import median3
from netdoctor.runlog.run_data import RunData

RULE_ID = "underfitting"


@dataclass(frozen=True, slots=True)
class _Baseline:
    """The loss of a model that has learnt nothing, and where that number comes from."""

    loss: float
    source: str
    classes: int | None  # for classification: C (chance accuracy is 1/C)


def _number(value: Any) -> float | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    return float(value) if ok and math.isfinite(value) and value > 0 else None


def _baseline(run: RunData, initial: float, tolerance: float) -> _Baseline | None:
    """From the task (chance_loss, num_classes), else inferred from the logits and first loss."""
    task = run.task
    classes = _number(task.get("num_classes"))
    c = max(2, int(classes)) if classes is not None else None
    chance = _number(task.get("chance_loss"))
    if chance is not None:
        return _Baseline(chance, "the task's chance loss", c)
    if c is not None:
        return _Baseline(math.log(c), f"ln({c}) for {c} classes", c)
    outputs = output_size(run)
    if outputs is None:
        return None
    c = max(2, outputs)  # one logit means binary (BCE): chance loss ln 2
    guess = math.log(c)
    if abs(initial - guess) > tolerance * guess:
        return None  # the first losses are not at chance: regression, or another loss
    return _Baseline(guess, f"ln({c}) for {c} classes, matching the initial loss", c)


def check(run: RunData, th: Mapping[str, float]) -> list[Diagnosis]:
    if nonfinite_onset(run) is not None:  # a diverged run is nan_loss's, not a capacity problem
        return []
    loss = valid_loss(run)
    rows = np.nonzero(np.isfinite(loss))[0]
    if rows.size < th["min_steps"]:
        return []
    found = _by_loss(run, th, loss, rows) or _by_accuracy(run, th)
    if found is None:
        return []
    step, facts, evidence, flat = found
    spike = _spike(loss[rows], th["spike"])
    adam = [] if uses_adam(run) else [fix("adam")]
    try_adam = "" if uses_adam(run) else "try Adam and "
    if spike is not None:  # unstable, not slow: raising the learning rate would make it worse
        peak, at = spike
        evidence.update(loss_spike=peak, loss_spike_step=step_of(run, int(rows[at])))
        advice = (
            f"the loss spiked to {fmt(peak)} at step {step_of(run, int(rows[at]))}, so the "
            "learning rate is likely too high: lower it and check the inputs are normalised"
        )
        fixes = [fix("lower_lr"), fix("normalize_inputs"), *adam, fix("more_capacity")]
    elif flat:
        advice = (
            f"give the model more capacity or raise the learning rate; {try_adam}check the "
            "inputs are normalised"
        )
        fixes = [fix("more_capacity"), fix("raise_lr"), *adam, fix("normalize_inputs")]
    else:
        advice = "train longer or raise the learning rate"
        fixes = [fix("train_longer"), fix("raise_lr"), *adam]
    message = f"{facts}: {advice}"
    return [Diagnosis(RULE_ID, Severity.WARNING, step, None, message, evidence, tuple(fixes))]


_Found = tuple[int, str, dict[str, Any], bool]  # step, facts for the message, evidence, flat


def _spike(values: np.ndarray, factor: float) -> tuple[float, int] | None:
    """(peak, index) of the loss rising to ``factor`` × its initial value after the start."""
    initial = float(np.median(values[:5]))
    later = values[5:]
    if initial <= 0 or not later.size or float(np.max(later)) < factor * initial:
        return None
    at = int(np.argmax(later))
    return float(later[at]), values.size - later.size + at


def _by_loss(
    run: RunData, th: Mapping[str, float], loss: np.ndarray, rows: np.ndarray
) -> _Found | None:
    """Train loss near the chance loss at the end: flat, or finished still barely below it."""
    values = loss[rows]
    n = values.size
    initial = float(np.median(values[:5]))
    base = _baseline(run, initial, th["init_tolerance"])
    if base is None:
        return None
    tail = max(5, n // 10)
    final = float(np.median(values[-tail:]))
    recent = values[-max(n // 3, tail) :]
    drop = (float(np.median(recent[:tail])) - final) / base.loss
    flat = drop < th["flat_tolerance"]
    ratio = final / base.loss
    in_progress = not run.finished and run.writer_alive
    if flat:
        hit = ratio >= th["near_chance"]
    else:  # still falling: only a finished run that ended barely below chance
        hit = ratio >= th["barely_below_chance"] and not in_progress
    if not hit:
        return None
    above = median3(values) >= th["near_chance"] * base.loss
    since = 0 if above.all() else n - int(np.argmin(above[::-1]))  # start of the last stretch
    evidence: dict[str, Any] = {
        "criterion": "loss_near_chance",
        "chance_loss": base.loss,
        "chance_source": base.source,
        "num_classes": base.classes,
        "initial_loss": initial,
        "final_loss": final,
        "ratio_to_chance": ratio,
        "recent_drop": drop,
        "recent_steps": int(recent.size),
        "trend": "flat" if flat else "falling",
        "steps": int(n),
    }
    share = f"{ratio * 100:.0f} % of the chance loss {fmt(base.loss)} ({base.source})"
    if flat:
        message = (
            f"train loss is {fmt(final)} after {n} steps, {share}, and flat over the last "
            f"{recent.size} steps"
        )
    else:
        message = (
            f"train loss ended at {fmt(final)} after {n} steps, still {share}, though it fell "
            f"{drop * 100:.0f} % of that in the last {recent.size} steps"
        )
    return step_of(run, int(rows[min(since, n - 1)])), message, evidence, flat


def _by_accuracy(run: RunData, th: Mapping[str, float]) -> _Found | None:
    """Reported train accuracy still near 1/C after at least three epochs."""
    _, steps, acc = run.epoch_series("train_acc")
    ok = np.isfinite(acc)
    steps, acc = steps[ok], acc[ok]
    classes = _number(run.task.get("num_classes")) or output_size(run)
    if acc.size < 3 or classes is None:
        return None
    c = max(2, int(classes))
    acc = acc / (100.0 if float(np.max(acc)) > 1.5 else 1.0)  # percent works too
    chance = 1.0 / c
    limit = chance + th["acc_margin"] * (1.0 - chance)
    now = float(np.median(acc[-2:]))
    if now > limit:
        return None
    near = np.nonzero(acc > limit)[0]
    first = int(near[-1]) + 1 if near.size else 0
    evidence: dict[str, Any] = {
        "criterion": "accuracy_near_chance",
        "train_acc": now,
        "chance_acc": chance,
        "num_classes": c,
        "best_train_acc": float(np.max(acc)),
        "epochs": int(acc.size),
    }
    message = (
        f"train accuracy is {fmt(now)} after {acc.size} epochs, near the chance level "
        f"{fmt(chance)} for {c} classes"
    )
    return int(steps[min(first, acc.size - 1)]), message, evidence, True


RULE = Rule(
    id=RULE_ID,
    severity=Severity.WARNING,
    title="The train loss stays near chance (underfitting)",
    thresholds=(
        Threshold(
            "near_chance",
            0.8,
            "final train loss over the chance loss at or above which a flat run is underfitting",
            "Karpathy, 'A Recipe for Training Neural Networks' (-log(1/C)); netdoctor margin",
        ),
        Threshold(
            "barely_below_chance",
            0.9,
            "the same ratio for a finished run whose loss was still falling",
            "netdoctor",
        ),
        Threshold(
            "flat_tolerance",
            0.02,
            "drop over the last third of the steps, as a share of the chance loss, below which "
            "the loss is flat",
            "TheDeepChecker (TOSEM'22): < 5 % per window; SageMaker LossNotDecreasing",
        ),
        Threshold(
            "init_tolerance",
            0.15,
            "how close the first losses must be to ln(C) to infer C from the logits",
            "TheDeepChecker (TOSEM'22): initial loss vs -log(1/C)",
        ),
        Threshold(
            "acc_margin",
            0.1,
            "train accuracy within this share of the way from 1/C to 1 counts as chance",
            "AUTOTRAINER (ICSE'21): accuracy gain < 0.01 as 'not learning'; netdoctor margin",
        ),
        Threshold(
            "spike",
            1.5,
            "loss over its initial value, after the first steps, that marks the run as unstable "
            "(then the advice is a lower learning rate, not a higher one)",
            "netdoctor",
        ),
        Threshold("min_steps", 30.0, "steps with a loss needed before judging", "netdoctor"),
    ),
    fixes=("more_capacity", "raise_lr", "adam", "normalize_inputs", "train_longer"),
    doc=RuleDoc(
        what=(
            "A train loss that ends near the chance loss, the score of a model that has learnt "
            "nothing: ln(C) for C balanced classes (from the task, or inferred from the number "
            "of logits when the first losses match it), or the task's stated chance loss (the "
            "target variance for a regression). Flat runs count from 80 % of chance, finished "
            "runs still falling from 90 %. A reported train accuracy near 1/C counts too."
        ),
        why=(
            "If the model cannot even fit the training data, both train and validation loss stay "
            "high: more epochs of the same will not help. Usual causes: a learning rate too "
            "small to move the weights, a model too small for the task, inputs on wildly "
            "different scales, a poor initialisation, or a run stopped too early."
        ),
        how_to_fix=(
            "If the loss is still falling, train longer or raise the learning rate. If it is "
            "flat, raise the learning rate, switch to Adam, normalise the inputs, and give the "
            "model more capacity (wider or deeper layers). Check the loss and labels match the "
            "task: the first loss should be close to ln(C)."
        ),
        example=(
            "model = nn.Sequential(nn.Linear(784, 8), nn.ReLU(), nn.Linear(8, 10))  # too small\n"
            "optimizer = torch.optim.SGD(model.parameters(), lr=1e-5)  # too slow: try Adam 1e-3"
        ),
    ),
    check=check,
)
