"""Tiny real training runs under watch() for the activation rules' tests (imports torch).

Imported inside the tests that need it, after ``pytest.importorskip("torch")``, so the rule
tests on synthetic logs still run where torch is not installed. Each run takes well under a
second on one CPU thread.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import netdoctor
from netdoctor.diagnosis import Diagnosis, Severity


def blobs(n: int = 1024, features: int = 20, classes: int = 4, seed: int = 0):
    """Linearly separable classes (argmax of a random projection): easy to learn."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, features, generator=g)
    y = (x @ torch.randn(features, classes, generator=g)).argmax(1)
    return x, y


def mlp(sizes: list[int], act: Callable[[], nn.Module] = nn.ReLU) -> nn.Sequential:
    """Linear layers with ``act`` after each hidden one (module names "0", "1", "2", ...)."""
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


def train(
    model: nn.Module,
    opt: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    log: Path,
    *,
    steps: int = 120,
    batch: int = 32,
    loss_fn: Callable[..., torch.Tensor] = F.cross_entropy,
    **task: object,
) -> list[Diagnosis]:
    """``steps`` optimizer steps over ``x`` in order; the loud (warning/error) diagnoses."""
    with netdoctor.watch(model, opt, log=log, **task) as monitor:
        for s in range(steps):
            i = (s * batch) % len(x)
            opt.zero_grad()
            loss = loss_fn(model(x[i : i + batch]), y[i : i + batch])
            loss.backward()
            opt.step()
            monitor.step(loss)
    found = monitor.close()
    return [d for d in found if d.severity in (Severity.ERROR, Severity.WARNING)]


def by_rule(found: list[Diagnosis], rule: str) -> Diagnosis:
    """The diagnosis of ``rule``; fails with the rules that were found instead."""
    hits = [d for d in found if d.rule == rule]
    assert hits, [d.rule for d in found]
    return hits[0]
