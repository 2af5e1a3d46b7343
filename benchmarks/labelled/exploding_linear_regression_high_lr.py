"""Calibrating a spectrometer: linear regression on 24 strongly correlated channels, SGD lr 0.3.

What I did: a single nn.Linear(24, 1) fitted with SGD and MSE. Each channel is standardised
(mean 0, std 1), so I assumed any learning rate below 1 is safe and picked 0.3 to converge
fast. The loss doubled step after step, reached 1e30, then inf, then nan.

Why: the channels are all correlated (~0.85 with each other), so the Hessian of the MSE has one
eigenvalue of about 2 * (1 + 23 * 0.85) ~ 41. Gradient descent on a quadratic diverges as soon
as lr * curvature > 2; here it is ~12, so along that direction every step multiplies the error by
~11: the gradient norm grows geometrically, the loss overflows float32 within a few dozen steps,
and the weights become inf/NaN.

Label: lr_too_high (the cause), exploding_gradients (the geometric growth of the gradient norm),
nan_loss (where it ends).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

import netdoctor

EXPECT: tuple[str, ...] = ("exploding_gradients", "lr_too_high", "nan_loss")


def spectra(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    common = torch.randn(n, 1, generator=g)
    x = 0.92 * common + 0.39 * torch.randn(n, 24, generator=g)  # corr ~0.85, std ~1
    w = torch.randn(24, generator=g) * 0.3
    y = x @ w + 0.1 * torch.randn(n, generator=g)
    return x, y.unsqueeze(1)


def train(log: Path) -> list:
    torch.manual_seed(24)
    g = torch.Generator().manual_seed(24)
    x, y = spectra(3200, g)
    model = nn.Linear(24, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.3)
    monitor = netdoctor.watch(model, optimizer, log=log)
    for _epoch in range(5):
        perm = torch.randperm(len(x))
        losses = []
        for i in range(0, len(x), 64):
            idx = perm[i:i + 64]
            optimizer.zero_grad()
            loss = nn.functional.mse_loss(model(x[idx]), y[idx])
            loss.backward()
            optimizer.step()
            monitor.step(loss)
            losses.append(loss.item())
        monitor.epoch(train_loss=sum(losses) / len(losses))
    return monitor.close()
