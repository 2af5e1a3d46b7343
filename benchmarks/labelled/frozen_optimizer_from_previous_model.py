"""Notebook re-run: the optimizer still holds the parameters of the previous model instance.

What I did (as a script, the way it ended up after copying notebook cells together):
    model = make_model(); optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    ... then a cell that "resets" the model before training: model = make_model()
The loop runs without any error, calls optimizer.step() every batch -- and the loss printed the
same 1.58 every epoch (ln 5 = 1.61) with accuracy 30 % on an easy 5-class problem.

Why: optimizer.step() updates the tensors it was built with, which belong to the first model.
The model being trained (and evaluated) is the second one: its parameters get gradients every
step but nobody ever applies them, so it stays exactly at its random initialisation. And as
optimizer.zero_grad() clears the first model's gradients, not this one's, its .grad keeps
accumulating: the gradient norm grows linearly, step after step (15 -> 270). That is a sum of
identical-ish gradients, not an exploding gradient.

Label: frozen_parameters (the cause: every trainable parameter is outside the optimizer and
never changes), loss_not_decreasing (the loss never moves) and underfitting (it stays at the
chance loss ln 5 while the task is easy; the 30 % accuracy is the random init's luck, the same
0.3005 in every epoch because nothing changes). Not exploding_gradients (see above).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

import netdoctor

EXPECT: tuple[str, ...] = ("frozen_parameters", "loss_not_decreasing", "underfitting")


def make_model() -> nn.Module:
    return nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                         nn.Linear(64, 5))


def five_gaussians(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    centres = torch.randn(5, 8, generator=torch.Generator().manual_seed(3)) * 2
    y = torch.randint(0, 5, (n,), generator=g)
    return centres[y] + torch.randn(n, 8, generator=g), y


def train(log: Path) -> list:
    torch.manual_seed(103)
    g = torch.Generator().manual_seed(103)
    x, y = five_gaussians(2000, g)
    xv, yv = five_gaussians(500, g)
    model = make_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    model = make_model()  # "fresh weights before training" -- the optimizer still has the old ones
    monitor = netdoctor.watch(model, optimizer, log=log)
    for _epoch in range(6):
        model.train()
        perm = torch.randperm(len(x))
        tl, hits = 0.0, 0
        for i in range(0, len(x), 40):
            idx = perm[i:i + 40]
            optimizer.zero_grad()
            out = model(x[idx])
            loss = nn.functional.cross_entropy(out, y[idx])
            loss.backward()
            optimizer.step()
            monitor.step(loss)
            tl += loss.item() * len(idx)
            hits += (out.argmax(1) == y[idx]).sum().item()
        model.eval()
        with torch.no_grad():
            ov = model(xv)
        monitor.epoch(train_loss=tl / len(x), train_acc=hits / len(x),
                      val_loss=nn.functional.cross_entropy(ov, yv).item(),
                      val_acc=(ov.argmax(1) == yv).float().mean().item())
    return monitor.close()
