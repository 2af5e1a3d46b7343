"""Siamese network: one encoder applied to both items of a pair, trained to tell same/different.

Pairs of noisy feature vectors; label 1 when both come from the same one of 20 prototypes. The
encoder (an MLP with LayerNorm) is *shared*: it runs twice per step, once per side, and the head
scores |e1 - e2| and e1 * e2 with BCEWithLogitsLoss. AdamW 1e-3, step-based training with a
periodic validation. The loss falls from ln 2 to ~0.1.

Label: healthy. (A module called twice per step is normal here.)
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

import netdoctor

EXPECT: tuple[str, ...] = ()


class Siamese(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(16, 64), nn.LayerNorm(64), nn.ReLU(),
                                     nn.Linear(64, 32))
        self.head = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 1))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        ea, eb = self.encoder(a), self.encoder(b)
        return self.head(torch.cat([(ea - eb).abs(), ea * eb], 1)).squeeze(1)


def pairs(protos: torch.Tensor, n: int, g: torch.Generator):
    i = torch.randint(0, len(protos), (n,), generator=g)
    same = torch.rand(n, generator=g) < 0.5
    j = torch.where(same, i, torch.randint(0, len(protos), (n,), generator=g))
    a = protos[i] + 0.5 * torch.randn(n, 16, generator=g)
    b = protos[j] + 0.5 * torch.randn(n, 16, generator=g)
    return a, b, (i == j).float()


def train(log: Path) -> list:
    torch.manual_seed(141)
    g = torch.Generator().manual_seed(141)
    protos = torch.randn(20, 16, generator=g)
    va, vb, vy = pairs(protos, 500, g)
    model = Siamese()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
    loss_fn = nn.BCEWithLogitsLoss()
    monitor = netdoctor.watch(model, opt, log=log)
    for step in range(500):
        model.train()
        a, b, y = pairs(protos, 64, g)
        opt.zero_grad()
        loss = loss_fn(model(a, b), y)
        loss.backward()
        opt.step()
        monitor.step(loss)
        if (step + 1) % 100 == 0:
            model.eval()
            with torch.no_grad():
                logits = model(va, vb)
            monitor.epoch(val_loss=loss_fn(logits, vy).item(),
                          val_acc=((logits > 0).float() == vy).float().mean().item())
    return monitor.close()
