"""Denoising autoencoder for binary 8x8 glyph bitmaps: sigmoid output layer + BCELoss.

The textbook autoencoder: 64 -> 32 -> 12 -> 32 -> 64 with ReLU in the middle and nn.Sigmoid on
the output, trained with nn.BCELoss against the clean binary bitmaps (pixels exactly 0 or 1),
Adam 2e-3, 10 epochs, validation reconstruction loss. As it learns, the output sigmoid is pushed
toward 0 and 1 for most pixels -- that is the goal (the targets are 0 and 1), not a saturation
problem: the output layer's job is to be confident.

Label: healthy.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

import netdoctor

EXPECT: tuple[str, ...] = ()


def glyph_bank(g: torch.Generator) -> torch.Tensor:
    """Twelve random 8x8 glyphs made of 2-4 strokes."""
    bank = torch.zeros(12, 8, 8)
    for k in range(12):
        for _ in range(int(torch.randint(2, 5, (1,), generator=g))):
            pos = int(torch.randint(0, 8, (1,), generator=g))
            if torch.rand(1, generator=g) < 0.5:
                bank[k, pos, :] = 1.0
            else:
                bank[k, :, pos] = 1.0
    return bank.flatten(1)


def noisy_samples(bank: torch.Tensor, n: int, g: torch.Generator):
    clean = bank[torch.randint(0, len(bank), (n,), generator=g)]
    flips = torch.rand(n, 64, generator=g) < 0.1
    return torch.where(flips, 1 - clean, clean), clean


def train(log: Path) -> list:
    torch.manual_seed(140)
    g = torch.Generator().manual_seed(140)
    bank = glyph_bank(g)
    noisy, clean = noisy_samples(bank, 2000, g)
    noisy_val, clean_val = noisy_samples(bank, 400, g)
    model = nn.Sequential(
        nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 12), nn.ReLU(),
        nn.Linear(12, 32), nn.ReLU(), nn.Linear(32, 64), nn.Sigmoid(),
    )
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    bce = nn.BCELoss()
    monitor = netdoctor.watch(model, opt, log=log)
    for _epoch in range(10):
        model.train()
        perm = torch.randperm(len(noisy))
        total = 0.0
        for i in range(0, len(noisy), 50):
            idx = perm[i:i + 50]
            opt.zero_grad()
            loss = bce(model(noisy[idx]), clean[idx])
            loss.backward()
            opt.step()
            monitor.step(loss)
            total += loss.item() * len(idx)
        model.eval()
        with torch.no_grad():
            val = bce(model(noisy_val), clean_val).item()
        monitor.epoch(train_loss=total / len(noisy), val_loss=val)
    return monitor.close()
