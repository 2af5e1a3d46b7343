"""Wine-quality-style regression with a tanh MLP whose weights were drawn from N(0, 1).

What I did: I wrote my own init loop, `nn.init.normal_(m.weight, mean=0.0, std=1.0)`, zero
biases, for a 11 -> 128 -> 128 -> 1 tanh network. Inputs and target standardised, SGD with
momentum at 1e-2, MSE. The first loss was ~200 on a target of variance 1; it came down to ~0.2
within two epochs and stayed there.

Why: a unit's pre-activation is a sum of fan_in products of N(0, 1) weights with unit-scale
inputs, so its std is ~sqrt(fan_in): ~3 in the first layer and ~10 in the second (fed by
+-1s). A third to a half of the first tanh layer's outputs and ~80 % of the second's sit at +-1
where the derivative is ~0, so those units pass almost no gradient and barely move, for the
whole run; Xavier init would use std ~0.1 here. The output layer, N(0, 1) over 128 inputs of
+-1, starts with outputs of std ~11: hence the first loss of ~200.

Label: poor_init (weights 10x too large for tanh, the cause) and saturated_activations (the
hidden tanh layers pinned at their bounds).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

import netdoctor

EXPECT: tuple[str, ...] = ("poor_init", "saturated_activations")


def wine(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(n, 11, generator=g)
    w = torch.linspace(-0.6, 0.9, 11)
    y = x @ w + 0.5 * torch.tanh(x[:, 0] * x[:, 1]) + 0.3 * torch.randn(n, generator=g)
    return x, ((y - y.mean()) / y.std()).unsqueeze(1)


def train(log: Path) -> list:
    torch.manual_seed(41)
    g = torch.Generator().manual_seed(41)
    x, y = wine(2500, g)
    x_tr, y_tr, x_va, y_va = x[:2000], y[:2000], x[2000:], y[2000:]
    model = nn.Sequential(nn.Linear(11, 128), nn.Tanh(), nn.Linear(128, 128), nn.Tanh(),
                          nn.Linear(128, 1))
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, mean=0.0, std=1.0)
            nn.init.zeros_(m.bias)
    opt = torch.optim.SGD(model.parameters(), lr=1e-2, momentum=0.9)
    monitor = netdoctor.watch(model, opt, log=log, chance_loss=1.0)
    for _epoch in range(10):
        model.train()
        perm = torch.randperm(len(x_tr))
        running = 0.0
        for i in range(0, len(x_tr), 40):
            idx = perm[i:i + 40]
            opt.zero_grad()
            loss = nn.functional.mse_loss(model(x_tr[idx]), y_tr[idx])
            loss.backward()
            opt.step()
            monitor.step(loss)
            running += loss.item() * len(idx)
        model.eval()
        with torch.no_grad():
            val = nn.functional.mse_loss(model(x_va), y_va).item()
        monitor.epoch(train_loss=running / len(x_tr), val_loss=val)
    return monitor.close()
