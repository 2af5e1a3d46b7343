"""Logistic regression (a single nn.Linear) on an XOR-like problem.

What I did: "start simple": nn.Linear(2, 2) + cross-entropy on points whose class is the sign of
x0 * x1 (XOR of the two signs), SGD lr 0.1 with momentum, 6 epochs with validation. The loss sat
at 0.693 and accuracy at 50 % from the first epoch to the last.

Why: the classes are not linearly separable at all -- every line through the plane has the same
mix of both classes on each side -- so the best a linear model can do is predict 50/50: the
loss stays at ln 2. The model is too simple for the task; any hidden layer fixes it.

Label: underfitting (the cause: no capacity for the task; the train loss stays at chance) and
loss_not_decreasing (it never leaves ln 2, from the first step).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

import netdoctor

EXPECT: tuple[str, ...] = ("loss_not_decreasing", "underfitting")


def xor_points(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(n, 2, generator=g)
    return x, (x[:, 0] * x[:, 1] > 0).long()


def train(log: Path) -> list:
    torch.manual_seed(161)
    g = torch.Generator().manual_seed(161)
    x, y = xor_points(2000, g)
    xv, yv = xor_points(500, g)
    model = nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    monitor = netdoctor.watch(model, opt, log=log)
    for _epoch in range(6):
        perm = torch.randperm(len(x))
        tl, hits = 0.0, 0
        for i in range(0, len(x), 50):
            idx = perm[i:i + 50]
            out = model(x[idx])
            loss = nn.functional.cross_entropy(out, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            monitor.step(loss)
            tl += loss.item() * len(idx)
            hits += (out.argmax(1) == y[idx]).sum().item()
        with torch.no_grad():
            ov = model(xv)
        monitor.epoch(train_loss=tl / len(x), train_acc=hits / len(x),
                      val_loss=nn.functional.cross_entropy(ov, yv).item(),
                      val_acc=(ov.argmax(1) == yv).float().mean().item())
    return monitor.close()
