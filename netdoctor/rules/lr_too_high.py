"""``lr_too_high``: the loss climbs, swings or blows up while each update is a large part of the
weights it changes.

Two kinds of evidence, both scale-free, and both needed:

- the *loss* misbehaves, measured against its own initial level: (1) it climbs back a lasting
  ``swing`` of that level above the best it had reached (medians of blocks of steps, so a
  single bad batch does not count; a divergence from the start is a climb from the start),
  (2) it swings from one step to the next by ``swing`` of that level for most of the run
  (oscillation), or (3) the first updates threw it ``jump`` times above the first loss;
- the *steps* are large: while that happened, updates moved a weight matrix by at least
  ``high_update`` of its size per step (the fastest-moving one, for a climb or an oscillation:
  any layer moving that fast is unstable; most of them, the median over the matrices, for a
  jump at the start, when a zero-initialised layer moves fast by design), where cs231n calls
  about 1e-3 healthy and TheDeepChecker flags anything above 1e-1. Without the optimizer the
  updates are not measured and the rule stays quiet.

A climb that the run recovered from (the loss ended back near its best and well below its
start) is reported as info: the rate was too high for a while, but the run survived it.

Overlaps, decided from the evidence: with raw inputs (RMS past ``input_scale``) the gradients,
and so the steps, are large because of the data, and ``exploding_gradients`` (normalise the
inputs first) owns the run; with a layer of identical units (``symmetric_weights``) every unit
takes the same step, so the update ratio overstates what the rate does to a random init, and
that rule owns it; in a recurrent network whose gradients exploded, the recurrence
compounds them over time steps and clipping is the fix, so ``exploding_gradients`` owns it too,
as it does any explosion present at the very first step, before an update could cause it.
Otherwise an explosion that grows out of too-large steps is this rule's consequence: the
engine lists ``exploding_gradients`` (and a NaN it ends in) after it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from netdoctor.diagnosis import Diagnosis, Fix, Severity
from netdoctor.rules import exploding
from netdoctor.rules import symmetric_weights as symmetric
from netdoctor.rules.base import Rule, RuleDoc, Threshold
from netdoctor.rules.dynamics import (
    INITIAL_STEPS,
    UpdateRatios,
    lr_literal,
    optimizer_class,
    update_ratios,
)
from netdoctor.rules.facts import (
    INPUT_SCALE,
    MIN_STEPS,
    fmt,
    has_recurrent,
    index_of,
    input_rms,
    lr_at,
    step_of,
    uses_adam,
    valid_loss,
)
from netdoctor.rules.fixes import fix
from netdoctor.rules.onset import NonFiniteOnset, nonfinite_onset
from netdoctor.rules.series import block_medians, finite, robust_noise
from netdoctor.rules.symmetric_weights import symmetric_weights
from netdoctor.runlog.run_data import RunData

RULE_ID = "lr_too_high"
#: How many σ of the loss's own (log-scale) batch noise a jump must clear (as in underfitting).
NOISE_SIGMAS = 4.0
#: The same for a lasting climb, whose block medians already average the noise out.
CLIMB_SIGMAS = 2.0
#: Share of step-to-step changes that reverse the previous one from which a loss bounces (noise
#: reverses about two thirds of them, a steady trend almost none).
BOUNCING = 1 / 3
#: After the loss climbed, what it must get back to for the run to count as recovered: within
#: this share of the initial level above the best it had reached before the climb.
RECOVERED_MARGIN = 0.25


@dataclass
class _Finding:
    """One kind of loss evidence that held, with the large steps that went with it."""

    kind: str  # "climb" | "oscillation" | "jump"
    step: int
    text: str
    ratio: float  # update/weight ratio (median over matrices) while it happened
    recovered: bool
    evidence: dict[str, Any] = field(default_factory=dict)


def check(run: RunData, th: Mapping[str, float]) -> list[Diagnosis]:
    ratios = update_ratios(run)
    if not ratios.measured:
        return []
    onset = nonfinite_onset(run)
    end = onset.index if onset is not None else run.n_steps
    loss = valid_loss(run)[:end]
    rows = np.nonzero(np.isfinite(loss))[0]
    if rows.size < th["min_steps"]:
        return []
    values = loss[rows]
    start = float(np.median(values[:INITIAL_STEPS]))
    if not start > 0:
        return []  # a share of the initial level means nothing for a loss that can be <= 0
    typical, fastest = ratios.typical(), ratios.fastest()
    sigma = _log_noise(values)
    found = [
        f
        for f in (
            _oscillation(run, th, values, rows, start, ratios.steps, fastest),
            _climb(run, th, values, rows, ratios.steps, fastest, onset, sigma),
            _jump(run, th, values, rows, ratios.steps, typical, sigma),
        )
        if f is not None
    ]
    if not found or _owned_elsewhere(run, th):  # (the costlier question asked last)
        return []
    lasting = [f for f in found if not f.recovered]
    primary = (lasting or found)[0]
    severity = Severity.WARNING if lasting else Severity.INFO
    at = index_of(run, primary.step)  # the rate when it happened (a schedule moves it)
    lr = lr_at(run, at if at is not None else int(rows[-1]))
    evidence: dict[str, Any] = {
        "criteria": [f.kind for f in found],
        "update_ratio": primary.ratio,
        "initial_loss": start,
        "lr": None if math.isnan(lr) else lr,
        "recovered": not lasting,
        "nonfinite_step": None if onset is None else onset.step,
        "layer_update_ratios": _layers_at(ratios, primary.step),
    }
    for f in found:
        evidence.update(f.evidence)
    text = primary.text
    if onset is not None:
        text += f", then the {onset.source} became non-finite at step {onset.step}"
    lr_text = "" if math.isnan(lr) else f" ({fmt(lr)})"
    if lasting:
        advice = f"the learning rate{lr_text} is too high: lower it"
    else:
        advice = (
            f"the run recovered, but the learning rate{lr_text} was too high for it then: "
            "lower it or warm it up"
        )
    fixes = _fixes(run, primary, lr, min(float(values[0]), start), onset is not None)
    message = f"{text}: {advice}"
    step = min(f.step for f in found)
    return [Diagnosis(RULE_ID, severity, step, None, message, evidence, tuple(fixes))]


def _owned_elsewhere(run: RunData, th: Mapping[str, float]) -> bool:
    """Whether ``exploding_gradients`` explains the run better (see the module docstring)."""
    scale = input_rms(run)
    if scale is not None and scale >= th["input_scale"]:
        return True
    if symmetric_weights(run, symmetric.RULE.defaults()):
        return True  # identical units move as one: every update is that one step many times
    found = exploding.RULE.check(run, exploding.RULE.defaults())
    if not found:
        return False
    first = int(run.step_numbers[0]) if run.n_steps else 0
    evidence = found[0].evidence  # a leap of the very first gradient: before any update
    at_start = "spike" in evidence.get("criteria", ()) and evidence.get("spike_step") == first
    return has_recurrent(run) or at_start


def _largest(steps: np.ndarray, ratio: np.ndarray, first: int, last: int) -> float:
    """The largest update ratio on the sampled steps ``first``..``last`` (NaN: none)."""
    values = finite(ratio[(steps >= first) & (steps <= last)])
    return float(np.max(values)) if values.size else math.nan


def _log_noise(values: np.ndarray) -> float:
    """σ of the loss's batch-to-batch noise on a log scale (0 with fewer than 3 positives)."""
    positive = values[values > 0]
    return robust_noise(np.log(positive)) if positive.size >= 3 else 0.0


def _climb(
    run: RunData,
    th: Mapping[str, float],
    values: np.ndarray,
    rows: np.ndarray,
    steps: np.ndarray,
    typical: np.ndarray,
    onset: NonFiniteOnset | None,
    sigma: float,
) -> _Finding | None:
    """The block-median loss rose a lasting ``swing`` × its initial level above its best so far.

    The initial level is the median of the first losses (one lucky first batch does not set it).
    The rise must also clear 2σ of the loss's log-scale noise (a noisy loss wanders between
    block medians), and the updates must have been large while it rose: from the block before
    the rise to its peak.
    """
    start = float(np.median(values[:INITIAL_STEPS]))
    block = max(3, values.size // 20)
    medians, offset = block_medians(values, block)
    if medians.size < 2 or not start > 0:
        return None
    best = np.minimum.accumulate(np.concatenate(([start], medians)))[:-1]  # best before each
    rise = (medians - best) / start
    noisy = math.exp(CLIMB_SIGMAS * sigma)
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(best > 0, medians / best, np.inf)
    hits = np.nonzero((rise >= th["swing"]) & (factor >= noisy))[0]
    if not hits.size:
        return None
    first_hit = int(hits[0])
    top = first_hit + int(np.argmax(rise[first_hit:]))
    rise_step = step_of(run, int(rows[offset + first_hit * block]))
    before_step = step_of(run, int(rows[max(0, offset + (first_hit - 1) * block)]))
    peak_step = step_of(run, int(rows[offset + (top + 1) * block - 1]))
    ratio = _largest(steps, typical, before_step, peak_step)
    if not ratio >= th["high_update"]:
        return None
    before, level = float(best[first_hit]), float(medians[top])
    final = float(medians[-1])
    recovered = onset is None and final <= min(
        before + RECOVERED_MARGIN * start, (1 - th["swing"] / 2) * start
    )
    text = (
        f"the loss climbed from {fmt(before)} to {fmt(level)} (medians of {block} steps) "
        f"between steps {rise_step} and {peak_step}, while updates moved weight matrices by up "
        f"to {fmt(ratio)} of their size per step (about 1e-3 is healthy)"
    )
    if not recovered and onset is None:
        text += f", and it ended at {fmt(final)}"
    return _Finding(
        "climb",
        rise_step,
        text,
        ratio,
        recovered,
        {
            "climb_from": before,
            "climb_to": level,
            "climb_step": rise_step,
            "climb_peak_step": peak_step,
            "climb_block_steps": block,
            "final_loss": final,
        },
    )


def _oscillation(
    run: RunData,
    th: Mapping[str, float],
    values: np.ndarray,
    rows: np.ndarray,
    start: float,
    steps: np.ndarray,
    typical: np.ndarray,
) -> _Finding | None:
    """The loss bounces by ``swing`` × its scale from step to step, in most windows, under
    large steps.

    The swing of a window is the median change from one step to the next; it counts only when
    the loss goes up and down in it (at least a third of the changes reverse the previous one;
    a steady climb is ``_climb``'s). The scale is the loss before training moved it: the first
    loss, or the median of the first few if that is lower. Measured against it, and not against
    the current level, a loss that is small and noisy near the end of a healthy run does not
    count.
    """
    start = min(float(values[0]), start)
    diffs = np.diff(values)
    width = max(10, diffs.size // 10)
    swings = []
    for i in range(0, diffs.size - width + 1, width):
        part = diffs[i : i + width]
        turns = float(np.mean(np.sign(part[1:]) != np.sign(part[:-1])))
        swings.append(float(np.median(np.abs(part))) if turns >= BOUNCING else 0.0)
    if not swings:
        return None
    swing = float(np.median(swings)) / start
    if swing < th["swing"]:
        return None
    first_step, last_step = step_of(run, int(rows[0])), step_of(run, int(rows[-1]))
    during = finite(typical[(steps >= first_step) & (steps <= last_step)])
    ratio = float(np.median(during)) if during.size else math.nan
    if not ratio >= th["high_update"]:
        return None
    text = (
        f"the loss bounces by about {fmt(swing * start)} from one step to the next "
        f"({fmt(swing)} of its initial {fmt(start)}) over {values.size} steps, while updates "
        f"move the fastest weight matrix by {fmt(ratio)} of its size per step (about 1e-3 is "
        "healthy)"
    )
    evidence = {
        "loss_swing": swing * start,
        "loss_swing_share": swing,
        "swing_windows": width,
        "loss_scale": start,
        "later_loss": float(np.median(values[values.size // 2 :])),
    }
    return _Finding("oscillation", first_step, text, ratio, False, evidence)


def _jump(
    run: RunData,
    th: Mapping[str, float],
    values: np.ndarray,
    rows: np.ndarray,
    steps: np.ndarray,
    typical: np.ndarray,
    sigma: float,
) -> _Finding | None:
    """In the first steps the loss leapt ``jump`` × the first loss, past 4σ of its noise.

    One step is enough (the update before it is what threw the model), but it must clear the
    loss's own batch noise many times over, and the updates before it must have been large.
    """
    first = float(values[0])
    early = values[1 : int(th["early_steps"]) + 1]
    if first <= 0 or not early.size:
        return None
    above = np.nonzero(early >= first * max(th["jump"], math.exp(NOISE_SIGMAS * sigma)))[0]
    if not above.size:
        return None
    at = 1 + int(above[0])  # the first step it was thrown to
    peak = float(values[at])
    jump_step = step_of(run, int(rows[at]))
    ratio = _largest(steps, typical, step_of(run, int(rows[0])), jump_step - 1)
    if not ratio >= th["high_update"]:
        return None
    tail = values[-max(INITIAL_STEPS, values.size // 10) :]
    final = float(np.median(tail))
    recovered = final <= (1 - th["barely_moving"]) * first
    text = (
        f"the first updates moved the weights by up to {fmt(ratio)} of their size (about "
        f"1e-3 is healthy) and threw the loss from {fmt(first)} to {fmt(peak)} at step "
        f"{jump_step}"
    )
    if not recovered:
        text += f", and it never got far below that start again (it ended at {fmt(final)})"
    evidence = {"jump_from": first, "jump_to": peak, "jump_step": jump_step, "final_loss": final}
    return _Finding("jump", jump_step, text, ratio, recovered, evidence)


def _layers_at(ratios: UpdateRatios, step: int) -> dict[str, float]:
    """Each matrix's update ratio on the sampled steps up to ``step`` (at least the first)."""
    rows = np.nonzero(ratios.steps <= step)[0]
    if not rows.size:
        rows = np.arange(min(1, ratios.steps.size))
    return ratios.per_layer(rows)


def _fixes(run: RunData, primary: _Finding, lr: float, start: float, diverged: bool) -> list[Fix]:
    """Lower the rate first; decay it first when the loss came down well, then bounced."""
    cls = optimizer_class(run)
    example = (
        f"torch.optim.{cls}(model.parameters(), lr=1e-3)"
        if math.isnan(lr)
        else f"torch.optim.{cls}(model.parameters(), lr={lr_literal(lr / 10)}) instead of "
        f"lr={lr_literal(lr)}"
    )
    lower = fix(
        "lower_lr",
        f"divide the learning rate by 3-10 until each update is about 1e-3 of the weights, e.g. "
        f"{example}; if only the first steps blow up, warm it up instead: "
        "torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / 500))",
    )
    adam = [] if uses_adam(run) else [fix("adam")]
    decay, clip = fix("lr_decay"), fix("grad_clipping")
    if primary.kind == "oscillation":  # it learnt first (its level halved), then bounced
        ev = primary.evidence
        came_down = ev["later_loss"] <= 0.5 * ev["loss_scale"]
    else:
        came_down = primary.kind == "climb" and primary.evidence["climb_from"] <= 0.5 * start
    if came_down and not diverged and primary.kind != "jump":
        return [decay, lower, clip, *adam]
    return [lower, clip, decay, *adam]


RULE = Rule(
    id=RULE_ID,
    severity=Severity.WARNING,
    title="The loss climbs or swings under large updates: the learning rate is too high",
    thresholds=(
        Threshold(
            "high_update",
            0.1,
            "update over weight norm per step at or above which the steps are too large, while "
            "the loss misbehaves (the fastest-moving weight matrix during a climb or "
            "oscillation, the median over them for a jump at the start)",
            "TheDeepChecker (TOSEM'22) and DeepDiagnosis (ICSE'22): upper bound 1e-1; cs231n: "
            "~1e-3 is healthy",
        ),
        Threshold(
            "swing",
            0.5,
            "lasting climb above the best level so far, or typical step-to-step swing, as a "
            "share of the initial loss, that counts as diverging or oscillating",
            "netdoctor (TheDeepChecker (TOSEM'22) judges the loss per window of steps)",
        ),
        Threshold(
            "jump",
            1.5,
            "loss over the first loss, in the first steps, that shows the first updates threw "
            "the model off (it must also clear 4σ of the loss's own batch noise)",
            "netdoctor (underfitting's spike)",
        ),
        Threshold(
            "early_steps",
            20.0,
            "steps from the start in which such a jump counts",
            "netdoctor",
        ),
        Threshold(
            "barely_moving",
            0.2,
            "after a jump, how far below the first loss the run must end to count as recovered",
            "netdoctor (lr_too_low's barely_moving)",
        ),
        Threshold(
            "input_scale",
            INPUT_SCALE.default,
            "RMS of the model's input from which large steps are the raw inputs' doing "
            "(exploding_gradients and unnormalized_inputs report them), not the rate's",
            INPUT_SCALE.source,
        ),
        Threshold(
            "min_steps",
            float(MIN_STEPS),
            "finite losses needed before judging",
            "netdoctor",
        ),
    ),
    fixes=("lower_lr", "lr_decay", "grad_clipping", "adam"),
    doc=RuleDoc(
        what=(
            "A loss that diverges or oscillates while the updates are large. The loss, "
            "measured against its own initial level: its median over blocks of steps climbs "
            "back half that level above the best it had reached, or it swings by half that "
            "level from one step to the next for most of the run, or the first updates throw "
            "it 1.5 times above the first loss. The updates, in the same stretch: they move a "
            "weight matrix by 1e-1 of its size or more per step (about 1e-3 is healthy). A climb "
            "the run recovered from is reported as info. Needs the optimizer "
            "(watch(model, optimizer)) to measure the updates. Raw inputs and recurrent "
            "networks whose gradients explode are left to exploding_gradients."
        ),
        why=(
            "The learning rate scales each step of gradient descent (θ ← θ − lr·∇L). Too large, "
            "and a step jumps over the valley it was meant to descend into and lands higher on "
            "the other side: the loss bounces from batch to batch, or climbs step after step "
            "as every overshoot grows (with plain gradient descent on a quadratic bowl this "
            "happens as soon as lr passes 2/curvature). The weights end far from where the "
            "gradient was measured, units saturate or die, and the run stalls, or diverges to "
            "inf/NaN. A large rate is fast at first, then unstable."
        ),
        how_to_fix=(
            "Lower the learning rate, by 3 to 10 at a time, until each update is about 1e-3 "
            "of the weights (Adam's usual lr is 1e-3, SGD with momentum 0.01 to 0.1). If the "
            "loss fell well at first and only then started to bounce, keep the rate and decay "
            "it as training goes (step, exponential or cosine schedules, or ReduceLROnPlateau). "
            "If only the first steps blow up, ramp the rate up over a few hundred steps "
            "(warm-up). Clipping the gradient norm (max_norm 1 to 10) caps the size of any "
            "single step; Adam scales each weight's step by its own gradient history and is "
            "more forgiving. A NaN loss that follows is usually this same step size."
        ),
        example=(
            "opt = torch.optim.SGD(model.parameters(), lr=1.0)   # the loss bounces and climbs\n"
            "opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)\n"
            "sched = torch.optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.5)"
        ),
    ),
    check=check,
)
