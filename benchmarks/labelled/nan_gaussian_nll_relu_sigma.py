"""Heteroscedastic regression: the network predicts a mean and a std, with sigma = ReLU(.).

What I did: to get uncertainty estimates I had the MLP output two numbers, mu and sigma, with
sigma = torch.relu(raw) "because a std must be non-negative", and minimised the Gaussian
negative log-likelihood by hand:
    loss = (torch.log(sigma) + (y - mu) ** 2 / (2 * sigma ** 2)).mean()
Adam 1e-3, batch 64, step-based. The loss printed inf, then nan, in the first epoch.

Why: ReLU outputs exactly 0 for any negative pre-activation -- at initialisation about half the
samples get sigma = 0. log(0) = -inf and (y - mu)^2 / 0 = +inf: the loss is inf/NaN from the very
first step (softplus + an epsilon, or predicting log-sigma, is the usual fix). The NaN gradient
then poisons every weight.

Label: nan_loss.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

import netdoctor

EXPECT: tuple[str, ...] = ("nan_loss",)


def train(log: Path) -> list:
    torch.manual_seed(160)
    g = torch.Generator().manual_seed(160)
    net = nn.Sequential(nn.Linear(4, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                        nn.Linear(64, 2))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    monitor = netdoctor.watch(net, opt, log=log)
    for _ in range(150):
        x = torch.randn(64, 4, generator=g)
        noise = 0.1 + 0.5 * x[:, 1].abs()
        y = x[:, 0] * 2 + noise * torch.randn(64, generator=g)
        out = net(x)
        mu, sigma = out[:, 0], torch.relu(out[:, 1])
        loss = (torch.log(sigma) + (y - mu) ** 2 / (2 * sigma ** 2)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        monitor.step(loss)
    return monitor.close()
