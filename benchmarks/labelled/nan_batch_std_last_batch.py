"""House-price regression where each batch is standardised by its own mean and std.

What I did: instead of computing dataset statistics I standardised every batch on the fly,
    xb = (xb - xb.mean(0)) / xb.std(0)
which worked in my notebook. The data set has 1,025 rows and I used batches of 64 without
drop_last. Somewhere in the first epoch's end the loss became nan and stayed nan.

Why: the last batch of each epoch has a single row. torch.std with the default unbiased
estimator divides by n - 1 = 0, so the std is NaN, the whole batch becomes NaN, the loss is NaN,
SGD writes NaN into every weight, and every later step is NaN too. The bug is a division by a batch
statistic.

Label: nan_loss. Until then the run was a normal, healthy regression.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

import netdoctor

EXPECT: tuple[str, ...] = ("nan_loss",)


def houses(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    sqft = 800 + 2200 * torch.rand(n, generator=g)
    rooms = torch.randint(1, 6, (n,), generator=g).float()
    age = 60 * torch.rand(n, generator=g)
    dist = 30 * torch.rand(n, generator=g)
    price = 0.15 * sqft + 12 * rooms - 0.8 * age - 2.5 * dist + 10 * torch.randn(n, generator=g)
    x = torch.stack([sqft, rooms, age, dist], 1)
    return x, (price - price.mean()) / price.std()


def train(log: Path) -> list:
    torch.manual_seed(21)
    g = torch.Generator().manual_seed(21)
    X, y = houses(1025, g)
    model = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(),
                          nn.Linear(32, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.MSELoss()
    batch_size = 64
    monitor = netdoctor.watch(model, optimizer, log=log)
    for _epoch in range(10):
        order = torch.randperm(len(X))
        running = []
        for start in range(0, len(X), batch_size):
            idx = order[start:start + batch_size]
            xb, yb = X[idx], y[idx]
            xb = (xb - xb.mean(0)) / xb.std(0)
            optimizer.zero_grad()
            loss = loss_fn(model(xb).squeeze(-1), yb)
            loss.backward()
            optimizer.step()
            monitor.step(loss)
            running.append(loss.item())
        monitor.epoch(train_loss=sum(running) / len(running))
    return monitor.close()
