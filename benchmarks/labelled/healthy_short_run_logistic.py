"""A deliberately short run: 40 steps of a small MLP on an easy two-class problem, SGD lr 0.1.

Sometimes you only train briefly (a smoke test in CI, a sanity check). The problem is easy
(two Gaussian clouds three standard deviations apart), the loss drops from 0.69 to ~0.1 in 40
steps. One "epoch" summary at the end with a validation set.

Label: healthy. Short is not broken.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

import netdoctor

EXPECT: tuple[str, ...] = ()


def train(log: Path) -> list:
    torch.manual_seed(10)
    g = torch.Generator().manual_seed(10)
    n = 40 * 32 + 256
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, 5, generator=g) + (y.float() * 2 - 1).unsqueeze(1) * 0.75
    x_tr, y_tr, x_va, y_va = x[:1280], y[:1280], x[1280:], y[1280:]
    clf = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 2))
    sgd = torch.optim.SGD(clf.parameters(), lr=0.1)
    monitor = netdoctor.watch(clf, sgd, log=log, num_classes=2)
    losses = []
    for b in range(40):
        xb, yb = x_tr[b * 32:(b + 1) * 32], y_tr[b * 32:(b + 1) * 32]
        sgd.zero_grad()
        loss = nn.functional.cross_entropy(clf(xb), yb)
        loss.backward()
        sgd.step()
        monitor.step(loss)
        losses.append(loss.item())
    with torch.no_grad():
        out = clf(x_va)
        monitor.epoch(train_loss=sum(losses[-10:]) / 10,
                      val_loss=nn.functional.cross_entropy(out, y_va).item(),
                      val_acc=(out.argmax(1) == y_va).float().mean().item())
    return monitor.close()
