"""CNN with GroupNorm and GELU, AdamW and OneCycleLR, on synthetic two-channel "texture" images.

Four texture classes (stripes at 0/45/90/135 degrees with random phase and frequency, plus noise),
2x20x20 images, standardised per channel. Three conv blocks (Conv -> GroupNorm -> GELU), global
average pooling, dropout, a linear head. AdamW(lr from OneCycleLR, max 3e-3, weight_decay 0.05).
model.train() / model.eval() every epoch.

Label: healthy.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import netdoctor

EXPECT: tuple[str, ...] = ()


def textures(n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    cls = torch.randint(0, 4, (n,), generator=gen)
    theta = cls.float() * math.pi / 4
    freq = 0.6 + 0.6 * torch.rand(n, generator=gen)
    phase = 2 * math.pi * torch.rand(n, generator=gen)
    coords = torch.arange(20).float()
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    proj = (xx[None] * torch.cos(theta)[:, None, None] + yy[None] * torch.sin(theta)[:, None, None])
    wave = torch.sin(freq[:, None, None] * proj + phase[:, None, None])
    img = torch.stack([wave, wave.abs()], 1) + 0.8 * torch.randn(n, 2, 20, 20, generator=gen)
    return img, cls


def block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.GroupNorm(4, c_out), nn.GELU())


def train(log: Path) -> list:
    torch.manual_seed(11)
    gen = torch.Generator().manual_seed(11)
    x, y = textures(1000, gen)
    mean = x[:800].mean(dim=(0, 2, 3), keepdim=True)
    std = x[:800].std(dim=(0, 2, 3), keepdim=True)
    x = (x - mean) / std
    train_dl = DataLoader(TensorDataset(x[:800], y[:800]), batch_size=40, shuffle=True,
                          generator=torch.Generator().manual_seed(12))
    model = nn.Sequential(
        block(2, 16), nn.MaxPool2d(2), block(16, 24), nn.MaxPool2d(2), block(24, 32),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(32, 4),
    )
    epochs = 6
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, epochs=epochs,
                                                steps_per_epoch=len(train_dl))
    ce = nn.CrossEntropyLoss()
    monitor = netdoctor.watch(model, opt, log=log)
    for _ in range(epochs):
        model.train()
        tl, ta, n = 0.0, 0, 0
        for xb, yb in train_dl:
            opt.zero_grad()
            logits = model(xb)
            loss = ce(logits, yb)
            loss.backward()
            opt.step()
            sched.step()
            monitor.step(loss)
            tl += loss.item() * len(yb)
            ta += (logits.argmax(1) == yb).sum().item()
            n += len(yb)
        model.eval()
        with torch.no_grad():
            logits = model(x[800:])
            monitor.epoch(train_loss=tl / n, train_acc=ta / n,
                          val_loss=ce(logits, y[800:]).item(),
                          val_acc=(logits.argmax(1) == y[800:]).float().mean().item())
    return monitor.close()
