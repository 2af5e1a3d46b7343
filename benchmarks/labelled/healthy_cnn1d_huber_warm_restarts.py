"""1-d CNN regressing a signal's dominant frequency, Huber loss, SGD + Nesterov, warm restarts.

Signals of 128 samples (a sine of random frequency and phase plus noise and a random offset),
target: the frequency (standardised). Conv1d -> BatchNorm1d -> ReLU blocks, global average
pooling, linear head. SmoothL1Loss, SGD(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-4),
CosineAnnealingWarmRestarts(T_0=40 steps): the learning rate jumps back up every 40 steps, which
gives small bumps in the loss right after each restart. Validation every epoch: it wobbles
between ~0.008 and ~0.02 (tiny, on a standardised target) as the restarts come and go.

Label: healthy. (Restart bumps are the schedule doing its job.)
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

import netdoctor

EXPECT: tuple[str, ...] = ()


def signals(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    freq = 2 + 6 * torch.rand(n, generator=g)
    phase = 2 * math.pi * torch.rand(n, 1, generator=g)
    t = torch.linspace(0, 1, 128)
    x = torch.sin(2 * math.pi * freq[:, None] * t[None] + phase)
    x = x + 0.3 * torch.randn(n, 128, generator=g) + 0.5 * torch.randn(n, 1, generator=g)
    return x.unsqueeze(1), (freq - 5) / 1.7


def block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv1d(c_in, c_out, 7, padding=3), nn.BatchNorm1d(c_out), nn.ReLU(),
                         nn.MaxPool1d(2))


def train(log: Path) -> list:
    torch.manual_seed(163)
    g = torch.Generator().manual_seed(163)
    x, y = signals(1200, g)
    xv, yv = signals(300, g)
    model = nn.Sequential(block(1, 16), block(16, 32), block(32, 32),
                          nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(32, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True,
                          weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=40)
    huber = nn.SmoothL1Loss()
    monitor = netdoctor.watch(model, opt, log=log)
    for _epoch in range(6):
        model.train()
        perm = torch.randperm(len(x))
        tl = 0.0
        for i in range(0, len(x), 40):
            idx = perm[i:i + 40]
            opt.zero_grad()
            loss = huber(model(x[idx]).squeeze(1), y[idx])
            loss.backward()
            opt.step()
            sched.step()
            monitor.step(loss)
            tl += loss.item() * len(idx)
        model.eval()
        with torch.no_grad():
            val = huber(model(xv).squeeze(1), yv).item()
        monitor.epoch(train_loss=tl / len(x), val_loss=val)
    return monitor.close()
