"""Six-layer ReLU regressor initialised with N(0, 1) weights ("standard normal, like the textbook").

What I did: for every Linear, `nn.init.normal_(m.weight)` (mean 0, std 1) and zero biases, in a
6-hidden-layer, 64-wide ReLU MLP predicting a standardised target from 8 standardised features.
Adam at 1e-3, MSE, batch 64, 8 epochs with validation. The first loss printed was ~2e10; it came
down over the epochs, to ~1e8 at the end -- on a target of variance 1.

Why: with std 1 and fan_in 64, each ReLU layer multiplies the activations' scale by
sqrt(64 / 2) ~ 5.7 (measured: x5.3), so after six layers the pre-activations have a std of ~1e4
and the first predictions are in the tens of thousands: the first MSE is ~2e10. The gradients
are as huge (~1e10) but Adam's steps are bounded (~1e-3 per weight, on weights of size ~1), so
it takes far more than 8 epochs to shrink the weights back to a sensible scale.

Label: poor_init (the weights are ~6x the He scale, the activations grow geometrically with
depth, the first loss is ~2e10 for a target of variance 1) and underfitting (the train loss
ends ~1e8 times the target's variance: the model has not fitted the data at all). The loss does
fall by two orders of magnitude, so not loss_not_decreasing; the gradients are huge from the
first step but shrink, they never grow, so not exploding_gradients.
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import netdoctor

EXPECT: tuple[str, ...] = ("poor_init", "underfitting")


def sample(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(n, 8, generator=g)
    y = torch.sin(x[:, 0]) + 0.5 * x[:, 1] * x[:, 2] + 0.3 * x[:, 3] + 0.1 * torch.randn(
        n, generator=g)
    return x, ((y - y.mean()) / y.std()).unsqueeze(1)


def train(log: Path) -> list:
    torch.manual_seed(122)
    g = torch.Generator().manual_seed(122)
    x, y = sample(2400, g)
    xv, yv = sample(600, g)
    dims = [8, 64, 64, 64, 64, 64, 64]
    layers: list[nn.Module] = []
    for a, b in pairwise(dims):
        layers += [nn.Linear(a, b), nn.ReLU()]
    layers.append(nn.Linear(64, 1))
    net = nn.Sequential(*layers)
    for m in net.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight)
            nn.init.zeros_(m.bias)
    loader = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True,
                        generator=torch.Generator().manual_seed(123))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    monitor = netdoctor.watch(net, opt, log=log)
    for _epoch in range(8):
        net.train()
        losses = []
        for xb, yb in loader:
            opt.zero_grad()
            loss = nn.functional.mse_loss(net(xb), yb)
            loss.backward()
            opt.step()
            monitor.step(loss)
            losses.append(loss.item())
        net.eval()
        with torch.no_grad():
            val = nn.functional.mse_loss(net(xv), yv).item()
        monitor.epoch(train_loss=sum(losses) / len(losses), val_loss=val)
    return monitor.close()
