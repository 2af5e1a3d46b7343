"""``lr_too_low``: every update moves the weights by a tiny fraction of their size, and the loss
barely moves.

cs231n's rule of thumb: an update is about 1e-3 of the weight it changes in a healthy run;
TheDeepChecker flags ratios below 1e-4, DeepDiagnosis below 1e-5. The ratio is read for the
fastest-moving weight matrix (a layer starved by vanishing gradients moves slowly whatever the
rate: only when even the fastest layer barely moves is the step size to blame) and only on the
sampled steps where the schedule is near its peak (a warm-up or an annealed tail is slow on
purpose). A run whose loss fell a lot is not too slow, whatever the ratio says.

A second finding: a schedule that cut the rate ``decay_factor``-fold and left most of the run
(``decayed_share``) a decade below its peak, with updates below the healthy 1e-3, while the loss
had still been falling when the cut came and stopped after it: a scheduler stepped per batch
instead of per epoch, or a decay far too fast (see ``_decayed``).

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
    INITIAL_STEPS,
    Progress,
    UpdateRatios,
    at_peak_lr,
    chance_loss,
    loss_progress,
    lr_literal,
    optimizer_class,
    sample_lrs,
    update_ratios,
    warming_up,
)
from netdoctor.rules.facts import fmt, uses_adam, valid_loss
from netdoctor.rules.fixes import fix
from netdoctor.rules.series import block_medians, finite
from netdoctor.runlog.run_data import RunData
from netdoctor.runlog.schema import StepField

RULE_ID = "lr_too_low"
#: Update/weight ratio cs231n calls healthy: the target the advice scales the rate towards.
HEALTHY_RATIO = 1e-3
#: A rate this many times below its peak is a different rate, not a tweak of it.
DECADE = 10.0


def check(run: RunData, th: Mapping[str, float]) -> list[Diagnosis]:
    if warming_up(run):
        return []
    progress = loss_progress(run, int(th["min_steps"]))
    ratios = update_ratios(run)
    if progress is None or not ratios.measured:
        return []
    chance = chance_loss(run)
    if chance is not None and progress.initial <= th["learnt"] * chance:
        return []  # already far below chance when the run began (resumed): little left to learn
    found = _slow_from_the_start(run, th, progress, ratios) or _decayed(run, th, progress, ratios)
    return [found] if found is not None else []


def _slow_from_the_start(
    run: RunData, th: Mapping[str, float], progress: Progress, ratios: UpdateRatios
) -> Diagnosis | None:
    """Tiny updates at the run's peak rate, and a loss that barely moved over the whole run."""
    if progress.progress >= th["barely_moving"]:
        return None  # the loss fell: slow or not, the rate is doing its job
    peak = at_peak_lr(run)
    fastest = ratios.fastest()
    rows = np.nonzero(peak & np.isfinite(fastest))[0]
    if rows.size < th["min_samples"]:
        return None
    ratio = float(np.median(fastest[rows]))
    if ratio >= th["low_update"]:
        return None
    typical = float(np.median(ratios.typical()[rows]))
    lrs = sample_lrs(run)[rows]
    lrs = lrs[np.isfinite(lrs)]
    lr = float(np.max(lrs)) if lrs.size else math.nan
    step = int(ratios.steps[rows[0]])
    per_layer = ratios.per_layer(rows)
    fastest_name = max(per_layer, key=per_layer.__getitem__) if per_layer else None
    evidence: dict[str, Any] = {
        "criterion": "slow_from_the_start",
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
    return Diagnosis(RULE_ID, Severity.WARNING, step, None, message, evidence, tuple(fixes))


def _decayed(
    run: RunData, th: Mapping[str, float], progress: Progress, ratios: UpdateRatios
) -> Diagnosis | None:
    """The schedule cut the rate ``decay_factor``-fold while the loss was still falling, and
    the loss stopped for the long rest of the run (``decayed_share`` of it, or more).

    The rest of the run counts from the step the rate fell, for good, an order of magnitude
    below its peak. A healthy schedule anneals the rate near the end (cosine, linear: the last
    few per cent of the run), or cuts it once the loss has levelled off (ReduceLROnPlateau):
    neither spends most of the run at a tenth of its rate with the loss still falling when
    the cut came. A scheduler stepped per batch instead of per epoch does.
    """
    lrs = run.steps[:, StepField.LR]
    ok = np.isfinite(lrs) & (lrs > 0)
    if np.count_nonzero(ok) < th["min_steps"]:
        return None
    peak, final = float(np.max(lrs[ok])), float(lrs[ok][-1])
    if final > peak / th["decay_factor"]:
        return None
    high = np.nonzero(~ok | (lrs > peak / DECADE))[0]
    cut = int(high[-1]) + 1 if high.size else 0  # from here on the rate stays a decade down
    n = run.n_steps
    if cut == 0 or n - cut < th["decayed_share"] * n:
        return None
    cut_step = int(run.step_numbers[cut])
    after = (ratios.steps >= cut_step) & np.isfinite(ratios.fastest())
    if np.count_nonzero(after) < th["min_samples"]:
        return None
    ratio = float(np.median(ratios.fastest()[after]))
    if ratio >= HEALTHY_RATIO:
        return None  # the steps are still healthy: the loss is flat for another reason
    loss = valid_loss(run)
    before, rest = finite(loss[:cut]), finite(loss[cut:])
    if before.size < 2 * INITIAL_STEPS or rest.size < 2 * INITIAL_STEPS:
        return None
    scale = progress.initial
    late = before[before.size // 2 :]  # the second half before the cut: was it still falling?
    edge = max(3, late.size // 4)
    falling = (float(np.median(late[:edge])) - float(np.median(late[-edge:]))) / scale
    block = max(INITIAL_STEPS, rest.size // 5)
    medians, _ = block_medians(rest, block)
    medians = finite(medians)
    start = float(np.median(rest[:block]))
    moved = (start - float(np.min(medians))) / scale if medians.size else 0.0
    if falling < th["min_progress"] or moved >= th["min_progress"]:
        return None
    evidence: dict[str, Any] = {
        "criterion": "decayed",
        "peak_lr": peak,
        "final_lr": final,
        "cut_step": cut_step,
        "decayed_share": (n - cut) / n,
        "update_ratio": ratio,
        "loss_drop_before_cut": falling * scale,
        "loss_drop_after_cut": moved * scale,
        "loss_at_cut": start,
        "final_loss": progress.final,
    }
    message = (
        f"the learning rate fell from {lr_literal(peak)} to a tenth of that by step {cut_step} "
        f"and on to {lr_literal(final)} (÷{fmt(peak / final)}), leaving {(n - cut) / n * 100:.0f} "
        f"% of the run at a rate where updates move the weights by {fmt(ratio)} of their size "
        f"(about 1e-3 is healthy): the loss, still falling before (by {fmt(falling * scale)}), "
        f"stopped at {fmt(start)}; a scheduler stepped per batch instead of per epoch, or a "
        "decay far too fast"
    )
    fixes = (
        fix(
            "raise_lr",
            "keep the learning rate up for longer: call scheduler.step() once per epoch, after "
            "the batch loop, not after every optimizer.step() (or give per-step schedules their "
            "length in steps), or decay more gently, e.g. "
            "torch.optim.lr_scheduler.StepLR(optimizer, step_size=30, gamma=0.1) over 90 epochs",
        ),
    )
    return Diagnosis(RULE_ID, Severity.WARNING, cut_step, None, message, evidence, fixes)


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
        Threshold(
            "decay_factor",
            100.0,
            "how many times below its peak the rate must end for a schedule to have decayed "
            "it to nothing",
            "netdoctor (a step schedule's usual total is ÷100 over a whole run: two ×0.1 cuts)",
        ),
        Threshold(
            "decayed_share",
            0.4,
            "share of the run, at the end, spent a decade or more below the peak rate from which "
            "the decay came too early (cosine or linear annealing spend a few per cent there)",
            "netdoctor",
        ),
        Threshold(
            "min_progress",
            0.05,
            "share of the initial loss it fell in the stretch before the cut (still learning) "
            "and at most after it (stopped)",
            "TheDeepChecker (TOSEM'22): < 5 % per window (loss_not_decreasing's min_progress)",
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
            "Or a schedule that decayed the rate to nothing too early: it ended 100 times below "
            "its peak, spent the last 40 % of the run or more a decade below it with updates "
            "under 1e-3 of the weights, and the loss, still falling when the rate was cut, "
            "stopped. Needs the optimizer (watch(model, optimizer)): without it updates are not "
            "measured and the rule stays quiet."
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
            "meant (a typo such as 1e-5 for 1e-2), and that the scheduler is stepped as often as "
            "it expects: scheduler.step() once per epoch for epoch-based schedules, not after "
            "every batch, or the rate decays to nothing in a few epochs. "
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
