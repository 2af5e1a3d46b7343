"""3-class tabular problem, LeakyReLU MLP, SGD(lr=1.0, momentum=0.9) "made safe" by clipping.

What I did: I had NaNs before with large learning rates, so I added
clip_grad_norm_(model.parameters(), 1.0) and then felt free to use lr=1.0 with momentum 0.9 to
train fast. LeakyReLU so nothing can die. No more NaNs -- but the loss printed each epoch was
above the very first loss (~1.1), the batch losses jumped between ~0.5 and ~5, and accuracy
wandered around 50-60 % while lr=0.05 gets ~94 % on this data.

Why: clipping caps the gradient's norm at 1, but the step is lr * (clipped gradient) accumulated
by momentum: each update has a norm of ~1, i.e. 5-15 % of the weight matrices it changes (about
0.1 % is healthy), and the weights keep growing (the hidden layers' norms go from ~6 to ~30).
Every step jumps across the valley; the loss cannot settle and spends the run above where it
started. Clipping hides the exploding gradient, not the oversized step.

Label: lr_too_high (the cause), loss_not_decreasing (the loss never gets below its first values)
and underfitting (the train loss ends at ~1.8, well above the chance loss ln 3 = 1.10: the model
fits its training set worse than a constant prediction would, although its accuracy, ~55 %, is
above the 33 % of chance). No exploding gradients (they are clipped) and no NaN.
(First labelled without underfitting; I added it to be consistent with my other labels, where
a train loss ending at or above chance counts as underfitting.)
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import netdoctor

EXPECT: tuple[str, ...] = ("loss_not_decreasing", "lr_too_high", "underfitting")


def make_data(n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(n, 10, generator=gen)
    score = torch.stack([x[:, 0] * x[:, 1], x[:, 2] ** 2 - 1, torch.sin(2 * x[:, 3])], 1)
    return x, score.argmax(1)


def train(log: Path) -> list:
    torch.manual_seed(71)
    gen = torch.Generator().manual_seed(71)
    x, y = make_data(3000, gen)
    xv, yv = make_data(600, gen)
    loader = DataLoader(TensorDataset(x, y), batch_size=50, shuffle=True,
                        generator=torch.Generator().manual_seed(72))
    act = nn.LeakyReLU(0.1)
    model = nn.Sequential(nn.Linear(10, 128), act, nn.Linear(128, 128), act, nn.Linear(128, 3))
    opt = torch.optim.SGD(model.parameters(), lr=1.0, momentum=0.9)
    monitor = netdoctor.watch(model, opt, log=log)
    for _epoch in range(8):
        model.train()
        tl, hits, n = 0.0, 0, 0
        for xb, yb in loader:
            opt.zero_grad()
            out = model(xb)
            loss = nn.functional.cross_entropy(out, yb)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            monitor.step(loss)
            tl += loss.item() * len(yb)
            hits += (out.argmax(1) == yb).sum().item()
            n += len(yb)
        model.eval()
        with torch.no_grad():
            ov = model(xv)
        monitor.epoch(train_loss=tl / n, train_acc=hits / n,
                      val_loss=nn.functional.cross_entropy(ov, yv).item(),
                      val_acc=(ov.argmax(1) == yv).float().mean().item())
    return monitor.close()
