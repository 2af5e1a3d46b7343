"""Gradient accumulation: 4 micro-batches of 16 per optimizer step, SGD with momentum.

The pattern from memory-constrained training: the loss of each micro-batch is divided by the
accumulation count, backward() every micro-batch, optimizer.step() and zero_grad() every 4th.
monitor.step(loss) is called on every micro-batch (netdoctor averages them per optimizer step).
Model: a 3-layer MLP on a 10-feature synthetic classification problem (3 classes, the class a
nonlinear function of the features). Epochs with validation; a linear LR warm-up for 20 steps.

Label: healthy.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import netdoctor

EXPECT: tuple[str, ...] = ()
ACCUM = 4


def make_data(n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(n, 10, generator=gen)
    score = torch.stack([x[:, 0] * x[:, 1], x[:, 2] ** 2 - 1, torch.sin(2 * x[:, 3])], 1)
    return x, score.argmax(1)


def train(log: Path) -> list:
    torch.manual_seed(7)
    gen = torch.Generator().manual_seed(7)
    x_train, y_train = make_data(3000, gen)
    x_val, y_val = make_data(600, gen)
    loader = DataLoader(TensorDataset(x_train, y_train), batch_size=16, shuffle=True,
                        drop_last=True, generator=torch.Generator().manual_seed(8))
    model = nn.Sequential(nn.Linear(10, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(),
                          nn.Linear(128, 3))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    warmup = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.1, total_iters=20)
    criterion = nn.CrossEntropyLoss()
    monitor = netdoctor.watch(model, optimizer, log=log)
    for _epoch in range(6):
        model.train()
        optimizer.zero_grad()
        epoch_loss, batches = 0.0, 0
        for i, (xb, yb) in enumerate(loader):
            loss = criterion(model(xb), yb)
            (loss / ACCUM).backward()
            if (i + 1) % ACCUM == 0:
                optimizer.step()
                warmup.step()
                optimizer.zero_grad()
            monitor.step(loss)
            epoch_loss += loss.item()
            batches += 1
        model.eval()
        with torch.no_grad():
            out = model(x_val)
            monitor.epoch(train_loss=epoch_loss / batches,
                          val_loss=criterion(out, y_val).item(),
                          val_acc=(out.argmax(1) == y_val).float().mean().item())
    return monitor.close()
