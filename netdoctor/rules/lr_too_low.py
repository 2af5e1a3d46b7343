"""``lr_too_low``: every update moves the weights by a tiny fraction of their size, and the loss
barely moves.

cs231n's rule of thumb: an update is about 1e-3 of the weight it changes in a healthy run;
TheDeepChecker flags ratios below 1e-4, DeepDiagnosis below 1e-5. The ratio is read for the
fastest-moving weight matrix (a layer starved by vanishing gradients moves slowly whatever the
rate: only when even the fastest layer barely moves is the step size to blame) and only on the
sampled steps where the schedule is near its peak (a warm-up or an annealed tail is slow on
purpose). A run whose loss fell a lot is not too slow, whatever the ratio says.

This rule owns the finding "the learning rate is too small". ``underfitting`` weighs the same
ratio, with the same default (its ``tiny_update``), to put ``raise_lr`` first in its advice; the
engine lists it, and ``loss_not_decreasing``, after this rule as its consequences.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from netdoctor.diagnosis import Diagnosis, Fix, Severity
from netdoctor.rules.base import Rule, RuleDoc, Threshold
from netdoctor.rules.dynamics import (
    at_peak_lr,
    chance_loss,
    loss_progress,
    lr_literal,
    optimizer_class,
    sample_lrs,
    update_ratios,
    warming_up,
)
from netdoctor.rules.facts import fmt, uses_adam
from netdoctor.rules.fixes import fix
from netdoctor.runlog.run_data import RunData

RULE_ID = "lr_too_low"
#: Update/weight ratio cs231n calls healthy: the target the advice scales the rate towards.
HEALTHY_RATIO = 1e-3


def check(run: RunData, th: Mapping[str, float]) -> list[Diagnosis]:
    if warming_up(run):
        return []
    progress = loss_progress(run, int(th["min_steps"]))
    ratios = update_ratios(run)
    if progress is None or not ratios.measured:
        return []
    if progress.progress >= th["barely_moving"]:
        return []  # the loss fell: slow or not, the rate is doing its job
    chance = chance_loss(run)
    if chance is not None and progress.initial <= th["learnt"] * chance:
        return []  # already far below chance when the run began (resumed): little left to learn
    peak = at_peak_lr(run)
    fastest = ratios.fastest()
    rows = np.nonzero(peak & np.isfinite(fastest))[0]
    if rows.size < th["min_samples"]:
        return []
    ratio = float(np.median(fastest[rows]))
    if ratio >= th["low_update"]:
        return []
    typical = float(np.median(ratios.typical()[rows]))
    lrs = sample_lrs(run)[rows]
    lrs = lrs[np.isfinite(lrs)]
    lr = float(np.max(lrs)) if lrs.size else math.nan
    step = int(ratios.steps[rows[0]])
    per_layer = ratios.per_layer(rows)
    fastest_name = max(per_layer, key=per_layer.__getitem__) if per_layer else None
    evidence: dict[str, Any] = {
        "update_ratio": ratio,
        "typical_update_ratio": typical,
        "fastest_param": fastest_name,
        "layer_update_ratios": per_layer,
        "samples": int(rows.size),
        "lr": None if math.isnan(lr) else lr,
        "initial_loss": progress.initial,
        "lowest_loss": progress.lowest,
        "final_loss": progress.final,
        "loss_progress": progress.progress,
        "steps": progress.steps,
    }
    moved = (
        f"fell only {progress.progress * 100:.1f} %"
        if progress.progress > 0
        else "never fell below where it started"
    )
    lr_text = "" if math.isnan(lr) else f" (lr {fmt(lr)})"
    message = (
        f"each update moved the weights by only {fmt(ratio)} of their size even in the "
        f"fastest layer{lr_text}, where about {fmt(HEALTHY_RATIO)} is healthy, and the loss "
        f"{moved} in {progress.steps} steps (from {fmt(progress.initial)} to "
        f"{fmt(progress.final)}): the learning rate is too small, raise it"
    )
    fixes = _fixes(run, lr, ratio)
    return [Diagnosis(RULE_ID, Severity.WARNING, step, None, message, evidence, tuple(fixes))]


def _fixes(run: RunData, lr: float, ratio: float) -> list[Fix]:
    """raise_lr with the factor that brings the ratio to cs231n's 1e-3; Adam when not used."""
    factor = min(100.0, HEALTHY_RATIO / max(ratio, 1e-12))
    if math.isnan(lr):
        text = (
            f"raise the learning rate about ×{fmt(factor)}: the updates are ×{fmt(factor)} "
            "smaller than the ~1e-3 of the weights that trains well (common starting points: "
            "lr=1e-3 for Adam, lr=0.01-0.1 for SGD with momentum)"
        )
    else:
        suggested = lr * factor
        momentum = ", momentum=0.9" if optimizer_class(run) == "SGD" else ""
        text = (
            f"raise the learning rate from {lr_literal(lr)} to about {lr_literal(suggested)} "
            f"(×{fmt(factor)}, "
            "so each update is ~1e-3 of the weight), e.g. "
            f"torch.optim.{optimizer_class(run)}(model.parameters(), lr={lr_literal(suggested)}"
            f"{momentum}); "
            "a learning-rate range test (raise it step by step until the loss turns up) "
            "finds the best value"
        )
    fixes = [fix("raise_lr", text)]
    if not uses_adam(run):
        fixes.append(fix("adam"))
    return fixes


RULE = Rule(
    id=RULE_ID,
    severity=Severity.WARNING,
    title="The weights barely move: the learning rate is too small",
    thresholds=(
        Threshold(
            "low_update",
            1e-4,
            "update over weight norm per step (fastest weight matrix, median over the sampled "
            "steps near the peak learning rate) below which the rate is too small (the same "
            "default as underfitting's tiny_update)",
            "TheDeepChecker (TOSEM'22): lower bound 1e-4; cs231n: ~1e-3 is healthy; "
            "DeepDiagnosis (ICSE'22): 1e-5",
        ),
        Threshold(
            "barely_moving",
            0.2,
            "share of its initial level the loss must fall (lowest block median) for the run "
            "to count as moving; below it the loss barely moves",
            "netdoctor (underfitting's near_chance 0.8: a loss still at 80 % of where it began)",
        ),
        Threshold(
            "learnt",
            0.5,
            "initial loss over the chance loss below which the model already knew the task "
            "when the run began (a resumed run), so a still loss is no sign of a slow rate",
            "Karpathy, 'A Recipe for Training Neural Networks' (-log(1/C)); netdoctor margin",
        ),
        Threshold("min_steps", 30.0, "steps with a finite loss needed before judging", "netdoctor"),
        Threshold(
            "min_samples",
            3.0,
            "sampled steps with a measured update needed before judging",
            "netdoctor",
        ),
    ),
    fixes=("raise_lr", "adam"),
    doc=RuleDoc(
        what=(
            "Updates that are a tiny fraction of the weights they change: ‖ΔW‖/‖W‖ below 1e-4 "
            "per step even for the fastest-moving weight matrix (median over the sampled steps "
            "where the learning rate is at least half its peak, so warm-up and annealing do not "
            "count), while the loss barely moves (it never fell 20 % below its initial level). "
            "Needs the optimizer (watch(model, optimizer)): without it updates are not measured "
            "and the rule stays quiet."
        ),
        why=(
            "The learning rate sets how big each step of gradient descent is (θ ← θ − lr·∇L). "
            "Too small and training is stable but very slow: the weights stay near their "
            "random start, the loss hardly moves and the run can look stuck, or end in a poor "
            "spot it never had the momentum to leave. The update/weight ratio measures the step "
            "independently of the loss scale: about 1e-3 trains well (cs231n), 1e-5 means a "
            "hundred times more steps for the same progress."
        ),
        how_to_fix=(
            "Raise the learning rate, by the factor that brings the update/weight ratio to "
            "about 1e-3 (the message gives it), or find it with a range test: raise it step by "
            "step over a few hundred batches and keep a value somewhat below where the loss "
            "turns up. Typical starting points are 1e-3 for Adam and 0.01-0.1 for SGD with "
            "momentum. Momentum (0.9) keeps part of each step in the next, so progress builds "
            "up along directions the gradient keeps pointing to; Adam (β1=0.9, β2=0.999, "
            "lr=1e-3) also adapts each weight's step to its own gradient history and is "
            "forgiving when you do not know the right scale. Check the rate is the one you "
            "meant (a typo such as 1e-5 for 1e-2, or a scheduler that decayed it to nothing). "
            "Slow convergence has other causes too: weights initialised far too small or "
            "large for their fan-in, and inputs that are not normalised."
        ),
        example=(
            "opt = torch.optim.SGD(model.parameters(), lr=1e-5, momentum=0.9)  # meant 1e-2\n"
            "opt = torch.optim.SGD(model.parameters(), lr=1e-2, momentum=0.9)  # ratio ~1e-3"
        ),
    ),
    check=check,
)
