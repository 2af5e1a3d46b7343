"""Batch size 4 with plain SGD: a noisy but perfectly healthy loss curve.

Some people (or memory limits) use tiny batches. Each step's loss is computed on 4 samples, so
the per-step loss jumps between ~0 and ~0.7 even late in training, while the epoch averages
fall steadily. MLP on a 5-class Gaussian-mixture problem with some overlap, plain SGD(lr=0.01)
(online-learning style, no momentum), 4 epochs, validation every epoch: validation loss 0.65,
0.26, 0.16, 0.13, accuracy 92 -> 96 %.

Label: healthy. Step-to-step swings of a batch-4 loss (and of its gradient norm: tiny on a batch
of easy samples, large on a hard one) are sampling noise, not a too-high LR or an explosion.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

import netdoctor

EXPECT: tuple[str, ...] = ()


def mixture(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    means = torch.randn(5, 6, generator=torch.Generator().manual_seed(8)) * 1.6
    y = torch.randint(0, 5, (n,), generator=g)
    return means[y] + torch.randn(n, 6, generator=g), y


def train(log: Path) -> list:
    torch.manual_seed(143)
    g = torch.Generator().manual_seed(143)
    x, y = mixture(800, g)
    xv, yv = mixture(400, g)
    model = nn.Sequential(nn.Linear(6, 48), nn.ReLU(), nn.Linear(48, 48), nn.ReLU(),
                          nn.Linear(48, 5))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    monitor = netdoctor.watch(model, opt, log=log)
    for _epoch in range(4):
        model.train()
        perm = torch.randperm(len(x))
        total = 0.0
        for i in range(0, len(x), 4):
            idx = perm[i:i + 4]
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            monitor.step(loss)
            total += loss.item() * len(idx)
        model.eval()
        with torch.no_grad():
            out = model(xv)
        monitor.epoch(train_loss=total / len(x),
                      val_loss=nn.functional.cross_entropy(out, yv).item(),
                      val_acc=(out.argmax(1) == yv).float().mean().item())
    return monitor.close()
