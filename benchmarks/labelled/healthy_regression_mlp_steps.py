"""Step-based regression: an MLP fits y = sin(2 x0) * x1 + 0.5 x2^2 + noise, no epochs at all.

Data drawn fresh every step from a fixed generator (an "infinite" dataset), standardised inputs,
targets left as they are (std ~0.8). SiLU MLP, Adam 2e-3 with ExponentialLR(gamma=0.998) stepped
every step, MSE. monitor.epoch() is never called -- many people only log the loss.

Label: healthy.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

import netdoctor

EXPECT: tuple[str, ...] = ()


def draw(batch_size: int, rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(batch_size, 3, generator=rng)
    y = torch.sin(2 * x[:, 0]) * x[:, 1] + 0.5 * x[:, 2] ** 2
    return x, (y + 0.05 * torch.randn(batch_size, generator=rng)).unsqueeze(1)


def train(log: Path) -> list:
    torch.manual_seed(9)
    rng = torch.Generator().manual_seed(9)
    net = nn.Sequential(nn.Linear(3, 96), nn.SiLU(), nn.Linear(96, 96), nn.SiLU(),
                        nn.Linear(96, 1))
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    decay = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.998)
    monitor = netdoctor.watch(net, opt, log=log)
    for _ in range(600):
        x, y = draw(128, rng)
        pred = net(x)
        loss = nn.functional.mse_loss(pred, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        decay.step()
        monitor.step(loss)
    return monitor.close()
