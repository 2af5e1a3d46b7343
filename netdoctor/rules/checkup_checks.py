"""What ``netdoctor.checkup`` judges itself: checks a run log cannot express.

The checkup holds things no log has: the batch's targets, the loss function (it can call it on
outputs of its own making) and the knowledge that every step trained on the same batch. What it
measures with torch arrives here as plain numbers (``InitFacts``, ``Attempt``) and is judged
without torch, like the rules, with named thresholds that cite their source:

* ``poor_init``: the first loss against what a model that knows nothing scores (Karpathy,
  "verify loss @ init"): the user's own loss on uniform logits (-log(1/C) for cross-entropy)
  or on the targets' mean (their variance for MSE);
* ``double_softmax``: outputs that are already distributions (non-negative rows summing to 1)
  and a loss that does not change when every output row is shifted by a constant, which is what
  a loss that applies its own (log-)softmax does;
* ``cannot_overfit_batch``: a few dozen steps on one batch must fit it (Karpathy, "overfit one
  batch"; cs231n, "overfit a tiny subset of data"), with fixes ranked by what else was found;
* ``nan_loss`` and ``frozen_parameters`` at the first step, when the log could not show them.

``CHECKS`` documents the checkup's own id the way ``netdoctor rules ID`` documents a rule.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from netdoctor.diagnosis import Diagnosis, Fix, Severity
from netdoctor.rules.base import Rule, RuleDoc, Threshold
from netdoctor.rules.double_softmax import ce_floor, fixes_for
from netdoctor.rules.facts import fmt
from netdoctor.rules.fixes import fix
from netdoctor.rules.registry import get_rule

CANNOT_OVERFIT = "cannot_overfit_batch"

OVERFIT_RATIO = Threshold(
    "overfit_ratio",
    0.1,
    "final loss on the batch over its first loss at or below which the batch counts as fitted",
    "Karpathy, A Recipe for Training Neural Networks (2019): overfit one batch to the lowest "
    "achievable loss (e.g. zero); cs231n Neural Networks 3: 'overfit a tiny subset of data, "
    "you should be able to achieve zero cost'; netdoctor: a tenth",
)
OVERFIT_ACCURACY = Threshold(
    "overfit_accuracy",
    1.0,
    "accuracy on the batch of a classifier at or above which it counts as fitted (losses with a "
    "floor above 0, such as label smoothing, never reach a tenth of their start)",
    "cs231n Neural Networks 3 (sanity checks): 100 % training accuracy on a tiny subset",
)
STILL_FALLING = Threshold(
    "still_falling",
    0.15,
    "share of the loss's fall made over the last quarter of the steps from which it was still "
    "falling when the checkup stopped (slow, not stuck)",
    "netdoctor: an exponential decay whose time constant is the run's length makes 16 % of its "
    "fall in the last quarter, one that levelled off (time constant a quarter of it) 2 %",
)
CHANCE_PLATEAU = Threshold(
    "chance_plateau",
    0.9,
    "final loss over the chance loss from which the model learned no more than the label "
    "frequencies (its output does not depend on its input)",
    "netdoctor (Karpathy: 'input-independent baseline')",
)
CAPACITY = Threshold(
    "params_per_target",
    10.0,
    "trainable parameters per target value in the batch below which too little capacity leads "
    "the fixes",
    "netdoctor: memorising N labels takes on the order of N weights (Zhang et al., "
    "Understanding deep learning requires rethinking generalization, ICLR 2017); a margin",
)
THRESHOLDS: tuple[Threshold, ...] = (
    OVERFIT_RATIO,
    OVERFIT_ACCURACY,
    STILL_FALLING,
    CHANCE_PLATEAU,
    CAPACITY,
)

CHECKS: dict[str, RuleDoc] = {
    CANNOT_OVERFIT: RuleDoc(
        what=(
            "netdoctor.checkup trains a copy of the model on the one batch it was given (Adam "
            "at a step size scaled to the weights, or your optimizer_factory) for a few dozen "
            "steps. A healthy model and loss fit one batch: the loss falls to a tenth of its "
            "start or below, or a classifier gets every sample of the batch right. This fires "
            "when neither happens."
        ),
        why=(
            "Any network with more weights than the batch has targets can memorise one batch. "
            "When it cannot, training on the whole data set will not work either, and the "
            "reason is usually a bug rather than the data: a loss fed the wrong thing (a "
            "softmax before cross-entropy, an (N, 1) output broadcast against (N,) targets, "
            "labels shuffled apart from their inputs), weights that cannot move (frozen, "
            "symmetric, NaN), inputs or targets on a scale the step size cannot reach, or "
            "really too little capacity. Finding it on one batch takes a second; finding it "
            "after a day of training costs a day."
        ),
        how_to_fix=(
            "Follow the fixes in their order: they are ranked by what the other checks found. "
            "Typical: return logits and let nn.CrossEntropyLoss do the softmax; make the output "
            "and target shapes equal for MSELoss; standardise inputs and regression targets; "
            "remove a .detach() or requires_grad_(False); initialise the weights randomly; "
            "raise the learning rate when the loss was still falling; widen the model when it "
            "has fewer weights than targets."
        ),
        example=(
            "diagnoses = netdoctor.checkup(model, (x[:32], y[:32]), nn.MSELoss())\n"
            "# cannot_overfit_batch: loss 0.98 -> 0.95 in 100 steps; the output (32, 1) was "
            "broadcast against targets (32,): use model(x).squeeze(-1)"
        ),
    )
}


def checkup_rules() -> tuple[Rule, ...]:
    """The checkup's own checks as rules that ``netdoctor rules`` lists and explains.

    They find nothing in a run log (the evidence exists only while the checkup trains its copy),
    so their ``check`` returns nothing and they are not part of the rule engine's selection.
    """
    return (
        Rule(
            id=CANNOT_OVERFIT,
            severity=Severity.WARNING,
            title="The model cannot fit one batch (found by netdoctor.checkup)",
            thresholds=THRESHOLDS,
            fixes=("stable_loss", "check_targets", "normalize_inputs", "unfreeze_parameters",
                   "break_symmetry", "raise_lr", "more_capacity"),
            doc=CHECKS[CANNOT_OVERFIT],
            check=lambda run, thresholds: [],
        ),
    )



@dataclass(frozen=True, slots=True)
class InitFacts:
    """What the checkup saw on the batch before the copy took a single step."""

    first_loss: float
    output_finite: bool
    output_shape: tuple[int, ...] | None
    task: str  # "classification" | "regression" | "unknown"
    classes: int | None
    chance_loss: float | None  # the loss of a prediction that knows nothing
    chance_how: str  # how it was computed, for people
    zero_loss: float | None  # the loss of all-zero outputs (what small initial outputs score)
    output_is_distribution: bool
    loss_shift_invariant: bool
    loss_warnings: tuple[str, ...]
    unused_params: tuple[str, ...]  # requires_grad, yet no .grad after the first backward
    last_module: str | None  # the last leaf module called in forward (made the output)
    output_layer: str | None  # the last leaf module with weights called in forward
    relu_family: bool  # the model has ReLU-family activations (He init, not Xavier)
    n_trainable: int
    n_targets: int
    batch_size: int
    target_mean: float | None = None  # regression targets
    target_std: float | None = None


@dataclass(frozen=True, slots=True)
class Attempt:
    """One run of the overfitting test on a fresh copy."""

    optimizer: str
    lr: float | None
    losses: tuple[float, ...]  # training loss per step, before that step's update
    final_loss: float  # after the last update
    final_accuracy: float | None  # classifiers: share of the batch right after the last update
    accuracies: tuple[float | None, ...] = field(default=())  # per step, as losses

    @property
    def steps(self) -> int:
        return len(self.losses)

    @property
    def first_loss(self) -> float:
        return self.losses[0] if self.losses else math.nan

    @property
    def fitted(self) -> bool:
        """Whether the batch was fitted at some step or at the end: one more update of a
        fitted batch may overshoot (Adam near a minimum, batchnorm), and it was still fitted."""
        first = self.first_loss
        accuracies = list(self.accuracies)[: len(self.losses)]
        accuracies += [None] * (len(self.losses) - len(accuracies))
        at_steps = any(fitted(v, first, a) for v, a in zip(self.losses, accuracies, strict=True))
        return at_steps or fitted(self.final_loss, first, self.final_accuracy)

    @property
    def best_loss(self) -> float:
        values = [v for v in (*self.losses, self.final_loss) if math.isfinite(v)]
        return min(values) if values else math.nan

    @property
    def diverged(self) -> bool:
        """Non-finite after a finite start, or worse at the end than at the start."""
        first = self.first_loss
        if not math.isfinite(first):
            return False
        if not all(math.isfinite(v) for v in self.losses) or not math.isfinite(self.final_loss):
            return True
        return self.final_loss > first


def fitted(loss: float, first: float, accuracy: float | None) -> bool:
    """Whether a loss (and a classifier's batch accuracy) says the batch was fitted."""
    if accuracy is not None and accuracy >= OVERFIT_ACCURACY.default:
        return True
    if not (math.isfinite(loss) and math.isfinite(first)) or first <= 0:
        return False
    return loss <= OVERFIT_RATIO.default * first


def targets_off_scale(facts: InitFacts) -> bool:
    """Regression targets far from zero mean and unit scale (the step size cannot reach them)."""
    if facts.task != "regression" or facts.target_mean is None or facts.target_std is None:
        return False
    inputs = get_rule("unnormalized_inputs").defaults()
    mean, std = abs(facts.target_mean), facts.target_std
    rms = math.sqrt(mean * mean + std * std)
    return rms >= inputs["input_scale"] or (mean > 0 and mean >= inputs["offset_ratio"] * std)


# ---- findings ------------------------------------------------------------------------------------
def first_loss_finding(facts: InitFacts) -> Diagnosis | None:
    """``poor_init`` when the first loss is far above what a model that knows nothing scores.

    The reference is the larger of the chance loss and the loss of all-zero outputs: a model
    whose initial outputs are small scores about the latter, which for regression targets far
    from zero is far above their variance without any fault of the initialisation.
    """
    first, chance = facts.first_loss, facts.chance_loss
    if chance is None or not math.isfinite(first) or not math.isfinite(chance) or chance <= 0:
        return None
    reference = chance
    if facts.zero_loss is not None and math.isfinite(facts.zero_loss):
        reference = max(reference, facts.zero_loss)
    ratio = get_rule("poor_init").defaults()["loss_ratio"]
    if first < ratio * reference:
        return None
    evidence = {
        "first_loss": first,
        "chance_loss": chance,
        "chance_how": facts.chance_how,
        "zero_output_loss": facts.zero_loss,
        "first_loss_vs_reference": first / reference,
        "task": facts.task,
    }
    message = (
        f"at initialisation the loss on the batch is {fmt(first)}, ×{fmt(first / reference)} "
        f"what a model that knows nothing scores ({fmt(reference)}; {facts.chance_how}): the "
        "untrained model's outputs are far too large, so the first steps are spent undoing them; "
        "initialise the output layer small"
    )
    init = "kaiming_normal_" if facts.relu_family else "xavier_uniform_"
    layer = facts.output_layer or "the output layer"
    first_fix = fix(
        "he_init" if facts.relu_family else "xavier_init",
        f"initialise {layer} so the first predictions are near chance: nn.init.{init}(w); "
        "w.data.mul_(0.1); nn.init.zeros_(bias), and the hidden layers with the scale for "
        "their activation",
    )
    return Diagnosis(
        "poor_init", Severity.WARNING, 0, facts.output_layer, message, evidence,
        (first_fix, fix("batchnorm")),
    )


def double_softmax_finding(facts: InitFacts) -> Diagnosis | None:
    """``double_softmax`` seen directly: distribution outputs into a shift-invariant loss."""
    if not (facts.output_is_distribution and facts.loss_shift_invariant) or not facts.classes:
        return None
    floor = ce_floor(facts.classes)
    evidence = {
        "classes": facts.classes,
        "loss_floor": floor,
        "first_loss": facts.first_loss,
        "output_shape": list(facts.output_shape or ()),
        "output_rows_sum_to_1": True,
        "loss_ignores_row_shift": True,
        "layer": facts.last_module,
    }
    where = f" ({facts.last_module})" if facts.last_module else ""
    message = (
        f"the model's outputs are already probabilities{where}: non-negative rows that sum "
        f"to 1 over {facts.classes} classes, and the loss does not change when every row is "
        "shifted by a constant, so it applies its own softmax (nn.CrossEntropyLoss, "
        f"F.cross_entropy): it can never go below {fmt(floor)} and learns slowly; return the "
        "logits and let the loss do the softmax"
    )
    return Diagnosis(
        "double_softmax", Severity.ERROR, 0, facts.last_module, message, evidence,
        fixes_for(facts.last_module or "the final softmax"),
    )


def nonfinite_finding(facts: InitFacts) -> Diagnosis | None:
    """``nan_loss`` at initialisation, for when the log could not say it."""
    if math.isfinite(facts.first_loss) and facts.output_finite:
        return None
    where = "the model's output" if not facts.output_finite else "the loss (the output is finite)"
    message = (
        f"before any update the loss on the batch is {fmt(facts.first_loss)}: {where} is "
        "already non-finite, so the model or the loss produces NaN/Inf from the data as given"
    )
    evidence = {"first_loss": facts.first_loss, "output_finite": facts.output_finite}
    fixes = (fix("stable_loss"), fix("normalize_inputs"))
    return Diagnosis("nan_loss", Severity.ERROR, 0, None, message, evidence, fixes)


def unused_params_finding(facts: InitFacts) -> Diagnosis | None:
    """``frozen_parameters`` for parameters that got no gradient, when the log did not say it."""
    if not facts.unused_params:
        return None
    names = list(facts.unused_params)
    message = (
        f"{len(names)} trainable parameter(s) got no gradient from the loss ({', '.join(names[:4])}"
        f"{'...' if len(names) > 4 else ''}): they are unused in forward or cut from the loss "
        "(.detach(), .data, torch.no_grad()), so they will never learn"
    )
    fixes = (
        fix(
            "unfreeze_parameters",
            "connect them to the loss: remove the .detach()/.data/torch.no_grad() between them "
            "and the output, or delete the unused module (and its parameters) from the model",
        ),
    )
    return Diagnosis(
        "frozen_parameters", Severity.WARNING, 0, names[0].rpartition(".")[0] or None, message,
        {"kind": "no_gradient", "params": names[:20], "count": len(names)}, fixes,
    )


def overfit_finding(
    facts: InitFacts, attempts: Sequence[Attempt], found: Collection[str], factory: bool
) -> Diagnosis | None:
    """``cannot_overfit_batch`` when the last attempt did not fit the batch; None when it did.

    ``found`` holds the ids of the other findings (from the log and the checkup), which rank the
    fixes: the most specific explanation first, capacity and the step size last.
    """
    if not attempts:
        return None
    last = attempts[-1]
    first = last.first_loss
    if not math.isfinite(first) or first <= 0:
        return None  # a NaN start is nan_loss's; a loss that can be negative has no ratio
    if last.fitted:
        return None
    shape = _shape(last)
    ratio = last.final_loss / first if math.isfinite(last.final_loss) else math.inf
    evidence: dict[str, Any] = {
        "first_loss": first,
        "final_loss": last.final_loss,
        "final_over_first": ratio,
        "best_loss": last.best_loss,
        "steps": last.steps,
        "optimizer": last.optimizer,
        "lr": last.lr,
        "final_accuracy": last.final_accuracy,
        "still_falling": shape.still_falling,
        "near_chance": _near_chance(facts, last),
        "trainable_params": facts.n_trainable,
        "target_values": facts.n_targets,
        "batch_size": facts.batch_size,
        "attempts": [
            {"lr": a.lr, "first_loss": a.first_loss, "final_loss": a.final_loss,
             "diverged": a.diverged}
            for a in attempts
        ],
        "explained_by": sorted(set(found) & _EXPLAINERS),
    }
    if facts.loss_warnings:
        evidence["loss_warnings"] = list(facts.loss_warnings)
    fixes = _overfit_fixes(facts, attempts, found, shape, factory)
    accuracy = (
        f", {fmt(100 * last.final_accuracy)} % of it right"
        if last.final_accuracy is not None
        else ""
    )
    lr = f" at lr {fmt(last.lr)}" if last.lr is not None else ""
    message = (
        f"{last.steps} steps of {last.optimizer}{lr} on this one batch took the loss from "
        f"{fmt(first)} to {fmt(last.final_loss)} (×{fmt(ratio)}{accuracy}), where a healthy "
        f"model memorises one batch; most likely: {_gist(fixes[0])}"
    )
    return Diagnosis(
        CANNOT_OVERFIT, Severity.WARNING, last.steps - 1, None, message, evidence, tuple(fixes)
    )


#: Findings that explain a batch that cannot be fitted (its cause, when found with it).
_EXPLAINERS = frozenset({
    "double_softmax", "nan_loss", "symmetric_weights", "frozen_parameters",
    "unnormalized_inputs", "poor_init", "vanishing_gradients", "dead_relu",
    "saturated_activations", "exploding_gradients",
})


@dataclass(frozen=True, slots=True)
class _Shape:
    still_falling: bool


def _shape(attempt: Attempt) -> _Shape:
    """Whether the loss was still falling at the end: the last quarter made a good share of
    the fall."""
    values = [v for v in attempt.losses if math.isfinite(v)]
    if len(values) < 8:
        return _Shape(False)
    start, end = values[0], min(values[-1], attempt.final_loss)
    quarter = values[-(len(values) // 4) - 1]
    fall = start - end
    if fall <= 0:
        return _Shape(False)
    return _Shape((quarter - end) / fall >= STILL_FALLING.default)


def _near_chance(facts: InitFacts, attempt: Attempt) -> bool:
    chance = facts.chance_loss
    if chance is None or not math.isfinite(chance) or chance <= 0:
        return False
    return attempt.final_loss >= CHANCE_PLATEAU.default * chance


def _overfit_fixes(
    facts: InitFacts,
    attempts: Sequence[Attempt],
    found: Collection[str],
    shape: _Shape,
    factory: bool,
) -> list[Fix]:
    last = attempts[-1]
    ranked: list[Fix] = []
    if "double_softmax" in found:
        ranked.append(fix(
            "stable_loss",
            "return the logits: remove the final softmax, nn.CrossEntropyLoss applies its own",
        ))
    if any(_about_shapes(w) for w in facts.loss_warnings):
        ranked.append(fix(
            "check_targets",
            f"the loss warned that the output {list(facts.output_shape or ())} and the targets "
            "have different shapes and broadcast them against each other: make them match, "
            "e.g. loss_fn(model(x).squeeze(-1), y) or loss_fn(model(x), y.view(-1, 1))",
        ))
    if "nan_loss" in found:
        ranked += [fix("stable_loss"), fix("lower_lr")]
    if "symmetric_weights" in found:
        ranked.append(fix("break_symmetry"))
    if "frozen_parameters" in found or facts.unused_params:
        ranked.append(fix("unfreeze_parameters"))
    if "unnormalized_inputs" in found:
        ranked.append(fix("normalize_inputs"))
    if targets_off_scale(facts):
        ranked.append(fix(
            "normalize_inputs",
            f"standardise the regression targets (here mean {fmt(facts.target_mean or 0.0)}, "
            f"std {fmt(facts.target_std or 0.0)}): y = (y - y_mean) / y_std on the training "
            "set, and predictions * y_std + y_mean at inference; the step size cannot move the "
            "outputs that far in a few steps",
        ))
    if "poor_init" in found:
        ranked.append(fix("he_init" if facts.relu_family else "xavier_init"))
    if all(a.diverged for a in attempts):
        ranked.append(fix(
            "lower_lr",
            "the loss rose or went non-finite at every step size tried: lower the learning "
            "rate ten-fold, e.g. optimizer_factory=lambda p: torch.optim.Adam(p, lr=1e-4)",
        ))
    if shape.still_falling:
        how = "in your optimizer_factory" if factory else "(optimizer_factory=lambda p: "
        how += "" if factory else "torch.optim.Adam(p, lr=3e-3))"
        ranked.append(fix(
            "raise_lr",
            f"the loss was still falling when the checkup stopped: the model learns, slowly; "
            f"raise the learning rate {how} or give the checkup more steps",
        ))
    few = facts.n_targets > 0 and facts.n_trainable < CAPACITY.default * facts.n_targets
    labels = fix(
        "check_targets",
        "make sure the targets belong to their inputs and the loss gets what it expects: "
        "x and y indexed together, class indices for nn.CrossEntropyLoss, the output's own "
        "shape for nn.MSELoss"
        + (" (the loss ended near chance: the output ignores the input)"
           if _near_chance(facts, last) else ""),
    )
    capacity = fix(
        "more_capacity",
        f"the model has {facts.n_trainable} trainable weights for {facts.n_targets} target "
        "values in the batch: widen it (nn.Linear(in_f, 256) instead of 32) or add a layer",
    )
    ranked += [capacity, labels] if few else [labels, capacity]
    if not shape.still_falling and not all(a.diverged for a in attempts):
        ranked.append(fix("raise_lr"))
    seen: set[str] = set()
    unique = []
    for f in ranked:
        if f.id not in seen:
            seen.add(f.id)
            unique.append(f)
    return unique


def _gist(f: Fix) -> str:
    """The first clause of a fix text: what the message names as the likely reason."""
    text = f.text.split(":")[0].split(";")[0].strip()
    return text if len(text) <= 160 else text[:157].rsplit(" ", 1)[0] + "..."


def _about_shapes(warning: str) -> bool:
    text = warning.lower()
    return "target size" in text or "broadcast" in text or "shape" in text
