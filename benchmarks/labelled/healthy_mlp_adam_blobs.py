"""Four-class blob classification with a two-hidden-layer MLP, Adam and a DataLoader.

Nothing clever: standardised 2-d features, default PyTorch init, Adam at 1e-3, a validation
split, 15 epochs. Train and validation accuracy both climb to ~95 % and stay together.

Label: healthy, the doctor should stay quiet.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import netdoctor

EXPECT: tuple[str, ...] = ()


def make_blobs(n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    centers = torch.tensor([[-2.0, -2.0], [2.0, -2.0], [-2.0, 2.0], [2.0, 2.0]])
    y = torch.randint(0, 4, (n,), generator=gen)
    x = centers[y] + torch.randn(n, 2, generator=gen) * 1.0
    return x, y


def train(log: Path) -> list:
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    x_train, y_train = make_blobs(1200, gen)
    x_val, y_val = make_blobs(400, gen)
    mean, std = x_train.mean(0), x_train.std(0)
    x_train, x_val = (x_train - mean) / std, (x_val - mean) / std

    train_loader = DataLoader(TensorDataset(x_train, y_train), batch_size=32, shuffle=True,
                              generator=torch.Generator().manual_seed(1))
    model = nn.Sequential(
        nn.Linear(2, 64), nn.ReLU(),
        nn.Linear(64, 64), nn.ReLU(),
        nn.Linear(64, 4),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    criterion = nn.CrossEntropyLoss()

    monitor = netdoctor.watch(model, optimizer, log=log)
    for _epoch in range(15):
        model.train()
        total, correct, seen = 0.0, 0, 0
        for xb, yb in train_loader:
            optimizer.zero_grad()
            logits = model(xb)
            loss = criterion(logits, yb)
            loss.backward()
            optimizer.step()
            monitor.step(loss)
            total += loss.item() * len(yb)
            correct += (logits.argmax(1) == yb).sum().item()
            seen += len(yb)
        model.eval()
        with torch.no_grad():
            val_logits = model(x_val)
            val_loss = criterion(val_logits, y_val).item()
            val_acc = (val_logits.argmax(1) == y_val).float().mean().item()
        monitor.epoch(train_loss=total / seen, val_loss=val_loss, train_acc=correct / seen,
                      val_acc=val_acc)
    return monitor.close()
