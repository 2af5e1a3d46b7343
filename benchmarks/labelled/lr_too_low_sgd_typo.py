"""Land-cover classifier with SGD at lr=1e-5, where I meant lr=1e-2.

What I did: 12 standardised spectral-band features, 4 land-cover classes, MLP 12 -> 64 -> 64 -> 4
with ReLU, SGD(lr=1e-5, momentum=0.9), batch 32, 8 epochs with validation. The loss printed
1.39, 1.39, 1.39, ... and accuracy stayed at 25 %; I thought the data was broken.

Why: each update is lr * gradient ~ 1e-5 * O(1): 1e-6 to 1e-5 of the weights' size per step (a
healthy step is ~1e-3). After 600 steps the weights have moved by a percent or less of their
initial values: the model is still its random initialisation.

Label: lr_too_low (the cause), loss_not_decreasing (the loss never moves from ln 4) and
underfitting (it ends at the chance loss).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import netdoctor

EXPECT: tuple[str, ...] = ("loss_not_decreasing", "lr_too_low", "underfitting")


def land_cover(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    centres = torch.randn(4, 12, generator=torch.Generator().manual_seed(5)) * 1.2
    y = torch.randint(0, 4, (n,), generator=g)
    return centres[y] + torch.randn(n, 12, generator=g), y


def train(log: Path) -> list:
    torch.manual_seed(80)
    g = torch.Generator().manual_seed(80)
    x, y = land_cover(2400, g)
    xv, yv = land_cover(600, g)
    mu, sd = x.mean(0), x.std(0)
    x, xv = (x - mu) / sd, (xv - mu) / sd
    train_loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True,
                              generator=torch.Generator().manual_seed(81))
    model = nn.Sequential(nn.Linear(12, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                          nn.Linear(64, 4))
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-5, momentum=0.9)
    criterion = nn.CrossEntropyLoss()
    monitor = netdoctor.watch(model, optimizer, log=log)
    for _epoch in range(8):
        model.train()
        total, correct = 0.0, 0
        for xb, yb in train_loader:
            optimizer.zero_grad()
            logits = model(xb)
            loss = criterion(logits, yb)
            loss.backward()
            optimizer.step()
            monitor.step(loss)
            total += loss.item() * len(yb)
            correct += (logits.argmax(1) == yb).sum().item()
        model.eval()
        with torch.no_grad():
            lv = model(xv)
        monitor.epoch(train_loss=total / len(x), train_acc=correct / len(x),
                      val_loss=criterion(lv, yv).item(),
                      val_acc=(lv.argmax(1) == yv).float().mean().item())
    return monitor.close()
