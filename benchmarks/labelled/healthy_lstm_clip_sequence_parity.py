"""LSTM classifying whether a noisy sequence's running sum ends positive or negative.

Sequences of 20 steps with 3 features; the label is the sign of the sum of feature 0 (the other two
are distractors). nn.LSTM(batch_first=True) -> last hidden state -> Linear. Adam at 3e-3 with
gradient-norm clipping at 1.0, as in most RNN tutorials. Step-based with an eval every 100 steps.

Label: healthy.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

import netdoctor

EXPECT: tuple[str, ...] = ()


class SeqClassifier(nn.Module):
    def __init__(self, n_in: int = 3, hidden: int = 32) -> None:
        super().__init__()
        self.rnn = nn.LSTM(n_in, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, (h, _) = self.rnn(x)
        return self.head(h[-1])


def batch(gen: torch.Generator, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(size, 20, 3, generator=gen)
    y = (x[:, :, 0].sum(1) > 0).long()
    return x, y


def train(log: Path) -> list:
    torch.manual_seed(3)
    gen = torch.Generator().manual_seed(3)
    x_val, y_val = batch(gen, 256)
    model = SeqClassifier()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    crit = nn.CrossEntropyLoss()
    monitor = netdoctor.watch(model, opt, log=log)
    for step in range(400):
        x, y = batch(gen, 64)
        model.train()
        opt.zero_grad(set_to_none=True)
        loss = crit(model(x), y)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
        opt.step()
        monitor.step(loss)
        if (step + 1) % 100 == 0:
            model.eval()
            with torch.no_grad():
                logits = model(x_val)
                monitor.epoch(val_loss=crit(logits, y_val).item(),
                              val_acc=(logits.argmax(-1) == y_val).float().mean().item())
    return monitor.close()
