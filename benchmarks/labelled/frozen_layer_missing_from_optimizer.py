"""Encoder / bottleneck / head model where the optimizer was built from a hand-made list that
forgot the middle block.

What I did: I wanted a smaller learning rate for the encoder, so I built param groups by hand:
    [{"params": model.encoder.parameters(), "lr": 3e-4},
     {"params": model.head.parameters(), "lr": 1e-3}]
and forgot model.bottleneck, added later when I inserted a bottleneck block. Everything trains,
the loss goes down, accuracy is decent (~76 %).

Why: model.bottleneck's parameters have requires_grad=True and get gradients every step, but no
param group holds them, so the optimizer never updates them: they stay at their random init for
the whole run and the network has to learn around a fixed random projection.

Label: frozen_parameters. The rest of the network learns fine.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import netdoctor

EXPECT: tuple[str, ...] = ("frozen_parameters",)


class ThreePart(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(16, 96), nn.ReLU(), nn.Linear(96, 96), nn.ReLU())
        self.bottleneck = nn.Sequential(nn.Linear(96, 32), nn.ReLU())
        self.head = nn.Linear(32, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.bottleneck(self.encoder(x)))


def dataset(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(n, 16, generator=g)
    s = torch.stack([x[:, 0] + x[:, 1], x[:, 2] * x[:, 3], -x[:, 0] + x[:, 4], x[:, 5].abs()], 1)
    return x, s.argmax(1)


def train(log: Path) -> list:
    torch.manual_seed(100)
    g = torch.Generator().manual_seed(100)
    x, y = dataset(3000, g)
    xv, yv = dataset(600, g)
    loader = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True,
                        generator=torch.Generator().manual_seed(101))
    model = ThreePart()
    optimizer = torch.optim.Adam([
        {"params": model.encoder.parameters(), "lr": 3e-4},
        {"params": model.head.parameters(), "lr": 1e-3},
    ])
    criterion = nn.CrossEntropyLoss()
    monitor = netdoctor.watch(model, optimizer, log=log)
    for _epoch in range(8):
        model.train()
        tl, acc, n = 0.0, 0, 0
        for xb, yb in loader:
            optimizer.zero_grad()
            out = model(xb)
            loss = criterion(out, yb)
            loss.backward()
            optimizer.step()
            monitor.step(loss)
            tl += loss.item() * len(yb)
            acc += (out.argmax(1) == yb).sum().item()
            n += len(yb)
        model.eval()
        with torch.no_grad():
            ov = model(xv)
        monitor.epoch(train_loss=tl / n, train_acc=acc / n,
                      val_loss=criterion(ov, yv).item(),
                      val_acc=(ov.argmax(1) == yv).float().mean().item())
    return monitor.close()
