"""``loss_not_decreasing``: the loss never got meaningfully below where it started.

The symptom, whatever the cause: the lowest median of a block of steps (a tenth of the run)
stayed within ``min_progress`` of the initial level (or rose: no progress either way). A run
that ends in NaN or inf is left to ``nan_loss`` and what caused it: there the NaN is the
finding, not the loss before it. TheDeepChecker flags a loss that improves by
less than 5 % per window, SageMaker Debugger's LossNotDecreasing a loss that does not go down
over a window of steps; a healthy run from scratch falls far more than that in its first tenth.

Many rules explain such a run more precisely: a learning rate too small (``lr_too_low``), units
that are copies of each other (``symmetric_weights``), parameters that never change
(``frozen_parameters``), gradients that vanish or exploded, a rate too high. When one of them
fires, the engine lists this diagnosis after it, as its consequence. The advice here weighs the
same evidence as ``underfitting`` (``underfit_causes``, at its default thresholds), so the two
never disagree on what to try first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from netdoctor.diagnosis import Diagnosis, Severity
from netdoctor.rules import underfitting
from netdoctor.rules.base import Rule, RuleDoc, Threshold
from netdoctor.rules.dynamics import chance_loss, loss_progress, warming_up
from netdoctor.rules.facts import fmt, valid_loss
from netdoctor.rules.onset import nonfinite_onset
from netdoctor.rules.underfit_causes import advise
from netdoctor.runlog.run_data import RunData

RULE_ID = "loss_not_decreasing"


def check(run: RunData, th: Mapping[str, float]) -> list[Diagnosis]:
    if warming_up(run) or nonfinite_onset(run) is not None:
        return []  # a run that went NaN: that is the finding (nan_loss and its cause)
    progress = loss_progress(run, int(th["min_steps"]))
    if progress is None or progress.progress >= th["min_progress"]:
        return []
    chance = chance_loss(run)
    if chance is not None and progress.initial <= th["learnt"] * chance:
        return []  # far below chance from the first step: a trained model, nothing to learn
    loss = valid_loss(run)
    rows = np.nonzero(np.isfinite(loss))[0]
    advice = advise(run, underfitting.RULE.defaults(), loss[rows], rows, chance, flat=True)
    rose = progress.lowest > progress.initial
    evidence: dict[str, Any] = {
        "initial_loss": progress.initial,
        "first_loss": progress.first,
        "lowest_loss": progress.lowest,
        "highest_loss": progress.highest,
        "final_loss": progress.final,
        "loss_progress": progress.progress,
        "block_steps": progress.block,
        "steps": progress.steps,
        "chance_loss": chance,
        **advice.evidence,
    }
    if rose:
        facts = (
            f"the loss never went below the {fmt(progress.initial)} it started at in "
            f"{progress.steps} steps (its lowest {progress.block}-step median was "
            f"{fmt(progress.lowest)}, it ended at {fmt(progress.final)})"
        )
    else:
        facts = (
            f"the loss fell only {progress.progress * 100:.1f} % in {progress.steps} steps "
            f"(from {fmt(progress.initial)} to a lowest {progress.block}-step median of "
            f"{fmt(progress.lowest)}; it ended at {fmt(progress.final)})"
        )
    message = f"{facts}: {advice.text}"
    step, fixes = progress.first_step, tuple(advice.fixes)
    return [Diagnosis(RULE_ID, Severity.WARNING, step, None, message, evidence, fixes)]


RULE = Rule(
    id=RULE_ID,
    severity=Severity.WARNING,
    title="The loss does not go down from the start",
    thresholds=(
        Threshold(
            "min_progress",
            0.05,
            "share of the initial loss (the first, or the median of the first five if lower) "
            "the lowest median of a "
            "block of steps (a tenth of the run) must fall for the run to count as learning",
            "TheDeepChecker (TOSEM'22): < 5 % per window; SageMaker Debugger LossNotDecreasing",
        ),
        Threshold(
            "learnt",
            0.5,
            "initial loss over the chance loss below which the model already knew the task "
            "when the run began (a resumed run), so a loss that stays put is no problem",
            "Karpathy, 'A Recipe for Training Neural Networks' (-log(1/C)); netdoctor margin",
        ),
        Threshold("min_steps", 30.0, "steps with a finite loss needed before judging", "netdoctor"),
    ),
    fixes=(
        "raise_lr",
        "adam",
        "normalize_inputs",
        "more_capacity",
        "lower_lr",
        "grad_clipping",
        "he_init",
        "xavier_init",
        "batchnorm",
        "weight_decay",
        "train_longer",
    ),
    doc=RuleDoc(
        what=(
            "A loss that is flat from the start: over the whole run (judged after 30 steps, up "
            "to any NaN), the median over a block of steps (a tenth of the run) never fell 5 % "
            "below the loss of the first steps (a loss that rose counts too; a run that ends in "
            "NaN is nan_loss's). The symptom, whatever its cause; when a more "
            "specific rule explains it (lr_too_low, symmetric_weights, frozen_parameters, "
            "vanishing_gradients, lr_too_high, exploding_gradients) it is listed after that "
            "rule as its consequence. A loss that starts far below chance (give num_classes or "
            "chance_loss to watch) belongs to a model that already learnt the task, and does "
            "not count."
        ),
        why=(
            "Training is the loss going down: the model makes a prediction, compares it with "
            "the target and nudges its parameters to make the error smaller. A loss that does "
            "not move from its first value means the nudges do not happen, do not reach the "
            "weights, or do not point downhill: the learning rate is too small, the gradient is "
            "lost on the way (detached tensors, frozen or symmetric weights, vanishing "
            "gradients), the inputs are on scales the network cannot use, the weight decay "
            "holds the weights at zero, or the data carries no signal (labels shuffled apart "
            "from their inputs). Even a model too small for the task makes some progress "
            "from a random start."
        ),
        how_to_fix=(
            "First check the implementation: optimizer.zero_grad(), loss.backward() and "
            "optimizer.step() run in that order every batch, the optimizer was built from this "
            "model's parameters, the loss is computed from the model's output (not a detached "
            "copy), and the labels line up with the inputs; check a hand-written layer's "
            "backward with torch.autograd.gradcheck. Then try overfitting a single "
            "batch: a model that cannot is broken, not undertrained. Raise the learning rate "
            "(or switch to Adam, lr=1e-3), normalise the inputs to zero mean and unit "
            "variance, initialise with He/Xavier, lower a strong weight decay. The fixes are "
            "ranked by the same evidence as underfitting's."
        ),
        example=(
            "for xb, yb in loader:\n"
            "    optimizer.zero_grad()\n"
            "    loss = loss_fn(model(xb), yb)\n"
            "    loss.backward()\n"
            "    optimizer.step()  # forgetting this, or zero_grad after backward, stalls the loss"
        ),
    ),
    check=check,
)
