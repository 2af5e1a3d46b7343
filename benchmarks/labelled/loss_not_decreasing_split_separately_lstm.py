"""Activity recognition with an LSTM, where inputs and labels were split by two separate calls.

What I did: my `random_split_rows(array, val_fraction, seed)` helper shuffles rows and cuts off
a validation part. I called it once for the windows and once for the labels -- with the seed
argument left at its default of None, so each call drew its own permutation. Then an LSTM
(3 accelerometer channels, 30 time steps, 48 hidden units) -> linear head over 4 activities,
Adam 2e-3, batch 50, 6 epochs with validation. The loss stayed at ln 4 = 1.39 throughout.

Why: the two calls shuffled differently, so every training window is paired with the label of
some other window. There is no relation left between inputs and targets; the model learns
nothing because there is nothing to learn.

Label: loss_not_decreasing. As with any data bug of this kind, not underfitting (capacity and
optimisation are fine: with one shared permutation the same loop reaches 77 % validation
accuracy in these 6 epochs, still climbing).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

import netdoctor

EXPECT: tuple[str, ...] = ("loss_not_decreasing",)


def recordings(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    activity = torch.randint(0, 4, (n,), generator=g)
    t = torch.arange(30).float() / 10
    freq = torch.tensor([0.5, 1.5, 2.5, 0.0])[activity]
    amp = torch.tensor([0.5, 1.0, 1.5, 0.1])[activity]
    phase = 2 * math.pi * torch.rand(n, 1, generator=g)
    wave = amp[:, None] * torch.sin(2 * math.pi * freq[:, None] * t[None] + phase)
    x = torch.stack([wave, wave.roll(3, 1), torch.ones_like(wave) * (activity[:, None] == 3)], -1)
    return x + 0.3 * torch.randn(n, 30, 3, generator=g), activity


def random_split_rows(array: torch.Tensor, val_fraction: float = 0.2, seed: int | None = None):
    gen = torch.Generator()
    gen.manual_seed(seed if seed is not None else int(torch.randint(0, 2**31, (1,))))
    order = torch.randperm(len(array), generator=gen)
    cut = int(len(array) * (1 - val_fraction))
    return array[order[:cut]], array[order[cut:]]


class ActivityLSTM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(3, 48, batch_first=True)
        self.classifier = nn.Linear(48, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.classifier(out[:, -1])


def train(log: Path) -> list:
    torch.manual_seed(92)
    g = torch.Generator().manual_seed(92)
    windows, labels = recordings(1500, g)
    x_train, x_val = random_split_rows(windows)
    y_train, y_val = random_split_rows(labels)  # the bug: a different permutation
    model = ActivityLSTM()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    criterion = nn.CrossEntropyLoss()
    monitor = netdoctor.watch(model, opt, log=log)
    for _epoch in range(6):
        model.train()
        perm = torch.randperm(len(x_train))
        running = []
        for i in range(0, len(x_train), 50):
            idx = perm[i:i + 50]
            opt.zero_grad()
            loss = criterion(model(x_train[idx]), y_train[idx])
            loss.backward()
            opt.step()
            monitor.step(loss)
            running.append(loss.item())
        model.eval()
        with torch.no_grad():
            val_logits = model(x_val)
        monitor.epoch(train_loss=sum(running) / len(running),
                      val_loss=criterion(val_logits, y_val).item(),
                      val_acc=(val_logits.argmax(1) == y_val).float().mean().item())
    return monitor.close()
