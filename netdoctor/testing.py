"""``assert_healthy``: the ``netdoctor check`` gate inside a project's own pytest suite.

A unit test of a model says it runs; this says it trains: a few optimizer steps under
``watch()``, then the rules, and an AssertionError that reads like the report when a finding is
at or above ``fail_on``. The message ends with what ``netdoctor.checkup`` finds on a copy of the
model taken before training and the first batch, which tells a bug in the model, loss or data
from a training setting (the checkup only runs when the gate fails). Rule settings come from
``[tool.netdoctor]`` of the nearest pyproject.toml, as for ``netdoctor check``, so both gates
agree; ``select`` and ``ignore`` act as the command-line flags do.

Imports torch (it trains), so it lives beside the capture half, never inside the analysis half.
"""

from __future__ import annotations

import copy
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from netdoctor.capture.tensors import to_device
from netdoctor.diagnosis import Diagnosis
from netdoctor.gate import FailOn
from netdoctor.report.plain import headline, top_fix

__all__ = ["assert_healthy"]


def assert_healthy(
    model: nn.Module,
    loader: Iterable[Any],
    loss_fn: Callable[[Any, Any], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    steps: int = 100,
    *,
    fail_on: str = "error",
    log: str | os.PathLike[str] | None = None,
    select: Sequence[str] | None = None,
    ignore: Sequence[str] | None = None,
) -> list[Diagnosis]:
    """Train ``steps`` optimizer steps under ``watch()`` and fail when the run is unhealthy.

    Args:
        model: the model to train (left in the train/eval mode it came in).
        loader: yields ``(x, y)`` pairs (a DataLoader, a list of batches...); it is iterated
            again when it runs out before ``steps``. Tensors are moved to the model's device.
        loss_fn: ``loss_fn(model(x), y)`` is the loss to minimise.
        optimizer: the optimizer of ``model``'s parameters.
        steps: optimizer steps to train.
        fail_on: ``"error"`` or ``"warning"``: the lowest severity that fails.
        log: where to keep the run log; by default it goes to a temporary directory and is
            deleted (give a path to open it with ``netdoctor inspect`` afterwards).
        select: run only these rule ids; ignore: skip these.

    Returns:
        Every diagnosis of the run (all below ``fail_on``), causes first.

    Raises:
        AssertionError: a diagnosis at or above ``fail_on``; the message lists the diagnoses
            with severity, rule, step, layer, message and the most promising fix.
    """
    threshold = _fail_on(fail_on)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"assert_healthy: steps must be a positive int, got {steps!r}")
    from netdoctor.cli.settings import rule_config  # also validates select/ignore up front

    settings = rule_config(list(select) if select is not None else None,
                           list(ignore) if ignore is not None else None)
    before = _copy_or_none(model)  # for the checkup, should the gate fail
    first: list[Any] = []
    if log is not None:
        diagnoses = _diagnose(model, loader, loss_fn, optimizer, steps, Path(log), settings,
                              first)
        shown = str(log)
    else:
        with tempfile.TemporaryDirectory(prefix="netdoctor-") as tmp:
            path = Path(tmp) / "assert_healthy.sqlite"
            diagnoses = _diagnose(model, loader, loss_fn, optimizer, steps, path, settings,
                                  first)
        shown = "deleted; pass log=PATH to keep it"
    failing = [d for d in diagnoses if threshold.catches(d)]
    if failing:
        message = _message(diagnoses, threshold, steps, shown)
        raise AssertionError(message + "\n" + _checkup_lines(before, first, loss_fn))
    return diagnoses


def _diagnose(model: nn.Module, loader: Iterable[Any], loss_fn: Callable[[Any, Any], Any],
              optimizer: torch.optim.Optimizer, steps: int, path: Path,
              settings: Any, first: list[Any]) -> list[Diagnosis]:
    """The monitored run's diagnoses; ``first`` receives the first (x, y) batch."""
    from netdoctor.capture import watch

    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    was_training = model.training
    model.train()  # watch() counts forward passes in train mode only
    try:
        with watch(model, optimizer, log=path) as monitor:  # closes the log also on errors
            batches = _cycle(loader)
            for _ in range(steps):
                x, y = _pair(next(batches))
                if not first:
                    first.append((x, y))
                optimizer.zero_grad()
                loss = loss_fn(model(to_device(x, device)), to_device(y, device))
                loss.backward()
                optimizer.step()
                monitor.step(loss)
            return monitor.close(settings)  # the rules run once, with the caller's settings
    finally:
        model.train(was_training)


def _copy_or_none(model: nn.Module) -> nn.Module | None:
    """A copy of the untrained model for the checkup; None when it cannot be copied (the
    checkup is extra information, never a reason to fail differently)."""
    try:
        return copy.deepcopy(model)
    except Exception:
        return None


def _checkup_lines(before: nn.Module | None, first: list[Any],
                   loss_fn: Callable[[Any, Any], Any]) -> str:
    """What netdoctor.checkup finds on the model as it was and the first batch."""
    if before is None or not first:
        return "  checkup before training: not run (the model could not be copied)"
    from netdoctor.capture.checkup import checkup

    try:
        found = [d for d in checkup(before, first[0], loss_fn) if d.severity.rank > 0]
    except Exception as exc:  # never hide the gate's own finding behind the checkup's error
        return f"  checkup before training: could not run ({type(exc).__name__}: {exc})"
    if not found:
        return ("  checkup before training (the first batch, a copy of the model): nothing "
                "found; the model, loss and data fit one batch, so look at the training "
                "settings (learning rate, schedule, optimizer)")
    lines = ["  checkup before training (the first batch, a copy of the model):"]
    for d in found:
        lines.append(f"    {headline(d)}: {d.message}")
        fix = top_fix(d)
        if fix is not None:
            lines.append(f"      fix: {fix}")
    return "\n".join(lines)


def _cycle(loader: Iterable[Any]) -> Iterator[Any]:
    """The loader's batches, starting over when it runs out (a new epoch, reshuffled)."""
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:
            raise ValueError("assert_healthy: the loader yielded no batches")


def _pair(batch: Any) -> tuple[Any, Any]:
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return batch[0], batch[1]
    raise TypeError(f"assert_healthy: the loader must yield (x, y) pairs, got "
                    f"{type(batch).__name__}")


def _fail_on(value: Any) -> FailOn:
    try:
        return FailOn(str(value).lower())
    except ValueError:
        raise ValueError(f"assert_healthy: fail_on must be 'error' or 'warning', "
                         f"got {value!r}") from None


def _message(diagnoses: list[Diagnosis], threshold: FailOn, steps: int, log: str) -> str:
    failing = sum(threshold.catches(d) for d in diagnoses)
    lines = [f"netdoctor: {failing} of {len(diagnoses)} diagnoses at or above "
             f"{threshold.value} after {steps} steps (run log: {log})"]
    for d in diagnoses:
        lines.append(f"  {headline(d)}: {d.message}")
        fix = top_fix(d)
        if fix is not None:
            lines.append(f"    fix: {fix}")
    return "\n".join(lines)
