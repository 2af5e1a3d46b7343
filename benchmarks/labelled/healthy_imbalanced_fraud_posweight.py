"""Imbalanced binary classification (5 % positives) with BCEWithLogitsLoss(pos_weight=...).

A fraud-detection style problem: 5 % positives, 30 standardised features, an MLP with a single
logit, BCEWithLogitsLoss with pos_weight = negatives / positives (the usual remedy), Adam 1e-3,
8 epochs, batch 128, validation loss and accuracy each epoch. With pos_weight the loss does not
start at ln 2 and its scale is not the plain BCE's; it falls steadily.

Label: healthy.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import netdoctor

EXPECT: tuple[str, ...] = ()


def transactions(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    y = (torch.rand(n, generator=g) < 0.05).float()
    x = torch.randn(n, 30, generator=g)
    x[:, :4] += y[:, None] * torch.tensor([1.5, -1.2, 1.0, 0.8])
    x[:, 4] += y * x[:, 5] * 1.5
    return x, y


def train(log: Path) -> list:
    torch.manual_seed(144)
    g = torch.Generator().manual_seed(144)
    x, y = transactions(6000, g)
    xv, yv = transactions(1500, g)
    pos_weight = (1 - y).sum() / y.sum()
    loader = DataLoader(TensorDataset(x, y), batch_size=128, shuffle=True,
                        generator=torch.Generator().manual_seed(145))
    model = nn.Sequential(nn.Linear(30, 64), nn.ReLU(), nn.Dropout(0.1), nn.Linear(64, 32),
                          nn.ReLU(), nn.Linear(32, 1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    monitor = netdoctor.watch(model, opt, log=log)
    for _epoch in range(8):
        model.train()
        total, n = 0.0, 0
        for xb, yb in loader:
            opt.zero_grad()
            loss = loss_fn(model(xb).squeeze(1), yb)
            loss.backward()
            opt.step()
            monitor.step(loss)
            total += loss.item() * len(yb)
            n += len(yb)
        model.eval()
        with torch.no_grad():
            logits = model(xv).squeeze(1)
        monitor.epoch(train_loss=total / n, val_loss=loss_fn(logits, yv).item(),
                      val_acc=((logits > 0).float() == yv).float().mean().item())
    return monitor.close()
