"""Fraud-style binary classifier with a hand-written binary cross-entropy.

What I did: I wanted per-sample weights later, so I wrote the BCE myself,
    p = torch.sigmoid(logit)
    loss = -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean()
with Adam at 3e-3 on a problem that is nearly separable. It trained nicely for a while, then the
loss printed `nan` and never came back.

Why: once the model is confident, sigmoid(logit) rounds to exactly 1.0 in float32 (logit > ~17),
so log(1 - p) = -inf, and for a positive sample (1 - y) * log(1 - p) = 0 * -inf = NaN. The NaN loss
back-propagates NaN gradients, Adam writes NaN into the weights, and every later loss is NaN.
(BCEWithLogitsLoss computes the same thing stably.)

Label: nan_loss. Before the NaN the run was learning well: no other problem.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

import netdoctor

EXPECT: tuple[str, ...] = ("nan_loss",)


def transactions(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(n, 12, generator=g)
    w = torch.linspace(-1, 1, 12)
    y = ((x @ w) > 0.3).float()
    return x, y


def train(log: Path) -> list:
    torch.manual_seed(20)
    g = torch.Generator().manual_seed(20)
    x, y = transactions(4000, g)
    model = nn.Sequential(nn.Linear(12, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                          nn.Linear(64, 1))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    monitor = netdoctor.watch(model, opt, log=log)
    for _epoch in range(12):
        perm = torch.randperm(len(x))
        epoch_loss = 0.0
        for i in range(0, len(x), 100):
            idx = perm[i:i + 100]
            p = torch.sigmoid(model(x[idx]).squeeze(1))
            t = y[idx]
            loss = -(t * torch.log(p) + (1 - t) * torch.log(1 - p)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            monitor.step(loss)
            epoch_loss += loss.item()
        monitor.epoch(train_loss=epoch_loss / 40)
    return monitor.close()
