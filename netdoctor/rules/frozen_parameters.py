"""``frozen_parameters``: trainable parameters that never change.

Each parameter is put in the first of these that fits, and each group is one diagnosis. Only
the sampled steps before a NaN count (after it every statistic is meaningless):

- ``not_in_optimizer`` (warning): trainable (requires_grad) but in none of the optimizer's
  param groups, and its weight never changed: a mistake, typically an optimizer built from part
  of the model, or from another instance of it. (A second optimizer that steps it, or fp32
  master weights, would change it: then it is left alone.)
- ``no_gradient``: trainable, yet ``.grad`` was never set on any sampled step while other
  parameters had one. If its module ran in the forward pass, the graph was cut between it and
  the loss (``.detach()``, ``.data``, ``torch.no_grad()``, a NumPy round trip): a warning. If the
  module never ran, it is defined but unused (a pretrained pooler the task does not need):
  harmless, so info.
- ``all_zero_gradients`` (warning): no parameter has a non-zero gradient (none at all, or
  only zeros) when the optimizer steps, and nothing changes: the gradients are cleared
  between ``backward()`` and ``step()``, or the loss does not depend on the model. (Without
  the optimizer a run without gradients may be an evaluation loop: then it is left alone.)
- ``zero_gradient`` (warning): a weight matrix has a gradient, exactly zero on every sampled
  step (a bias whose gradient is exactly zero cancels out of the loss, e.g. before batchnorm:
  harmless, so left alone), while
  other parameters get non-zero ones, and it never changed: something between it and the loss
  has zero derivative (round, sign, argmax, a comparison). When the layer feeding it, or one
  after it, outputs exactly zero throughout (all its ReLUs dead, or zero-initialised weights),
  that explains the zero gradient: ``dead_relu`` or ``symmetric_weights`` report it, and this
  kind stays quiet.
- ``zero_lr``: a non-zero gradient but never an update, in an optimizer with a param group at
  learning rate 0: frozen through the rate. Judged like requires_grad=False below.
- ``requires_grad_off``: requires_grad=False. Freezing a pretrained backbone and training a new
  head is deliberate and common, so this is info, except when it looks like a mistake: the head
  (the last module with parameters) is frozen while a real part of the network trains (more
  than the ``head_share`` that adapters such as LoRA train on a frozen model), or the loss made
  no progress while most of the parameters are frozen. Then it is a warning.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from netdoctor.diagnosis import Diagnosis, Fix, Severity
from netdoctor.rules.base import Rule, RuleDoc, Threshold
from netdoctor.rules.dynamics import loss_progress
from netdoctor.rules.fixes import fix
from netdoctor.rules.onset import nonfinite_onset
from netdoctor.rules.series import finite
from netdoctor.runlog.run_data import ParamInfo, RunData
from netdoctor.runlog.schema import ActStat, ParamStat

RULE_ID = "frozen_parameters"
#: Share of exact zeros in a layer's output from which nothing passes back through it.
BLOCKED = 0.999
#: Relative change of a weight's norm over the run below which it never changed. Any real
#: update moves it by far more over a run; float32 norms of an untouched tensor are identical.
UNCHANGED = 1e-7


#: The kinds, in the order their diagnoses are listed.
_KINDS = (
    "not_in_optimizer",
    "all_zero_gradients",
    "no_gradient",
    "zero_gradient",
    "zero_lr",
    "requires_grad_off",
)


@dataclass(frozen=True, slots=True)
class _Group:
    kind: str
    params: list[ParamInfo]


def check(run: RunData, th: Mapping[str, float]) -> list[Diagnosis]:
    if not run.params:
        return []
    groups = _classify(run, th)
    found = []
    for kind in _KINDS:
        params = groups.get(kind)
        if params:
            found.extend(_diagnose(run, th, _Group(kind, params)))
    return found


def _classify(run: RunData, th: Mapping[str, float]) -> dict[str, list[ParamInfo]]:
    onset = nonfinite_onset(run)  # after a NaN nothing a parameter does means anything
    keep = run.sample_steps < (np.inf if onset is None else onset.step)
    stats = run.param[keep]
    has = stats[:, :, ParamStat.HAS_GRAD] > 0.5
    grad = stats[:, :, ParamStat.GRAD_NORM].astype(np.float64)
    update = stats[:, :, ParamStat.UPDATE_NORM].astype(np.float64)
    weight = stats[:, :, ParamStat.WEIGHT_NORM].astype(np.float64)
    enough = np.count_nonzero(keep) >= th["min_samples"]
    optimizer = isinstance(run.meta.get("optimizer"), dict)
    any_grad = bool(has.any())
    nonzero = bool(np.any(has & np.isfinite(grad) & (grad > 0)))
    zero_lr = _has_zero_lr_group(run)
    groups: dict[str, list[ParamInfo]] = {}
    for p in run.params:
        col = p.idx
        unchanged = _unchanged(weight[:, col])
        kind = None
        if not p.trainable:
            kind = "requires_grad_off"
        elif not enough:
            continue
        elif optimizer and not p.in_optimizer and unchanged:
            kind = "not_in_optimizer"
        elif optimizer and not any_grad and unchanged:
            kind = "all_zero_gradients"  # zero_grad() between backward() and step()
        elif any_grad and not has[:, col].any():
            kind = "no_gradient"
        elif _all_zero(grad[:, col], has[:, col]) and unchanged:
            if not nonzero:
                kind = "all_zero_gradients"
            elif len(p.shape) >= 2 and _blocked(run, p.module) is None:
                # (a dead layer next to it is dead_relu's; a bias whose gradient is exactly 0
                # cancels out of the loss, e.g. before a batchnorm, and is harmless)
                kind = "zero_gradient"
        elif zero_lr and _frozen_by_rate(grad[:, col], update[:, col]) and unchanged:
            kind = "zero_lr"
        if kind is not None:
            groups.setdefault(kind, []).append(p)
    return groups


def _unchanged(norms: np.ndarray) -> bool:
    """Whether a weight's norm was the same on every sampled step (needs two)."""
    norms = norms[np.isfinite(norms)]
    if norms.size < 2:
        return False
    top = float(np.max(np.abs(norms)))
    return float(np.max(norms) - np.min(norms)) <= UNCHANGED * top


def _all_zero(grad: np.ndarray, has: np.ndarray) -> bool:
    values = grad[has & np.isfinite(grad)]
    return values.size > 0 and bool(np.all(values == 0))


def _blocked(run: RunData, module: str) -> str | None:
    """A layer whose output is exactly zero throughout, feeding ``module`` or after it.

    Every unit of it is zero for every sample (all ReLUs dead, a zero-initialised layer). A
    weight's gradient is the product of its input and the gradient at its output, so a zero
    input, or a zero layer on the way to the loss (no gradient passes back through it), makes
    it exactly zero: that layer's finding (dead_relu, symmetric_weights), not a
    zero-derivative operation.
    """
    order = run.module_order().get(module)
    if order is None or not run.sample_steps.size:
        return None
    sites = run.sites_in_forward_order()
    before = [x for x in sites if (x.forward_order or 0) < order and x.role == "output"]
    feeding = [x for x in sites if x.module == module and x.role == "input"] or before[-1:]
    after = [x for x in sites if (x.forward_order or 0) > order and x.role == "output"]
    for site in (*feeding, *after):
        zeros = finite(run.act[:, site.idx, ActStat.ZERO_FRAC])
        if zeros.size and float(np.median(zeros)) >= BLOCKED:
            return site.name
    return None


def _frozen_by_rate(grad: np.ndarray, update: np.ndarray) -> bool:
    measured = update[np.isfinite(update)]
    return (
        bool(np.any(np.isfinite(grad) & (grad > 0)))
        and measured.size > 0
        and bool(np.all(measured == 0))
    )


def _has_zero_lr_group(run: RunData) -> bool:
    optimizer = run.meta.get("optimizer")
    groups = optimizer.get("groups") if isinstance(optimizer, dict) else None
    for group in groups or []:
        lr = group.get("lr") if isinstance(group, dict) else None
        if isinstance(lr, (int, float)) and not isinstance(lr, bool) and lr == 0:
            return True
    return False


def _ordered(run: RunData, params: Sequence[ParamInfo]) -> list[ParamInfo]:
    order = run.module_order()
    return sorted(params, key=lambda p: (order.get(p.module, 1 << 30), p.idx))


def _modules(params: Sequence[ParamInfo]) -> list[str]:
    seen: dict[str, None] = {}
    for p in params:
        seen.setdefault(p.module, None)
    return list(seen)


def _share(run: RunData, params: Sequence[ParamInfo]) -> tuple[int, int]:
    return sum(p.numel for p in params), sum(p.numel for p in run.params)


def _diagnose(run: RunData, th: Mapping[str, float], group: _Group) -> list[Diagnosis]:
    params = _ordered(run, group.params)
    modules = _modules(params)
    frozen, total = _share(run, params)
    names = ", ".join(p.name for p in params[:5]) + (
        f" and {len(params) - 5} more" if len(params) > 5 else ""
    )
    where = ", ".join(modules[:4]) + (f" and {len(modules) - 4} more" if len(modules) > 4 else "")
    size = f"{_count(frozen)} of {_count(total)} weights, {frozen / max(total, 1) * 100:.0f} %"
    evidence: dict[str, Any] = {
        "kind": group.kind,
        "params": [p.name for p in params][:20],
        "modules": modules[:20],
        "frozen_numel": frozen,
        "total_numel": total,
        "samples": int(run.sample_steps.size),
    }
    step = int(run.sample_steps[0]) if run.sample_steps.size else 0
    layer = modules[0]
    if group.kind == "not_in_optimizer":
        message = (
            f"{names} ({size}) require gradients but are in none of the optimizer's param "
            "groups, and never changed: add them to the optimizer"
        )
        fixes = [_add_to_optimizer(where)]
        severity = Severity.WARNING
    elif group.kind == "no_gradient":
        ran = [m for m in modules if m in run.module_order()]
        evidence["ran_forward"] = ran[:20]
        if ran:
            message = (
                f"{names} ({size}) never received a gradient although {ran[0]} ran in the "
                "forward pass, while other parameters did: the graph is cut between it and "
                "the loss (.detach(), .data, torch.no_grad() or a NumPy round trip)"
            )
            fixes = [_reconnect(ran[0])]
            severity = Severity.WARNING
        else:
            message = (
                f"{names} ({size}) never received a gradient: {where} never ran in the "
                "forward pass, so it is defined but unused (harmless if intended)"
            )
            fixes = [_use_or_remove(where)]
            severity = Severity.INFO
    elif group.kind == "all_zero_gradients":
        message = (
            "no parameter had a non-zero gradient when the optimizer stepped, on any sampled "
            f"step, so {names} ({size}) never changed: optimizer.zero_grad() runs between "
            "loss.backward() and optimizer.step(), or the loss does not depend on the model's "
            "output"
        )
        fixes = [_loop_order()]
        severity = Severity.WARNING
    elif group.kind == "zero_gradient":
        message = (
            f"the gradient of {names} ({size}) was exactly zero on every sampled step and "
            "the weights never changed, while other parameters learnt: something between "
            f"{layer} and the loss has zero derivative (round, sign, argmax, a comparison, a "
            "clamp that is always saturated) or every unit after it is dead or zero"
        )
        fixes = [_zero_derivative(layer)]
        severity = Severity.WARNING
    else:
        return [_deliberate(run, th, group.kind, params, names, size, evidence, step, layer)]
    return [Diagnosis(RULE_ID, severity, step, layer, message, evidence, tuple(fixes))]


def _deliberate(
    run: RunData,
    th: Mapping[str, float],
    kind: str,
    params: list[ParamInfo],
    names: str,
    size: str,
    evidence: dict[str, Any],
    step: int,
    layer: str,
) -> Diagnosis:
    """requires_grad=False (or a zero learning rate): info, unless it looks like a mistake."""
    frozen, total = _share(run, params)
    share = frozen / max(total, 1)
    head = _head(run)
    frozen_names = {p.name for p in params}
    head_frozen = head is not None and all(
        p.name in frozen_names for p in run.params if p.module == head
    )
    progress = loss_progress(run, int(th["min_steps"]))
    stalled = progress is not None and progress.progress < th["stalled_progress"]
    how = "requires_grad=False" if kind == "requires_grad_off" else "learning rate 0"
    evidence.update(
        frozen_share=share,
        head=head,
        head_frozen=head_frozen,
        loss_progress=None if progress is None else progress.progress,
    )
    if head_frozen and 1 - share >= th["head_share"]:
        message = (
            f"{names} ({size}) are frozen ({how}), including the output layer {head}, while "
            f"the layers before it train ({(1 - share) * 100:.0f} % of the weights): "
            "fine-tuning usually freezes the backbone and trains the head, not the other way "
            "round"
        )
        severity, lead = Severity.WARNING, head
    elif stalled and share >= th["frozen_share"]:
        assert progress is not None
        message = (
            f"{names} ({size}) are frozen ({how}) and the loss fell only "
            f"{max(progress.progress, 0.0) * 100:.1f} % in {progress.steps} steps: the "
            "trainable part alone cannot fit the task; unfreeze the top layers too"
        )
        severity, lead = Severity.WARNING, layer
    else:
        message = (
            f"{names} ({size}) are frozen ({how}) and never change: fine if you are "
            "fine-tuning on purpose (a pretrained backbone), otherwise unfreeze them"
        )
        severity, lead = Severity.INFO, layer
    if kind == "zero_lr":
        fixes = [
            fix(
                "unfreeze_parameters",
                "give their param group a learning rate above zero: "
                "optimizer.param_groups[i]['lr'] = 1e-3 (or its scheduler's start factor)",
            )
        ]
    else:
        fixes = [fix("unfreeze_parameters")]
    return Diagnosis(RULE_ID, severity, step, lead, message, evidence, tuple(fixes))


def _head(run: RunData) -> str | None:
    """The last module, in forward order, that owns parameters: the output layer."""
    order = run.module_order()
    owners = [p.module for p in run.params if p.module in order]
    return max(owners, key=order.__getitem__) if owners else None


def _count(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1e6:.1f}M"
    if n >= 10_000:
        return f"{n / 1e3:.0f}k"
    return str(n)


def _add_to_optimizer(where: str) -> Fix:
    return fix(
        "unfreeze_parameters",
        f"give {where} to the optimizer: build it from the whole model, "
        "torch.optim.Adam(model.parameters(), lr=1e-3), not from a part or from another "
        "instance of the model; or add them: optimizer.add_param_group({'params': "
        "module.parameters()})",
    )


def _reconnect(module: str) -> Fix:
    return fix(
        "unfreeze_parameters",
        f"let the gradient flow back to {module}: remove the .detach(), .data, "
        "torch.no_grad() or .numpy()/.item() round trip on the way from its output to the "
        "loss, e.g. h = self.body(x) instead of h = self.body(x).detach()",
    )


def _use_or_remove(where: str) -> Fix:
    return fix(
        "unfreeze_parameters",
        f"call {where} in forward() if the model should use it, or delete it (under DDP "
        "unused parameters need DistributedDataParallel(..., find_unused_parameters=True))",
    )


def _loop_order() -> Fix:
    return fix(
        "unfreeze_parameters",
        "clear the gradients before the backward pass, not between it and the step: "
        "optimizer.zero_grad(); loss = loss_fn(model(x), y); loss.backward(); optimizer.step()",
    )


def _zero_derivative(module: str) -> Fix:
    return fix(
        "unfreeze_parameters",
        f"give {module} a gradient: replace the zero-derivative step after it with a "
        "differentiable one, or pass the gradient straight through, "
        "y = x + (torch.round(x) - x).detach(); check the units after it are not all dead "
        "or zero-initialised",
    )


RULE = Rule(
    id=RULE_ID,
    severity=Severity.WARNING,
    title="Trainable parameters that never change (frozen parameters)",
    thresholds=(
        Threshold(
            "min_samples",
            3.0,
            "sampled steps needed before judging that a parameter never changed",
            "netdoctor",
        ),
        Threshold(
            "head_share",
            0.05,
            "share of the weights still trainable from which a frozen output layer is a "
            "mistake (below it, adapters or LoRA on a frozen model, it is deliberate)",
            "netdoctor (LoRA trains well under 1 % of a model's weights: Hu et al. 2021)",
        ),
        Threshold(
            "frozen_share",
            0.5,
            "share of the weights frozen from which a run that makes no progress blames them",
            "netdoctor",
        ),
        Threshold(
            "stalled_progress",
            0.05,
            "share of the initial loss the loss must fall for the run to count as learning",
            "TheDeepChecker (TOSEM'22): < 5 % per window (loss_not_decreasing's min_progress)",
        ),
        Threshold(
            "min_steps", 30.0, "steps with a finite loss needed to judge progress", "netdoctor"
        ),
    ),
    fixes=("unfreeze_parameters",),
    doc=RuleDoc(
        what=(
            "Trainable parameters that never change: (1) requires_grad is on but they are in "
            "none of the optimizer's param groups, and they never changed; (2) they never get "
            "a gradient while others do (their module did not run, or its output was detached "
            "before the loss); (3) their gradient is exactly zero on every sampled step (not "
            "when a layer before or after it outputs only zeros: dead units are dead_relu's); (4) "
            "their param group's learning rate is 0. Parameters with requires_grad=False are "
            "reported as info (freezing a pretrained backbone is common and deliberate), and "
            "as a warning when it looks like a mistake: the output layer is frozen while more "
            "than 5 % of the weights train (adapters such as LoRA train less), or most weights "
            "are frozen and the loss makes no progress."
        ),
        why=(
            "A parameter learns only if three things happen every step: the loss's gradient "
            "reaches it (it takes part in the forward pass, with no detach in between and "
            "no step with zero derivative), it has requires_grad on, and the optimizer holds it "
            "and has a learning rate above zero. Miss one and it keeps its random initial "
            "value for the whole run, silently: the loss still goes down a little through the "
            "other parameters, and the model underfits for no visible reason."
        ),
        how_to_fix=(
            "Build the optimizer after the model is complete and from all of it "
            "(model.parameters()), after any requires_grad changes; remove .detach(), .data "
            "and torch.no_grad() between the layer and the loss; replace round/argmax-like "
            "steps with differentiable ones or a straight-through estimator; give every param "
            "group a learning rate above zero. When fine-tuning, freeze the backbone on "
            "purpose and make sure the new head is trainable and in the optimizer."
        ),
        example=(
            "opt = torch.optim.Adam(model.head.parameters(), lr=1e-3)  # the body never learns\n"
            "opt = torch.optim.Adam(model.parameters(), lr=1e-3)\n"
            "for p in model.backbone.parameters(): p.requires_grad_(False)  # deliberate: info"
        ),
    ),
    check=check,
)
