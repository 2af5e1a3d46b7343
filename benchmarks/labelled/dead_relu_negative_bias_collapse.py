"""Sparse-code autoencoder idea gone wrong: every hidden bias of a ReLU MLP initialised to -1.5.

What I did: I wanted sparse hidden activations in both hidden layers, so after building the
model I ran `nn.init.constant_(m.bias, -1.5)` on every hidden Linear. Standardised inputs,
default weight init, Adam at 1e-3. The loss printed 0.693 for every epoch and accuracy 50 %.

Why: a first-layer pre-activation has std ~0.55 around its bias of -1.5, so ~90 % of the first
layer's units are 0 for every sample and the rest fire weakly; the second layer's input is
then almost zero, its pre-activations sit at -1.5 and all 256 of its units are 0 for every
sample. Nothing flows forward (the output is the same for every input) and nothing flows back
(a ReLU at 0 passes no gradient), so no hidden weight ever gets a gradient.

Label: dead_relu (the cause), loss_not_decreasing and underfitting (the loss stays at ln 2 from
the first step to the last). Not vanishing_gradients and not frozen_parameters, although the
hidden layers' gradients are exactly zero and their weights never change: that is how dead
units look from below, and a doctor who calls it vanishing (pointing at depth/sigmoids) or
frozen (pointing at requires_grad or the optimizer) sends the user to the wrong place.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

import netdoctor

EXPECT: tuple[str, ...] = ("dead_relu", "loss_not_decreasing", "underfitting")


def moons(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    t = torch.rand(n, generator=g) * 3.1416
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.where(y[:, None] == 0,
                    torch.stack([torch.cos(t), torch.sin(t)], 1),
                    torch.stack([1 - torch.cos(t), 0.5 - torch.sin(t)], 1))
    x = x + 0.15 * torch.randn(n, 2, generator=g)
    extra = torch.randn(n, 4, generator=g)
    return torch.cat([x, extra], 1), y


def train(log: Path) -> list:
    torch.manual_seed(32)
    g = torch.Generator().manual_seed(32)
    x, y = moons(2000, g)
    xv, yv = moons(500, g)
    mu, sd = x.mean(0), x.std(0)
    x, xv = (x - mu) / sd, (xv - mu) / sd
    model = nn.Sequential(nn.Linear(6, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                          nn.Linear(256, 2))
    for m in list(model)[:-1]:
        if isinstance(m, nn.Linear):
            nn.init.constant_(m.bias, -1.5)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    monitor = netdoctor.watch(model, opt, log=log)
    for _epoch in range(8):
        perm = torch.randperm(len(x))
        tl, correct = 0.0, 0
        for i in range(0, len(x), 50):
            idx = perm[i:i + 50]
            out = model(x[idx])
            loss = nn.functional.cross_entropy(out, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            monitor.step(loss)
            tl += loss.item() * len(idx)
            correct += (out.argmax(1) == y[idx]).sum().item()
        with torch.no_grad():
            ov = model(xv)
        monitor.epoch(train_loss=tl / len(x), train_acc=correct / len(x),
                      val_loss=nn.functional.cross_entropy(ov, yv).item(),
                      val_acc=(ov.argmax(1) == yv).float().mean().item())
    return monitor.close()
