"""Metric learning with a hand-written Euclidean distance: sqrt of a sum of squares that can be 0.

What I did: a contrastive loss for an embedding network,
    d = torch.sqrt(((e1 - e2) ** 2).sum(1))
    loss = (y * d**2 + (1 - y) * torch.clamp(margin - d, min=0) ** 2).mean()
with positive pairs sometimes being the *same* sample twice (I sample pairs with replacement).
The loss itself was finite at every step -- and yet after the first step with such a pair all
the weights were NaN and every later loss was NaN.

Why: for an identical pair, e1 - e2 is exactly 0 and d = sqrt(0) = 0 -- fine in the forward
pass, but d sqrt(x)/dx = 1 / (2 sqrt(x)) = inf at 0, and inf * 0 = NaN in the backward pass. The
NaN gradient goes into Adam, the weights become NaN, and the next forward pass (and loss) is
NaN. (torch.cdist / F.pairwise_distance with an eps, or working with d**2 directly, avoid it.)

Label: nan_loss (the gradient is NaN at step 16, the loss from step 17 on). Until then the run
was learning normally. One more true but harmless fact: the embedding's last bias cancels out
of e1 - e2, so its gradient is exactly 0 on every step and it never changes. That is not a
problem to fix (the bias has no effect on the loss at all), so not frozen_parameters.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

import netdoctor

EXPECT: tuple[str, ...] = ("nan_loss",)


def train(log: Path) -> list:
    torch.manual_seed(150)
    g = torch.Generator().manual_seed(150)
    protos = torch.randn(10, 20, generator=g)
    labels = torch.randint(0, 10, (800,), generator=g)
    data = protos[labels] + 0.6 * torch.randn(800, 20, generator=g)
    embed = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 16))
    opt = torch.optim.Adam(embed.parameters(), lr=1e-3)
    margin = 2.0
    monitor = netdoctor.watch(embed, opt, log=log)
    for _step in range(300):
        i = torch.randint(0, len(data), (32,), generator=g)
        j = torch.randint(0, len(data), (32,), generator=g)
        same_class = (labels[i] == labels[j]).float()
        e1, e2 = embed(data[i]), embed(data[j])
        d = torch.sqrt(((e1 - e2) ** 2).sum(1))
        pull = same_class * d ** 2
        push = (1 - same_class) * torch.clamp(margin - d, min=0) ** 2
        loss = (pull + push).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        monitor.step(loss)
    return monitor.close()
