"""Sparse-feature experiment: a ReLU MLP whose first layer's biases were initialised to -2.

What I did: I wanted a sparse first-layer code, and read that a negative bias makes ReLU units
fire less often, so after building the model I ran `nn.init.constant_(model[0].bias, -2.0)`.
Inputs are standardised, weights keep PyTorch's default init. Adam at 1e-3. The loss sat at ln 2
for the first couple of epochs, then trained, but ended far worse than the plain version (80 %
instead of 98 %), and almost every first-layer unit is exactly zero.

Why: with default init a first-layer pre-activation has a std of ~0.55 around its bias, so with
a bias of -2 only inputs more than ~3.5 std out switch a unit on: at the start every unit is 0
for every sample of a batch, and 87 % still are at the end. A unit that never fires gets no
gradient, and Adam never moves its bias back (no gradient, no update); the few units that
occasionally fire slowly recover and carry the whole model.

Label: dead_relu. The live units are enough for the loss to fall well below chance (0.40 vs
0.69), so no underfitting and no flat loss.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

import netdoctor

EXPECT: tuple[str, ...] = ("dead_relu",)


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
    nn.init.constant_(model[0].bias, -2.0)
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
