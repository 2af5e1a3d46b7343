"""StepLR(step_size=25, gamma=0.5) meant per epoch, stepped per batch: the LR is ~0 by mid-run.

What I did: a small 1-d CNN classifying 3 kinds of vibration signals (64 samples, 2 channels),
Adam at 2e-3, and StepLR(step_size=25, gamma=0.5) to halve the rate every 25 epochs of a longer
schedule. I put scheduler.step() next to optimizer.step() inside the batch loop. The loss fell
for two epochs, then froze at 0.83 for the rest of the 8 epochs (validation accuracy ~95 %, with
very unconfident predictions). Without the scheduler the same loop ends at loss 0.08, 98 %.

Why: stepped per batch, the rate halves every 25 *batches*: 38 batches per epoch, so after two
epochs it is 2e-3 / 8, after four 2e-3 / 400 and at the end ~5e-7. The updates shrink with it
to a negligible fraction of the weights and training stops long before the loss gets near what
this model reaches: the run is frozen at what it had learnt in its first ~100 steps.

Label: lr_too_low (for the second half of the run the rate is ~1e-6 and the weights do not move,
with the loss 10 times higher than it could be). The loss did fall at first (1.1 -> 0.83) and
the accuracy is high, so neither loss_not_decreasing nor underfitting.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import netdoctor

EXPECT: tuple[str, ...] = ("lr_too_low",)


def vibrations(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    kind = torch.randint(0, 3, (n,), generator=g)
    t = torch.linspace(0, 1, 64)
    freq = torch.tensor([3.0, 5.0, 8.0])[kind] + 0.5 * torch.randn(n, generator=g)
    phase = 2 * math.pi * torch.rand(n, 1, generator=g)
    base = torch.sin(2 * math.pi * freq[:, None] * t[None] + phase)
    second = torch.sign(base) * 0.5
    x = torch.stack([base, second], 1) + 0.8 * torch.randn(n, 2, 64, generator=g)
    return x, kind


def train(log: Path) -> list:
    torch.manual_seed(82)
    g = torch.Generator().manual_seed(82)
    x, y = vibrations(1200, g)
    xv, yv = vibrations(400, g)
    dl = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True,
                    generator=torch.Generator().manual_seed(83))
    model = nn.Sequential(
        nn.Conv1d(2, 16, 5, padding=2), nn.ReLU(), nn.MaxPool1d(2),
        nn.Conv1d(16, 32, 5, padding=2), nn.ReLU(), nn.AdaptiveAvgPool1d(1),
        nn.Flatten(), nn.Linear(32, 3),
    )
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=25, gamma=0.5)
    loss_fn = nn.CrossEntropyLoss()
    monitor = netdoctor.watch(model, opt, log=log)
    for _epoch in range(8):
        model.train()
        tl = 0.0
        for xb, yb in dl:
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            scheduler.step()  # the bug: meant once per epoch
            monitor.step(loss)
            tl += loss.item()
        model.eval()
        with torch.no_grad():
            lv = model(xv)
        monitor.epoch(train_loss=tl / len(dl), val_loss=loss_fn(lv, yv).item(),
                      val_acc=(lv.argmax(1) == yv).float().mean().item())
    return monitor.close()
