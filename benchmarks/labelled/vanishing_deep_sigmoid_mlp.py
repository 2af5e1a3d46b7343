"""A ten-layer sigmoid MLP trained with plain SGD on a digits-like 3-class problem.

What I did: I followed an old textbook chapter: sigmoid hidden units everywhere, ten hidden
layers of 64 ("deeper is better"), PyTorch's default Linear init, SGD at 0.1, cross-entropy.
The 2-layer version of the same network reaches ~90 %; this one sat at 33 % (chance) and its
loss never moved from ln 3.

Why: the sigmoid's derivative is at most 0.25, and with default init each layer multiplies the
back-propagated gradient by roughly 0.25 * ||W|| < 1, so after ten layers the first layer's
gradient is ~1e-9 of the last layer's: the first layers do not learn at all. Worse, the forward
signal is squashed too (each sigmoid layer passes on only a small spread around 0.5), so the top
layers see nearly the same vector for every input and cannot separate the classes either.

Label: vanishing_gradients (the cause), loss_not_decreasing (the loss stays at ln 3 from the
first step) and underfitting (it ends at the chance loss, accuracy at chance): both are what the
vanishing gradient does to this run.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

import netdoctor

EXPECT: tuple[str, ...] = ("loss_not_decreasing", "underfitting", "vanishing_gradients")


def three_rings(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    y = torch.randint(0, 3, (n,), generator=g)
    radius = 0.5 + y.float() + 0.25 * torch.randn(n, generator=g)
    angle = torch.rand(n, generator=g) * 6.2832
    x = torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], 1)
    noise = torch.randn(n, 6, generator=g) * 0.5
    return torch.cat([x, noise], 1), y


def build(depth: int = 10, width: int = 64) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Linear(8, width), nn.Sigmoid()]
    for _ in range(depth - 1):
        layers += [nn.Linear(width, width), nn.Sigmoid()]
    layers.append(nn.Linear(width, 3))
    return nn.Sequential(*layers)


def train(log: Path) -> list:
    torch.manual_seed(30)
    g = torch.Generator().manual_seed(30)
    x, y = three_rings(2000, g)
    x_val, y_val = three_rings(600, g)
    mean, std = x.mean(0), x.std(0)
    x, x_val = (x - mean) / std, (x_val - mean) / std
    net = build()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    monitor = netdoctor.watch(net, opt, log=log)
    for _epoch in range(6):
        perm = torch.randperm(len(x))
        tl, ta = 0.0, 0.0
        for i in range(0, len(x), 32):
            idx = perm[i:i + 32]
            out = net(x[idx])
            loss = nn.functional.cross_entropy(out, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            monitor.step(loss)
            tl += loss.item() * len(idx)
            ta += (out.argmax(1) == y[idx]).sum().item()
        with torch.no_grad():
            out = net(x_val)
            monitor.epoch(train_loss=tl / len(x), train_acc=ta / len(x),
                          val_loss=nn.functional.cross_entropy(out, y_val).item(),
                          val_acc=(out.argmax(1) == y_val).float().mean().item())
    return monitor.close()
