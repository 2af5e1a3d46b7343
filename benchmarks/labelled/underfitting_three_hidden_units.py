"""Five-arm spiral classification with a one-hidden-layer MLP of 3 units.

What I did: I sized the network by the input ("2 features, so a few hidden units will do"):
Linear(2, 3) -> ReLU -> Linear(3, 5), Adam at 1e-2 (fast), 12 epochs. The loss crept from 1.6
to 1.28, accuracy ~40 % (chance is 20 %), train and validation alike. A 2 x 128 MLP (Adam 3e-3)
reaches 99 % on the same data in 10 epochs.

Why: five interleaved spiral arms need a boundary with many pieces; three ReLU units give at most
a handful of linear regions. The optimiser is doing its job -- the model simply cannot represent
the function, so the train loss stays close to ln 5 and the validation loss stays with it.

Label: underfitting (the train loss ends at 80 % of ln 5, barely creeping down). The loss does
fall (about 20 % below where it started) so it is not flat, and there is no optimisation fault.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import netdoctor

EXPECT: tuple[str, ...] = ("underfitting",)


def spiral_arms(n: int, g: torch.Generator, arms: int = 5):
    y = torch.randint(0, arms, (n,), generator=g)
    t = torch.rand(n, generator=g) * 2.5 + 0.3
    a = t * 2.2 + y.float() * 2 * math.pi / arms
    x = torch.stack([t * torch.cos(a), t * torch.sin(a)], 1)
    return x + 0.08 * torch.randn(n, 2, generator=g), y


def train(log: Path) -> list:
    torch.manual_seed(60)
    g = torch.Generator().manual_seed(60)
    x, y = spiral_arms(3000, g)
    xv, yv = spiral_arms(600, g)
    dl = DataLoader(TensorDataset(x, y), batch_size=50, shuffle=True,
                    generator=torch.Generator().manual_seed(61))
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 5))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    monitor = netdoctor.watch(model, optimizer, log=log)
    for _epoch in range(12):
        seen, tl, right = 0, 0.0, 0
        for xb, yb in dl:
            out = model(xb)
            loss = nn.functional.cross_entropy(out, yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            monitor.step(loss)
            seen += len(yb)
            tl += loss.item() * len(yb)
            right += (out.argmax(1) == yb).sum().item()
        with torch.no_grad():
            ov = model(xv)
        monitor.epoch(train_loss=tl / seen, train_acc=right / seen,
                      val_loss=nn.functional.cross_entropy(ov, yv).item(),
                      val_acc=(ov.argmax(1) == yv).float().mean().item())
    return monitor.close()
