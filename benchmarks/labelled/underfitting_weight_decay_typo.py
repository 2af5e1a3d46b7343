"""Gesture classifier where weight_decay=5e-2 was typed instead of 5e-4.

What I did: an MLP (64 -> 128 -> 128 -> 6) on 64-d accelerometer features, SGD(lr=0.05,
momentum=0.9, weight_decay=5e-2) -- I meant the usual 5e-4 -- and a step schedule. Train and
validation accuracy stayed near 1/6 for the whole run; the loss hovered at ln 6.

Why: weight decay shrinks every weight by lr * wd = 0.25 % per step (~2.5 % with momentum)
toward zero, faster than the weak gradient of this task (the classes depend on products and
squares of a few of the 64 features) can grow it. The weights collapse toward 0, the outputs
become the same for every input, and the model predicts the class prior: the train loss sits
at the chance level.

Label: underfitting (the train loss at chance) and loss_not_decreasing (it never leaves ln 6,
from the first step to the last). With weight_decay=5e-4 the same loop fits the training set
to 90 % (and then overfits, which is another story).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import netdoctor

EXPECT: tuple[str, ...] = ("loss_not_decreasing", "underfitting")


def gestures(n: int, g: torch.Generator):
    x = torch.randn(n, 64, generator=g)
    energy = torch.stack([x[:, 0] * x[:, 1], x[:, 2] * x[:, 3], x[:, 4] ** 2 - 1,
                          x[:, 5] ** 2 - 1, torch.sin(2 * x[:, 6]), torch.cos(2 * x[:, 7])], 1)
    return x, energy.argmax(1)


def train(log: Path) -> list:
    torch.manual_seed(63)
    g = torch.Generator().manual_seed(63)
    x, y = gestures(2000, g)
    xv, yv = gestures(600, g)
    loader = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True,
                        generator=torch.Generator().manual_seed(64))
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(),
                          nn.Linear(128, 6))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-2)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=4, gamma=0.5)
    monitor = netdoctor.watch(model, opt, log=log)
    for _epoch in range(8):
        model.train()
        tl, hits = 0.0, 0
        for xb, yb in loader:
            opt.zero_grad()
            out = model(xb)
            loss = nn.functional.cross_entropy(out, yb)
            loss.backward()
            opt.step()
            monitor.step(loss)
            tl += loss.item() * len(yb)
            hits += (out.argmax(1) == yb).sum().item()
        sched.step()
        model.eval()
        with torch.no_grad():
            ov = model(xv)
        monitor.epoch(train_loss=tl / len(x), train_acc=hits / len(x),
                      val_loss=nn.functional.cross_entropy(ov, yv).item(),
                      val_acc=(ov.argmax(1) == yv).float().mean().item())
    return monitor.close()
