"""Dose-response regression on 40 measurements with a wide MLP, trained for 300 epochs.

What I did: 40 (dose, response) points from a lab, 200 held out; an MLP 1 -> 256 -> 256 -> 1
(ReLU), Adam 3e-3, full-batch, 300 epochs, validation MSE every epoch, standardised input and
target. The training curve looked great; the fitted curve wiggles through every point.

Why: ~66k parameters for 40 noisy points: after the underlying trend is learnt (within the
first ~20 epochs), the network keeps going and fits the measurement noise: the training MSE
keeps falling, to about half the noise variance (0.07 vs ~0.12 in standardised units), while
the validation MSE rises from its minimum at epoch 21 (0.17) and ends ~16 % above it. A mild
but steady case, the kind early stopping exists for.

Label: overfitting.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

import netdoctor

EXPECT: tuple[str, ...] = ("overfitting",)


def measurements(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    dose = torch.rand(n, 1, generator=g) * 4 - 2
    response = torch.tanh(1.5 * dose) + 0.3 * torch.randn(n, 1, generator=g)
    return dose, response


def train(log: Path) -> list:
    torch.manual_seed(162)
    g = torch.Generator().manual_seed(162)
    x, y = measurements(40, g)
    xv, yv = measurements(200, g)
    xm, xs, ym, ys = x.mean(), x.std(), y.mean(), y.std()
    x, xv, y, yv = (x - xm) / xs, (xv - xm) / xs, (y - ym) / ys, (yv - ym) / ys
    model = nn.Sequential(nn.Linear(1, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                          nn.Linear(256, 1))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    monitor = netdoctor.watch(model, opt, log=log)
    for _epoch in range(300):
        model.train()
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        monitor.step(loss)
        model.eval()
        with torch.no_grad():
            val = nn.functional.mse_loss(model(xv), yv).item()
        monitor.epoch(train_loss=loss.item(), val_loss=val)
    return monitor.close()
