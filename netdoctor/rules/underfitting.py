"""``underfitting``: the train loss stays near what guessing would score.

The yardstick is the chance loss: -log(1/C) for C classes (Karpathy's "check the initial loss"),
or the variance of the targets for a regression when the run states it. A reported accuracy
well above 1/C vetoes it (label noise can keep the best loss near chance). Without a yardstick,
only a finished single-output model (a regression) whose loss never left the level it started
at, nor its val loss, while its predictions barely vary with the input, counts: that model
learnt nothing, whatever the loss is. Which fixes lead (lower or raise the learning rate, the
initialisation, the weight decay, the inputs) is ``underfit_causes``'s call.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from netdoctor.diagnosis import Diagnosis, Severity
from netdoctor.rules.base import Rule, RuleDoc, Threshold
from netdoctor.rules.facts import INPUT_SCALE, fmt, output_size, output_spread, step_of, valid_loss
from netdoctor.rules.onset import nonfinite_onset
from netdoctor.rules.series import median3, robust_noise
from netdoctor.rules.underfit_causes import advise
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


def _baseline(run: RunData, first: np.ndarray, tolerance: float) -> _Baseline | None:
    """From the task (chance_loss, num_classes), else inferred from the logits and first losses.

    Inferred only when each of the first losses (``first``) sits near ln(C): an untrained
    classifier scores about ln(C) on every batch, whatever its labels, while a regression's
    first batch losses vary with their targets (one that happens to average ln 2 is not a
    binary classifier).
    """
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
    initial = float(np.median(first))
    if abs(initial - guess) > tolerance * guess or np.any(
        np.abs(first - guess) > 2 * tolerance * guess
    ):
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
    if found is None and _baseline(run, loss[rows[:5]], th["init_tolerance"]) is None:
        found = _no_progress(run, th, loss, rows)  # only where there is no yardstick
    if found is None:
        return []
    step, facts, evidence, flat = found
    chance = evidence.get("chance_loss")
    advice = advise(run, th, loss[rows], rows, chance, flat)
    evidence.update(advice.evidence)
    message = f"{facts}: {advice.text}"
    fixes = tuple(advice.fixes)
    return [Diagnosis(RULE_ID, Severity.WARNING, step, None, message, evidence, fixes)]


_Found = tuple[int, str, dict[str, Any], bool]  # step, facts for the message, evidence, flat


def _in_progress(run: RunData) -> bool:
    return not run.finished and run.writer_alive


def _accuracy_above_chance(run: RunData, th: Mapping[str, float], classes: int | None) -> bool:
    """Whether a reported accuracy is clearly above 1/C: then the model learnt the signal.

    A loss near chance can still be the best there is (noisy labels: 35 % of them flipped keep
    the best loss at 93 % of ln 2), while an accuracy well above 1/C shows the model learnt the
    signal. Train accuracy first, else validation accuracy; the latest two epochs' median.
    """
    if classes is None:
        return False
    chance = 1.0 / max(2, classes)
    limit = chance + th["acc_margin"] * (1.0 - chance)
    for key in ("train_acc", "val_acc"):
        _, _, acc = run.epoch_series(key)
        acc = acc[np.isfinite(acc)]
        if not acc.size:
            continue
        acc = acc / (100.0 if float(np.max(acc)) > 1.5 else 1.0)  # percent works too
        return float(np.median(acc[-2:])) > limit
    return False


def _by_loss(
    run: RunData, th: Mapping[str, float], loss: np.ndarray, rows: np.ndarray
) -> _Found | None:
    """Train loss near the chance loss at the end: flat, or finished still barely below it."""
    values = loss[rows]
    n = values.size
    initial = float(np.median(values[:5]))
    base = _baseline(run, values[:5], th["init_tolerance"])
    if base is None:
        return None
    tail = max(5, n // 10)
    final = float(np.median(values[-tail:]))
    recent = values[-max(n // 3, tail) :]
    drop = (float(np.median(recent[:tail])) - final) / base.loss
    # two medians of ``tail`` noisy batches differ by chance too: a drop must clear that
    spread = 3 * 1.2533 * robust_noise(recent) * math.sqrt(2 / tail) / base.loss
    drop = drop if drop > spread else min(drop, 0.0)
    window = f"{recent.size} steps"
    _, epoch_steps, levels = run.train_loss_by_epoch()
    ok = np.isfinite(levels)
    epoch_steps, levels = epoch_steps[ok], levels[ok]
    if levels.size >= 3:  # per-epoch losses average out the batch noise: judge the trend there
        k = max(2, levels.size // 3)
        drop, window = (float(levels[-k]) - float(levels[-1])) / base.loss, f"{k} epochs"
    flat = drop < th["flat_tolerance"]
    ratio = final / base.loss
    in_progress = _in_progress(run)
    if flat:
        hit = ratio >= th["near_chance"]
    else:  # still falling: only a finished run that ended barely below chance
        hit = ratio >= th["barely_below_chance"] and not in_progress
    if not hit or (ratio < 1 and _accuracy_above_chance(run, th, base.classes)):
        return None  # (a loss above chance is wrong however accurate: confident mistakes)
    since = _since(run, values, rows, epoch_steps, levels, th["near_chance"] * base.loss)
    evidence: dict[str, Any] = {
        "criterion": "loss_near_chance",
        "chance_loss": base.loss,
        "chance_source": base.source,
        "num_classes": base.classes,
        "first_loss": float(values[0]),
        "initial_loss": initial,  # median of the first five: one odd batch does not set it
        "final_loss": final,
        "ratio_to_chance": ratio,
        "recent_drop": drop,
        "recent_window": window,
        "trend": "flat" if flat else "falling",
        "steps": int(n),
    }
    times = f"{ratio * 100:.0f} % of" if ratio < 10 else f"×{fmt(ratio)}"
    share = f"{times} the chance loss {fmt(base.loss)} ({base.source})"
    if flat:
        message = (
            f"train loss is {fmt(final)} after {n} steps, {share}, and flat over the last {window}"
        )
    else:
        message = (
            f"train loss ended at {fmt(final)} after {n} steps, still {share}, though it fell "
            f"by {fmt(drop * base.loss)} in the last {window}"
        )
    return since, message, evidence, flat


def _since(
    run: RunData,
    values: np.ndarray,
    rows: np.ndarray,
    epoch_steps: np.ndarray,
    levels: np.ndarray,
    limit: float,
) -> int:
    """First step of the last stretch the loss spent at or above ``limit`` (up to the end).

    Per epoch when there are three or more epoch losses (batch noise would cut the stretch
    short), else on the running median of three per-step losses.
    """
    if levels.size >= 3:
        above = levels >= limit
        first = 0 if above.all() else levels.size - int(np.argmin(above[::-1]))
        if first == 0:
            return step_of(run, int(rows[0]))
        return int(epoch_steps[min(first, levels.size) - 1]) + 1
    above = median3(values) >= limit
    since = 0 if above.all() else values.size - int(np.argmin(above[::-1]))
    return step_of(run, int(rows[min(since, values.size - 1)]))


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


def _no_progress(
    run: RunData, th: Mapping[str, float], loss: np.ndarray, rows: np.ndarray
) -> _Found | None:
    """No yardstick (a regression without a chance loss): the loss never left its first level.

    Only for models with a single output (a regression, or one logit), whose predictions'
    spread over the batch is measured: it tells a model that learnt nothing (its predictions
    barely vary, or not at all) from one that had converged before this run started.

    The first losses are what the model scores before it has learnt anything, so a finished run
    whose train loss, per epoch (or per tenth of the run), never fell below ``no_progress`` of
    them and ended where it started, while its predictions vary little (a trained model's vary
    about as much as the residual error), and whose val loss did not improve either, learnt
    nothing, whatever the loss is. A run that learns anything at all, even a little, falls
    below that within a few epochs; a small first batch only makes the test stricter. So did
    a model whose predictions no longer vary with the input at all (it outputs one constant,
    the mean of the targets at best), even if getting there lowered the loss a little.
    """
    spread = output_spread(run)
    if _in_progress(run) or spread is None:
        return None
    values = loss[rows]
    initial = float(np.median(values[:5]))
    if initial <= 0:
        return None
    _, _, levels = run.train_loss_by_epoch()
    levels = levels[np.isfinite(levels)]
    unit = "epochs"
    if levels.size < 3:  # no epochs: the means of ten blocks of steps
        blocks = np.array_split(values, 10) if values.size >= 30 else []
        levels, unit = np.array([float(np.mean(b)) for b in blocks]), "tenths of the run"
    if levels.size < 3:
        return None
    lowest, final = float(np.min(levels)), float(levels[-1])
    relative = spread[1] / math.sqrt(final) if final > 0 else math.inf
    collapsed = relative <= th["collapsed_output"]
    flat = th["no_progress"] * initial <= lowest and final <= initial / th["no_progress"]
    if not (collapsed or flat):
        return None  # it learnt something; or the loss climbed, which is not this rule's call
    if relative > th["explained_spread"]:
        return None  # its predictions vary as much as a trained model's: converged already
    _, _, val = run.epoch_series("val_loss")
    val = val[np.isfinite(val)]
    if val.size >= 2 and float(np.min(val[1:])) < th["no_progress"] * float(val[0]):
        return None  # validation improved: it learnt something
    evidence: dict[str, Any] = {
        "criterion": "no_progress",
        "chance_loss": None,
        "chance_source": "none (no chance_loss or num_classes given): the initial loss instead",
        "first_loss": float(values[0]),
        "initial_loss": initial,
        "final_loss": final,
        "lowest_loss": lowest,
        "ratio_to_initial": lowest / initial,
        "levels": int(levels.size),
        "level_unit": unit,
        "val_first": float(val[0]) if val.size else None,
        "val_last": float(val[-1]) if val.size else None,
        "output_spread": spread[1],
        "output_spread_vs_loss": relative,
        "trend": "flat",
        "steps": int(values.size),
    }
    val_text = f", and the val loss stayed at {fmt(float(val[-1]))}" if val.size >= 2 else ""
    message = (
        f"train loss never fell below {fmt(lowest)} in {levels.size} {unit} ({values.size} "
        f"steps), {lowest / initial * 100:.0f} % of the {fmt(initial)} it started at{val_text}"
    )
    if collapsed:
        message += (
            f", and the output {spread[0]} no longer varies with the input (spread "
            f"{fmt(spread[1])}): the model predicts one constant, so it learnt nothing"
        )
    else:
        message += ": the model learnt nothing"
    return step_of(run, int(rows[0])), message, evidence, True


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
            "loss over its initial value, after the first steps (the typical level, or a rise "
            "lasting a few steps beyond the batch noise), that marks the run as unstable (then "
            "the advice is a lower learning rate, not a higher one)",
            "netdoctor",
        ),
        Threshold(
            "loss_jump",
            10.0,
            "loss over the very first loss that shows training blew up (then the advice is a "
            "lower learning rate and clipping, never a higher rate or more epochs)",
            "netdoctor (exploding_gradients' loss_jump)",
        ),
        Threshold(
            "init_loss_ratio",
            10.0,
            "first losses over the chance loss from which the initial outputs are far too "
            "large (initialisation or input scale, not capacity)",
            "Karpathy, 'A Recipe for Training Neural Networks'; TheDeepChecker (TOSEM'22): "
            "initial loss vs -log(1/C)",
        ),
        Threshold(
            "tiny_update",
            1e-4,
            "update over weight norm per step (fastest matrix, median over samples) below which "
            "the learning rate is too small and raising it leads the fixes",
            "TheDeepChecker (TOSEM'22): lower bound 1e-4; cs231n: ~1e-3 is healthy",
        ),
        Threshold(
            "weight_decay",
            0.1,
            "weight decay added to the gradient (SGD, Adam) from which lowering it leads the fixes",
            "netdoctor (common values 1e-4 to 5e-4 with SGD, 0 to 1e-4 with Adam)",
        ),
        Threshold(
            "decay_per_step",
            1e-3,
            "lr × weight decay per step for decoupled decay (AdamW) from which lowering it leads",
            "Loshchilov & Hutter 2019 (AdamW: lr 1e-3 with weight_decay 1e-2 gives 1e-5)",
        ),
        INPUT_SCALE,
        Threshold(
            "collapsed_output",
            1e-3,
            "without a chance loss: spread of a single-output model's predictions over the "
            "batch, relative to sqrt(loss), at or below which it predicts one constant",
            "netdoctor",
        ),
        Threshold(
            "explained_spread",
            0.5,
            "without a chance loss: spread of the predictions over sqrt(loss) above which a flat "
            "run is a trained model that has converged (about R² > 0.2), not one that never learnt",
            "netdoctor",
        ),
        Threshold(
            "no_progress",
            0.95,
            "without a chance loss: the lowest train loss per epoch over the first losses at or "
            "above which a finished run learnt nothing (the val loss must not improve either)",
            "SageMaker LossNotDecreasing; TheDeepChecker (TOSEM'22): < 5 % per window",
        ),
        Threshold("min_steps", 30.0, "steps with a loss needed before judging", "netdoctor"),
    ),
    fixes=(
        "more_capacity",
        "raise_lr",
        "adam",
        "normalize_inputs",
        "train_longer",
        "lower_lr",
        "grad_clipping",
        "he_init",
        "xavier_init",
        "batchnorm",
        "weight_decay",
    ),
    doc=RuleDoc(
        what=(
            "A train loss that ends near the chance loss, the score of a model that has learnt "
            "nothing: ln(C) for C balanced classes (from the task, or inferred from the number "
            "of logits when the first losses match it), or the task's stated chance loss (the "
            "target variance for a regression). Flat runs count from 80 % of chance, finished "
            "runs still falling from 90 %. A reported train accuracy near 1/C counts too, and "
            "one well above 1/C rules it out (while the loss is below chance). Without a chance "
            "loss, a finished single-output model (a regression) whose train loss never fell "
            "5 % below its first losses, nor its val loss, while its predictions barely vary "
            "with the input (or not at all: one constant for every input) counts."
        ),
        why=(
            "If the model cannot even fit the training data, both train and validation loss stay "
            "high: more epochs of the same will not help. Usual causes: a learning rate too "
            "small to move the weights, a model too small for the task, inputs on wildly "
            "different scales, a poor initialisation, or a run stopped too early."
        ),
        how_to_fix=(
            "If the loss is still falling, train longer or raise the learning rate. If it is "
            "flat, raise the learning rate (when each update moves the weights by far less "
            "than 1e-3 of their size), switch to Adam, normalise the inputs, lower a strong "
            "weight decay, and give the model more capacity (wider or deeper layers). If the "
            "loss jumped up early or spiked, the learning rate is too high instead: lower it. "
            "Check the loss and labels match the task: the first loss should be close to ln(C); "
            "one many times larger means a bad initialisation or raw inputs."
        ),
        example=(
            "model = nn.Sequential(nn.Linear(784, 8), nn.ReLU(), nn.Linear(8, 10))  # too small\n"
            "optimizer = torch.optim.SGD(model.parameters(), lr=1e-5)  # too slow: try Adam 1e-3"
        ),
    ),
    check=check,
)
