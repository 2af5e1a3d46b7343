"""GRU regressing the mean of a sequence's first channel, AdamW with a cosine schedule.

The classic "adding problem"-style regression on 15-step sequences: the target is the mean of
channel 0 over the marked positions (channel 1 marks two positions). Standardised targets, MSE,
AdamW(lr=5e-3, weight_decay=1e-2), CosineAnnealingLR over the whole run, a DataLoader and
per-epoch validation.

Label: healthy.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import netdoctor

EXPECT: tuple[str, ...] = ()


def adding_problem(n: int, length: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    values = torch.rand(n, length, generator=gen)
    marks = torch.zeros(n, length)
    first = torch.randint(0, length // 2, (n,), generator=gen)
    second = torch.randint(length // 2, length, (n,), generator=gen)
    marks[torch.arange(n), first] = 1.0
    marks[torch.arange(n), second] = 1.0
    target = (values * marks).sum(1) / 2
    return torch.stack([values, marks], dim=-1), target


class Regressor(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.gru = nn.GRU(2, 48, batch_first=True)
        self.out = nn.Linear(48, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq, _ = self.gru(x)
        return self.out(seq[:, -1]).squeeze(-1)


def train(log: Path) -> list:
    torch.manual_seed(4)
    gen = torch.Generator().manual_seed(4)
    x_tr, y_tr = adding_problem(2000, 15, gen)
    x_va, y_va = adding_problem(400, 15, gen)
    mu, sd = y_tr.mean(), y_tr.std()
    y_tr, y_va = (y_tr - mu) / sd, (y_va - mu) / sd
    dl = DataLoader(TensorDataset(x_tr, y_tr), batch_size=64, shuffle=True,
                    generator=torch.Generator().manual_seed(5))
    net = Regressor()
    epochs = 8
    optim = torch.optim.AdamW(net.parameters(), lr=5e-3, weight_decay=1e-2)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(optim, T_max=epochs * len(dl))
    mse = nn.MSELoss()
    mon = netdoctor.watch(net, optim, log=log, chance_loss=1.0)
    for _ep in range(epochs):
        net.train()
        losses = []
        for xb, yb in dl:
            optim.zero_grad()
            loss = mse(net(xb), yb)
            loss.backward()
            optim.step()
            sched.step()
            mon.step(loss)
            losses.append(loss.item())
        net.eval()
        with torch.no_grad():
            val = mse(net(x_va), y_va).item()
        mon.epoch(train_loss=sum(losses) / len(losses), val_loss=val)
    return mon.close()
