"""Energy-demand regression, SGD at a learning rate copied from a classification notebook.

What I did: 8 standardised weather/calendar features, an MLP with two ReLU hidden layers of
128, MSE on a standardised target. My classification notebook used SGD(lr=0.5, momentum=0.9)
happily, so I reused it. The loss jumped around between 1 and 6 for four epochs and the
predictions came out the same number for every day.

Why: lr=0.5 with momentum on an MSE regression overshoots: within the first few steps one update
moves the second layer's weights by about half their norm. That pushes the pre-activations of the
second hidden layer below zero for every input, so all 128 ReLUs output 0 for every sample from
then on, get no gradient and never recover; the network collapses to its output bias, a
constant. The loss keeps bouncing (the bias is still kicked around by lr 0.5) and never gets
below where it started.

Label: lr_too_high (the cause: the loss climbs and swings under huge updates), dead_relu (a whole
hidden layer died), underfitting (the model ends predicting one constant, at the chance loss of a
standardised target) and loss_not_decreasing (the loss never went below its first values).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import netdoctor

EXPECT: tuple[str, ...] = ("dead_relu", "loss_not_decreasing", "lr_too_high", "underfitting")


def demand(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(n, 8, generator=g)
    y = 2.0 * x[:, 0] - x[:, 1] * x[:, 2] + torch.relu(x[:, 3]) * 1.5 + 0.3 * torch.randn(
        n, generator=g)
    return x, ((y - y.mean()) / y.std()).unsqueeze(1)


def train(log: Path) -> list:
    torch.manual_seed(22)
    g = torch.Generator().manual_seed(22)
    x, y = demand(2048, g)
    loader = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True,
                        generator=torch.Generator().manual_seed(23))
    model = nn.Sequential(nn.Linear(8, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(),
                          nn.Linear(128, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    crit = nn.MSELoss()
    monitor = netdoctor.watch(model, opt, log=log)
    for _ in range(4):
        tot = 0.0
        for xb, yb in loader:
            opt.zero_grad()
            loss = crit(model(xb), yb)
            loss.backward()
            opt.step()
            monitor.step(loss)
            tot += loss.item()
        monitor.epoch(train_loss=tot / len(loader))
    return monitor.close()
