"""``netdoctor.checkup``: the checklist before training, run on a copy of the model and one batch.

Karpathy's recipe and the course notes say the same before a long run: verify the loss at
initialisation against chance, check the weights' scale against the activation that follows,
normalise the inputs, do not feed softmax outputs to a loss that applies its own, and make sure
the model can overfit a single batch. TheDeepChecker calls these pre-checks. This runs them in a
second or two on a deep copy of the model (the user's model, its gradients and the random number
generators are left as they were):

1. the copy trains on the one batch under ``netdoctor.watch``, so the rules of a real run read
   its first steps (poor_init, unnormalized_inputs, symmetric_weights, frozen_parameters,
   nan_loss, double_softmax, and units that are dead, saturated or gradients that vanish or
   explode from the very first steps: what happens later depends on the checkup's step size,
   not on the model, and is left out);
2. what a log cannot hold is measured here and judged in ``netdoctor.rules.checkup_checks``:
   the first loss against the user's own loss on a know-nothing prediction, outputs that are
   distributions going into a loss that ignores a shift of every row (a second softmax), the
   loss's warnings about shapes, parameters left without a gradient, and whether the batch was
   fitted (``cannot_overfit_batch``).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import os
import random
import statistics
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from netdoctor.capture.tensors import to_device
from netdoctor.capture.watch import _ATTACHED, _unwrap, watch
from netdoctor.diagnosis import Diagnosis, Severity
from netdoctor.rules.checkup_checks import (
    Attempt,
    InitFacts,
    double_softmax_finding,
    first_loss_finding,
    fitted,
    nonfinite_finding,
    overfit_finding,
    unused_params_finding,
)
from netdoctor.rules.config import RuleConfig
from netdoctor.rules.engine import sort_diagnoses

__all__ = ["checkup"]

#: The rules read on the copy's log: what the model, data and loss are at initialisation.
CHECKUP_RULES = frozenset({
    "nan_loss", "exploding_gradients", "vanishing_gradients", "dead_relu",
    "saturated_activations", "frozen_parameters", "symmetric_weights", "poor_init",
    "unnormalized_inputs", "double_softmax",
})
#: Of those, the ones whose findings count only when they held from the first steps: later on
#: they would describe the checkup's own step size on a single batch, not the model.
AT_INIT_ONLY = frozenset({
    "exploding_gradients", "vanishing_gradients", "dead_relu", "saturated_activations",
})
INIT_STEPS = 2
#: Keys under which a dict batch holds its targets (the rest are the model's inputs).
TARGET_KEYS = ("y", "target", "targets", "label", "labels")
#: Steps always trained before stopping early on a fitted batch: the rules need samples.
MIN_STEPS = 20
#: Adam moves every weight by about lr per step, whatever its size: a step of a tenth of the
#: typical weight (TheDeepChecker's upper update/weight ratio, 1e-1) fits a batch in a few dozen
#: steps without throwing the weights away; kept within the range people use with Adam.
UPDATE_SCALE = 0.1
LR_RANGE = (1e-4, 1e-2)
DEFAULT_LR = 1e-3
#: Switched off in the copy: fitting one batch is tested without regularisation (Karpathy).
DROPOUT_TYPES = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout,
                 nn.FeatureAlphaDropout)
#: After a diverging first attempt (own optimizer only), the next one uses this fraction of lr.
RETRY_FACTOR = 0.1

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]


def checkup(
    model: nn.Module,
    batch: Any,
    loss_fn: Callable[[Any, Any], torch.Tensor],
    *,
    optimizer_factory: OptimizerFactory | None = None,
    steps: int = 100,
    num_classes: int | None = None,
    log: str | os.PathLike[str] | None = None,
) -> list[Diagnosis]:
    """Check ``model``, one ``batch`` and ``loss_fn`` before training; return the findings.

    Nothing of the caller's changes: the checks train a deep copy, and the random number
    generators (torch CPU and CUDA, ``random``, NumPy) are restored afterwards.

    Args:
        model: the untrained model (a ``torch.compile``'d or DDP-wrapped one is unwrapped).
        batch: ``(x, y)`` (tuple or list), or a dict with the targets under ``y``, ``target``,
            ``targets``, ``label`` or ``labels``: the model gets the one remaining entry, or all
            of them as keyword arguments. Tensors are moved to the model's device.
        loss_fn: ``loss_fn(model(x), y)`` is the scalar loss to minimise.
        optimizer_factory: ``optimizer_factory(params)`` builds the optimizer for the
            overfitting test (your own settings); default Adam with a step size scaled to the
            weights (a tenth of their typical size, within 1e-4..1e-2), retried ten times
            smaller if the loss diverges.
        steps: at most this many steps on the batch (it stops earlier once the batch is fitted,
            after at least 20).
        num_classes: for classification, the number of classes when it is not the output's
            width (which is used otherwise).
        log: where to keep the copy's run log for ``netdoctor inspect``; default a temporary
            file, deleted.

    Returns:
        The diagnoses, causes first, with the ids of the rules (design.md) plus
        ``cannot_overfit_batch``; healthy models get nothing above info.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"checkup: steps must be a positive int, got {steps!r}")
    if num_classes is not None and (
        isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2
    ):
        raise ValueError(f"checkup: num_classes must be an int >= 2, got {num_classes!r}")
    if not isinstance(model, nn.Module):
        raise TypeError(f"checkup: model must be a torch.nn.Module, got {type(model).__name__}")
    source = _copy(model)
    if not any(p.requires_grad for p in source.parameters()):
        raise ValueError("checkup: the model has no trainable parameters")
    device = next(source.parameters()).device
    parts = _split(batch)
    parts = dataclasses.replace(parts, args=to_device(parts.args, device),
                                kwargs=to_device(parts.kwargs, device),
                                target=to_device(parts.target, device))
    with _rng_kept():
        torch.manual_seed(0)  # the same findings on every call
        if log is not None:
            return _run(source, parts, loss_fn, optimizer_factory, steps, num_classes, Path(log))
        with tempfile.TemporaryDirectory(prefix="netdoctor-checkup-") as tmp:
            path = Path(tmp) / "checkup.sqlite"
            return _run(source, parts, loss_fn, optimizer_factory, steps, num_classes, path)


# ---- the batch --------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Batch:
    """How to call the model on the batch, and the targets the loss compares with."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    target: Any

    def forward(self, model: nn.Module) -> Any:
        return model(*self.args, **self.kwargs)

    @property
    def size(self) -> int:
        for value in (self.target, *self.args, *self.kwargs.values()):
            if isinstance(value, torch.Tensor) and value.dim() > 0:
                return int(value.shape[0])
        return 1


def _split(batch: Any) -> _Batch:
    if isinstance(batch, Mapping):
        key = next((k for k in TARGET_KEYS if k in batch), None)
        if key is None:
            raise ValueError(f"checkup: a dict batch needs its targets under one of "
                             f"{', '.join(TARGET_KEYS)}; its keys are {list(batch)}")
        inputs = {str(k): v for k, v in batch.items() if k != key}
        if not inputs:
            raise ValueError(f"checkup: the dict batch holds only the targets ({key!r})")
        if len(inputs) == 1:
            return _Batch((next(iter(inputs.values())),), {}, batch[key])
        return _Batch((), inputs, batch[key])
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return _Batch((batch[0],), {}, batch[1])
    raise TypeError(f"checkup: batch must be an (x, y) pair or a dict with targets, got "
                    f"{type(batch).__name__}")


# ---- copy and random state --------------------------------------------------------------------
def _copy(model: nn.Module) -> nn.Module:
    inner = _unwrap(model)
    monitor = inner.__dict__.get(_ATTACHED)
    if monitor is not None and not getattr(monitor, "closed", True):
        raise ValueError(f"checkup: this model is being watched by netdoctor (log "
                         f"{monitor.log_path}); run the checkup before watch() or after "
                         "monitor.close()")
    try:
        return copy.deepcopy(inner)
    except Exception as exc:
        raise TypeError(f"checkup: works on a copy of the model, and copy.deepcopy(model) "
                        f"failed: {type(exc).__name__}: {exc}") from exc


@contextlib.contextmanager
def _rng_kept() -> Iterator[None]:
    """Restore every random number generator the copy's training may draw from."""
    cuda = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    py_state = random.getstate()
    np_state = np.random.get_state()
    try:
        with torch.random.fork_rng(devices=cuda):
            yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


# ---- the run ------------------------------------------------------------------------------------
def _run(source: nn.Module, batch: _Batch, loss_fn: Callable[[Any, Any], Any],
         factory: OptimizerFactory | None, steps: int, num_classes: int | None,
         path: Path) -> list[Diagnosis]:
    lr = None if factory is not None else _step_size(source)
    result = _attempt(source, batch, loss_fn, factory, lr, steps, num_classes, path, probe=True)
    facts = result.facts
    attempts = [result.attempt]
    while (factory is None and attempts[-1].diverged and len(attempts) < 2
           and math.isfinite(attempts[-1].first_loss)):
        assert lr is not None
        lr *= RETRY_FACTOR
        result = _attempt(source, batch, loss_fn, None, lr, steps, num_classes, path, probe=False)
        attempts.append(result.attempt)
    logged = [d for d in result.diagnoses if _kept(d)]
    own = [f for f in (nonfinite_finding(facts), double_softmax_finding(facts),
                       first_loss_finding(facts), unused_params_finding(facts)) if f is not None]
    found = _merge(logged, own)
    overfit = overfit_finding(facts, attempts, {d.rule for d in found if _loud(d)},
                              factory is not None)
    return _place(sort_diagnoses(found), overfit)


@dataclass(frozen=True)
class _Result:
    attempt: Attempt
    facts: InitFacts
    diagnoses: list[Diagnosis]


def _attempt(source: nn.Module, batch: _Batch, loss_fn: Callable[[Any, Any], Any],
             factory: OptimizerFactory | None, lr: float | None, steps: int,
             num_classes: int | None, path: Path, probe: bool) -> _Result:
    """One overfitting test on a fresh copy, under watch(); the first step is also probed."""
    model = copy.deepcopy(source)
    model.train()
    for module in model.modules():  # overfit with regularisation off (Karpathy)
        if isinstance(module, DROPOUT_TYPES):
            module.eval()
    optimizer = factory(model.parameters()) if factory is not None else torch.optim.Adam(
        model.parameters(), lr=lr or DEFAULT_LR)
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"checkup: optimizer_factory must return a torch.optim.Optimizer, got "
                        f"{type(optimizer).__name__}")
    target = batch.target
    losses: list[float] = []
    accuracies: list[float | None] = []
    facts: InitFacts | None = None
    task: _Task | None = None
    with watch(model, optimizer, log=path) as monitor:
        for step in range(steps):
            optimizer.zero_grad(set_to_none=True)
            if step == 0:
                with _leaf_trace(model) as called, warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    out = batch.forward(model)
                    loss = _scalar(loss_fn(out, target))
                pred = _prediction(out)
                task = _infer_task(pred, target, num_classes)
            else:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # said once, at step 0
                    out = batch.forward(model)
                    loss = _scalar(loss_fn(out, target))
                pred = _prediction(out)
            value = float(loss.detach().float())
            assert task is not None
            accuracy = _accuracy(pred, target, task)
            if loss.requires_grad:
                loss.backward()
            if step == 0:
                unused = tuple(n for n, p in model.named_parameters()
                               if p.requires_grad and p.grad is None)
                facts = _facts(model, out, pred, target, loss_fn, value, task, caught,
                               unused, called) if probe else None
            optimizer.step()
            monitor.step(loss.detach())
            losses.append(value)
            accuracies.append(accuracy)
            if not math.isfinite(value):
                break
            if step + 1 >= MIN_STEPS and fitted(value, losses[0], accuracy):
                break
        monitor.annotate({"source": "checkup", "checkup": {
            "batch_size": batch.size, "steps": len(losses), "lr": lr,
            "optimizer": type(optimizer).__name__, "first_loss": _json_float(losses[0]),
        }})
        diagnoses = monitor.close(RuleConfig(select=CHECKUP_RULES))
    assert task is not None
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = batch.forward(model)
        final = float(_scalar(loss_fn(out, target)).float())
        final_accuracy = _accuracy(_prediction(out), target, task)
    attempt = Attempt(type(optimizer).__name__, lr, tuple(losses), final, final_accuracy,
                      tuple(accuracies))
    if facts is None:
        facts = _empty_facts(losses[0])
    return _Result(attempt, facts, diagnoses)


def _step_size(model: nn.Module) -> float:
    """Adam's learning rate for the test: a tenth of the typical weight matrix's RMS, counted
    as at least LeCun's sqrt(1/fan_in), so that weights initialised too small (or zero) are
    not also given a step too small to show it."""
    rms = []
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad and p.dim() >= 2 and p.numel() > 0:
                value = float(p.detach().float().pow(2).mean().sqrt())
                fan_in = max(p[0].numel(), 1)
                if math.isfinite(value):
                    rms.append(max(value, math.sqrt(1.0 / fan_in)))
    if not rms:
        return DEFAULT_LR
    return min(max(UPDATE_SCALE * statistics.median(rms), LR_RANGE[0]), LR_RANGE[1])


def _scalar(loss: Any) -> torch.Tensor:
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise TypeError(f"checkup: loss_fn must return a scalar tensor, got {shape}")
    return loss.reshape(())


@dataclass(frozen=True)
class _Call:
    """A leaf module's forward call: its name, and whether it has weights of its own."""

    name: str
    weighted: bool


@contextlib.contextmanager
def _leaf_trace(model: nn.Module) -> Iterator[list[_Call]]:
    """The leaf modules' calls in the order they ran (the last one made the output)."""
    called: list[_Call] = []
    handles = []
    for name, module in model.named_modules():
        if next(module.children(), None) is None:
            call = _Call(name or type(model).__name__,
                         next(module.parameters(recurse=False), None) is not None)
            handles.append(module.register_forward_hook(
                lambda _m, _i, _o, call=call: called.append(call)))
    try:
        yield called
    finally:
        for handle in handles:
            handle.remove()


# ---- what the first step shows ------------------------------------------------------------------
@dataclass(frozen=True)
class _Task:
    kind: str  # "classification" | "regression" | "unknown"
    classes: int | None
    class_dim: int | None  # the dimension of class scores, for integer or soft labels
    binary: bool = False  # 0/1 targets of the output's shape (BCE)


def _prediction(out: Any) -> torch.Tensor | None:
    """The output tensor the checks read: the output, its 'logits', or its first tensor."""
    if isinstance(out, torch.Tensor):
        return out.detach()
    if isinstance(out, Mapping):
        logits = out.get("logits")
        if isinstance(logits, torch.Tensor):
            return logits.detach()
        out = list(out.values())
    if isinstance(out, (tuple, list)):
        return next((v.detach() for v in out if isinstance(v, torch.Tensor)), None)
    return None


def _infer_task(pred: torch.Tensor | None, y: Any, num_classes: int | None) -> _Task:
    if pred is None or not isinstance(y, torch.Tensor) or not pred.is_floating_point():
        return _Task("unknown", num_classes, None)
    shape, target = tuple(pred.shape), tuple(y.shape)
    if not y.is_floating_point() and y.dtype != torch.bool:
        if len(shape) >= 2 and target == shape[:1] + shape[2:]:
            return _Task("classification", num_classes or shape[1], 1)
        if len(shape) >= 1 and target == shape[:-1]:
            return _Task("classification", num_classes or shape[-1], len(shape) - 1)
        return _Task("unknown", num_classes, None)
    yf = y.detach().float()
    if target == shape:
        if bool(((yf == 0) | (yf == 1)).all()):
            return _Task("classification", num_classes or 2, None, binary=True)
        if len(shape) >= 2 and bool((yf >= 0).all()) and bool(
                ((yf.sum(1) - 1).abs() < 1e-3).all()):
            return _Task("classification", num_classes or shape[1], 1)  # soft labels
        return _Task("regression", None, None)
    if y.numel() == pred.numel():
        return _Task("regression", None, None)  # (N, 1) against (N,): the loss says the rest
    return _Task("unknown", num_classes, None)


def _accuracy(pred: torch.Tensor | None, y: Any, task: _Task) -> float | None:
    if pred is None or task.kind != "classification" or not isinstance(y, torch.Tensor):
        return None
    with torch.no_grad():
        if task.binary:
            cut = 0.5 if bool((pred >= 0).all() and (pred <= 1).all()) else 0.0
            hits = (pred > cut) == (y > 0.5)
        elif task.class_dim is None:
            return None
        elif y.is_floating_point():
            hits = pred.argmax(task.class_dim) == y.argmax(task.class_dim)
        else:
            valid = y >= 0  # ignore_index (-100) and the like
            hits = (pred.argmax(task.class_dim) == y)[valid]
        return float(hits.float().mean()) if hits.numel() else None


def _facts(model: nn.Module, out: Any, pred: torch.Tensor | None, y: Any,
           loss_fn: Callable[[Any, Any], Any], first: float, task: _Task,
           caught: list[warnings.WarningMessage], unused: tuple[str, ...],
           called: list[_Call]) -> InitFacts:
    distribution, dist_classes = _distribution(pred)
    classes = task.classes or dist_classes
    chance, how, zero = _chance(loss_fn, out, y, task, distribution, classes)
    invariant = distribution and isinstance(out, torch.Tensor) and _shift_invariant(
        loss_fn, out.detach(), y)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    n_targets = 1
    if isinstance(y, torch.Tensor):  # values to memorise: one per label, not per probability
        soft = task.kind == "classification" and y.is_floating_point() and not task.binary
        n_targets = y.numel() // (classes or 1) if soft else y.numel()
    mean = std = None
    if task.kind == "regression" and isinstance(y, torch.Tensor) and y.numel() > 1:
        mean, std = float(y.float().mean()), float(y.float().std())
    relu = any(isinstance(m, (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.GELU,
                              nn.SiLU)) for m in model.modules())
    return InitFacts(
        first_loss=first,
        output_finite=bool(torch.isfinite(pred).all()) if pred is not None else True,
        output_shape=tuple(pred.shape) if pred is not None else None,
        task=task.kind,
        classes=classes,
        chance_loss=chance,
        chance_how=how,
        zero_loss=zero,
        output_is_distribution=distribution,
        loss_shift_invariant=bool(invariant),
        loss_warnings=tuple(str(w.message).splitlines()[0][:200] for w in caught
                            if issubclass(w.category, UserWarning))[:3],
        unused_params=unused,
        last_module=called[-1].name if called else None,
        output_layer=next((c.name for c in reversed(called) if c.weighted), None),
        relu_family=relu,
        n_trainable=trainable,
        n_targets=int(n_targets),
        batch_size=int(pred.shape[0]) if pred is not None and pred.dim() > 0 else 1,
        target_mean=mean,
        target_std=std,
    )


def _empty_facts(first: float) -> InitFacts:
    """Facts for a retry: the first attempt's probe is the one that counts."""
    return InitFacts(first, True, None, "unknown", None, None, "", None, False, False, (), (),
                     None, None, False, 0, 0, 0)


def _distribution(pred: torch.Tensor | None) -> tuple[bool, int | None]:
    """Whether every row of the output is a probability distribution (non-negative, sums to 1)
    along the class dimension (1, as cross-entropy reads it, or the last)."""
    if pred is None or not pred.is_floating_point() or pred.dim() < 1 or pred.numel() == 0:
        return False, None
    if not bool(torch.isfinite(pred).all()) or float(pred.min()) < -1e-6:
        return False, None
    dims = {1 if pred.dim() >= 2 else 0, pred.dim() - 1}
    for dim in sorted(dims):
        size = pred.shape[dim]
        if size >= 2 and float((pred.float().sum(dim) - 1).abs().max()) <= 1e-3:
            return True, int(size)
    return False, None


def _loss_of(loss_fn: Callable[[Any, Any], Any], out: torch.Tensor, y: Any) -> float:
    """The loss of a made-up output; NaN when the loss refuses it."""
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = loss_fn(out, y)
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            return float(value.detach().float())
    except Exception:  # the user's loss may reject any made-up input: then it tells nothing
        return math.nan
    return math.nan


def _chance(loss_fn: Callable[[Any, Any], Any], out: Any, y: Any, task: _Task,
            distribution: bool, classes: int | None) -> tuple[float | None, str, float | None]:
    """(chance loss, how it was made, loss of all-zero outputs), with the user's own loss.

    Know-nothing predictions: all-zero outputs (uniform logits, so -log(1/C) for
    cross-entropy), the targets' mean for a regression (their variance for MSE), and uniform
    probabilities for a model that outputs distributions; the chance loss is the lowest.
    """
    if not isinstance(out, torch.Tensor) or not out.is_floating_point():
        return None, "", None
    out = out.detach()
    zero = _loss_of(loss_fn, torch.zeros_like(out), y)
    candidates: list[tuple[float, str]] = []
    if task.kind == "classification" and classes:
        candidates.append((zero, f"uniform predictions over {classes} classes, "
                                 f"-log(1/{classes}) = {math.log(classes):.3g} for cross-entropy"))
    else:
        candidates.append((zero, "all-zero outputs"))
    if task.kind == "regression" and isinstance(y, torch.Tensor) and y.numel() == out.numel():
        mean = y.detach().to(out.dtype).mean(0, keepdim=True).expand_as(y).reshape(out.shape)
        candidates.append((_loss_of(loss_fn, mean, y),
                           "predicting the targets' mean (their variance for MSE)"))
    if distribution and classes:
        candidates.append((_loss_of(loss_fn, torch.full_like(out, 1.0 / classes), y),
                           f"uniform probabilities over {classes} classes"))
    finite = [(v, how) for v, how in candidates if math.isfinite(v)]
    if not finite:
        return None, "", None
    value, how = min(finite, key=lambda c: c[0])
    return value, how, zero if math.isfinite(zero) else None


def _shift_invariant(loss_fn: Callable[[Any, Any], Any], out: torch.Tensor, y: Any) -> bool:
    """Whether the loss ignores a constant added to each sample's outputs (a log-sum-exp, as in
    cross-entropy), while it does depend on the outputs (scaling them changes it)."""
    base = _loss_of(loss_fn, out, y)
    if not math.isfinite(base):
        return False
    offsets = 1.0 + 0.37 * torch.arange(out.shape[0], device=out.device, dtype=out.dtype)
    shifted = _loss_of(loss_fn, out + offsets.reshape(-1, *([1] * (out.dim() - 1))), y)
    scaled = _loss_of(loss_fn, out * 10.0, y)
    tol = max(1.0, abs(base))
    return abs(shifted - base) <= 1e-5 * tol and abs(scaled - base) > 1e-4 * tol


# ---- putting findings together ------------------------------------------------------------------
def _kept(d: Diagnosis) -> bool:
    if d.rule not in AT_INIT_ONLY:
        return True
    return d.step is not None and d.step <= INIT_STEPS


def _loud(d: Diagnosis) -> bool:
    return d.severity is not Severity.INFO


def _merge(logged: list[Diagnosis], own: list[Diagnosis]) -> list[Diagnosis]:
    """The log's diagnoses, plus the checkup's own; a finding both made is reported once, as
    the log's (its loudest), with the checkup's numbers under evidence['checkup']. The log's
    judgement wins: a parameter without gradient whose module never ran is unused, harmless."""
    merged = list(logged)
    for d in own:
        same = [i for i, m in enumerate(merged) if m.rule == d.rule]
        same = sorted(same, key=lambda i: -merged[i].severity.rank)[:1]
        if not same:
            merged.append(d)
        else:
            logged_one = merged[same[0]]
            merged[same[0]] = dataclasses.replace(
                logged_one, evidence={**logged_one.evidence, "checkup": d.evidence})
    return merged


def _place(found: list[Diagnosis], overfit: Diagnosis | None) -> list[Diagnosis]:
    """``cannot_overfit_batch`` goes right after the finding that explains it (marked
    ``caused_by``, as the engine marks consequences), else after the errors."""
    if overfit is None:
        return found
    causes = overfit.evidence.get("explained_by") or []
    for i, d in enumerate(found):
        if d.rule in causes and _loud(d):
            tail = i + 1
            while tail < len(found) and found[tail].evidence.get("caused_by"):
                tail += 1
            shown = dataclasses.replace(overfit, evidence={**overfit.evidence,
                                                           "caused_by": d.rule})
            return [*found[:tail], shown, *found[tail:]]
    rank = overfit.severity.rank
    at = next((i for i, d in enumerate(found) if d.severity.rank < rank), len(found))
    return [*found[:at], overfit, *found[at:]]


def _json_float(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)

