"""House-price regression fed raw features: square feet (~2,000), year built (~1,990), lot size.

What I did: I standardised the *target* (log price) but fed the features as they come from the
CSV: living area in sq ft, lot area in sq ft, year built, bedrooms, bathrooms, garage cars. A
ReLU MLP (6 -> 64 -> 64 -> 1), Adam 1e-3, MSE, batch 32, 10 epochs with validation. The first
loss was ~1e5 on a standardised target; after 10 epochs it is ~3, still worse than predicting
the mean price (which scores 1). With standardised features the same loop ends at 0.09.

Why: the first layer's pre-activations are proportional to the inputs, dominated by the three
features in the thousands (year built ~2,000 for *every* house; RMS of the input ~4,000): the
first outputs are in the hundreds (hence the first loss), the gradients are ~1e5, and Adam's
steps of ~1e-3 per weight need many epochs to undo weights that multiply thousands. The small
but informative features (bedrooms, bathrooms) are drowned next to them. Nothing blows up --
the fit is just very poor for a long time.

Label: unnormalized_inputs (the cause) and underfitting (the train loss ends ~3x the target's
variance: worse than a constant prediction). It is still falling (so not loss_not_decreasing);
the gradients are huge but shrinking (so not exploding_gradients).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import netdoctor

EXPECT: tuple[str, ...] = ("underfitting", "unnormalized_inputs")


def listings(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    living = 800 + 2400 * torch.rand(n, generator=g)
    lot = 3000 + 12000 * torch.rand(n, generator=g)
    year = 1920 + 100 * torch.rand(n, generator=g)
    bedrooms = torch.randint(1, 6, (n,), generator=g).float()
    baths = torch.randint(1, 4, (n,), generator=g).float()
    garage = torch.randint(0, 4, (n,), generator=g).float()
    log_price = (11 + 0.0004 * living + 0.00002 * lot + 0.004 * (year - 1970)
                 + 0.05 * baths - 0.02 * (bedrooms - 3) ** 2 + 0.06 * garage
                 + 0.1 * torch.randn(n, generator=g))
    x = torch.stack([living, lot, year, bedrooms, baths, garage], 1)
    return x, log_price


def train(log: Path) -> list:
    torch.manual_seed(130)
    g = torch.Generator().manual_seed(130)
    x, y = listings(2000, g)
    xv, yv = listings(500, g)
    mu, sd = y.mean(), y.std()
    y, yv = ((y - mu) / sd).unsqueeze(1), ((yv - mu) / sd).unsqueeze(1)
    loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True,
                        generator=torch.Generator().manual_seed(131))
    model = nn.Sequential(nn.Linear(6, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                          nn.Linear(64, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    monitor = netdoctor.watch(model, optimizer, log=log)
    for _epoch in range(10):
        model.train()
        batch_losses = []
        for xb, yb in loader:
            optimizer.zero_grad()
            loss = nn.functional.mse_loss(model(xb), yb)
            loss.backward()
            optimizer.step()
            monitor.step(loss)
            batch_losses.append(loss.item())
        model.eval()
        with torch.no_grad():
            val_loss = nn.functional.mse_loss(model(xv), yv).item()
        monitor.epoch(train_loss=sum(batch_losses) / len(batch_losses), val_loss=val_loss)
    return monitor.close()
