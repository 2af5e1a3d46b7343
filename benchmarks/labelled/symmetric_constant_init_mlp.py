"""Credit-scoring MLP initialised with a constant "for reproducibility".

What I did: I wanted runs to be identical regardless of the seed, so I initialised every Linear
with `nn.init.constant_(m.weight, 0.05)` and zero biases (deterministic!). 24 standardised
features, 2 hidden layers of 128 ReLU units, Adam 1e-3, 8 epochs. It trains, but it is no
better than a logistic regression on the same data, however many units I add.

Why: with identical incoming weights every hidden unit computes the same value for every input,
receives the same gradient and takes the same Adam step, so they stay identical forever: each
128-unit layer behaves like a single unit (the unit spread of the weight matrices stays 0). The
network is a 1-1 chain, a glorified linear model, and cannot learn the interactions in the data.

Label: symmetric_weights. The loss does fall (the linear part of the problem is learnt), so
not a flat loss; and the model ends well above chance, so not underfitting either.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import netdoctor

EXPECT: tuple[str, ...] = ("symmetric_weights",)


def applicants(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(n, 24, generator=g)
    logit = 1.5 * x[:, 0] - x[:, 1] + 2.0 * x[:, 2] * x[:, 3] - 1.5 * x[:, 4] * x[:, 5]
    return x, (logit > 0).long()


def train(log: Path) -> list:
    torch.manual_seed(110)
    g = torch.Generator().manual_seed(110)
    x, y = applicants(3000, g)
    xv, yv = applicants(600, g)
    model = nn.Sequential(nn.Linear(24, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(),
                          nn.Linear(128, 2))
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.constant_(m.weight, 0.05)
            nn.init.zeros_(m.bias)
    loader = DataLoader(TensorDataset(x, y), batch_size=50, shuffle=True,
                        generator=torch.Generator().manual_seed(111))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    monitor = netdoctor.watch(model, optimizer, log=log)
    for _epoch in range(8):
        model.train()
        tl, hits, n = 0.0, 0, 0
        for xb, yb in loader:
            optimizer.zero_grad()
            out = model(xb)
            loss = nn.functional.cross_entropy(out, yb)
            loss.backward()
            optimizer.step()
            monitor.step(loss)
            tl += loss.item() * len(yb)
            hits += (out.argmax(1) == yb).sum().item()
            n += len(yb)
        model.eval()
        with torch.no_grad():
            ov = model(xv)
        monitor.epoch(train_loss=tl / n, train_acc=hits / n,
                      val_loss=nn.functional.cross_entropy(ov, yv).item(),
                      val_acc=(ov.argmax(1) == yv).float().mean().item())
    return monitor.close()
