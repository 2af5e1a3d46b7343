"""Clinical pilot study: 80 patients, 30 features, and a 3-layer MLP with 256 units per layer.

What I did: I had 80 labelled patients (and 200 held out for validation), a binary outcome, and
trained a wide MLP with Adam (1e-3), no dropout, no weight decay, for 60 epochs in batches of 16
because "the loss was still going down". Train accuracy reached 100 %; validation got worse
and worse after the first few epochs.

Why: ~140k parameters for 80 samples whose labels are noisy (the outcome depends on three
features plus a lot of chance): the network memorises the training set, including the noise,
so the training loss goes to ~0 while the validation loss climbs steadily.

Label: overfitting.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

import netdoctor

EXPECT: tuple[str, ...] = ("overfitting",)


def patients(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(n, 30, generator=g)
    logit = 1.2 * x[:, 0] - 0.8 * x[:, 1] + 0.6 * x[:, 2]
    y = (torch.rand(n, generator=g) < torch.sigmoid(logit)).long()
    return x, y


def train(log: Path) -> list:
    torch.manual_seed(50)
    g = torch.Generator().manual_seed(50)
    x_tr, y_tr = patients(80, g)
    x_va, y_va = patients(200, g)
    model = nn.Sequential(nn.Linear(30, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                          nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    ce = nn.CrossEntropyLoss()
    monitor = netdoctor.watch(model, opt, log=log)
    for _epoch in range(60):
        model.train()
        perm = torch.randperm(len(x_tr))
        tl, hit = 0.0, 0
        for i in range(0, len(x_tr), 16):
            idx = perm[i:i + 16]
            out = model(x_tr[idx])
            loss = ce(out, y_tr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            monitor.step(loss)
            tl += loss.item() * len(idx)
            hit += (out.argmax(1) == y_tr[idx]).sum().item()
        model.eval()
        with torch.no_grad():
            ov = model(x_va)
        monitor.epoch(train_loss=tl / len(x_tr), train_acc=hit / len(x_tr),
                      val_loss=ce(ov, y_va).item(),
                      val_acc=(ov.argmax(1) == y_va).float().mean().item())
    return monitor.close()
