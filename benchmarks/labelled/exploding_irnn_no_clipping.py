"""Sensor forecasting with a ReLU RNN, identity-initialised (IRNN), and no gradient clipping.

What I did: a plain nn.RNN(nonlinearity="relu") predicting the next value of a noisy two-tone
signal over 80-step windows. I read (Le et al. 2015) that identity recurrent weights let a ReLU
RNN remember long sequences, so I set weight_hh to the identity and the biases to zero. SGD with
momentum 0.9 at 3e-3. I did not add clip_grad_norm_ -- the LSTM tutorials I learnt from used it,
this paper's code I did not read. The loss was nan after a handful of batches.

Why: with W_hh = I and ReLU the hidden state integrates the inputs, and the gradient through 80
time steps is a product of Jacobians whose norm is >= 1. The first gradient is ~20, the
first update makes the recurrence expansive, the next gradient is ~300, then ~1e11, then inf:
the textbook exploding gradient of a recurrent net, ending in NaN weights and a NaN loss from
then on.

Label: exploding_gradients (the cause), nan_loss (its end). The learning rate is an ordinary one
for SGD; the fix is gradient clipping (or an LSTM), not a different rate.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

import netdoctor

EXPECT: tuple[str, ...] = ("exploding_gradients", "nan_loss")


class Forecaster(nn.Module):
    def __init__(self, hidden: int = 64) -> None:
        super().__init__()
        self.rnn = nn.RNN(1, hidden, nonlinearity="relu", batch_first=True)
        self.readout = nn.Linear(hidden, 1)
        with torch.no_grad():
            self.rnn.weight_hh_l0.copy_(torch.eye(hidden))
            self.rnn.bias_hh_l0.zero_()
            self.rnn.bias_ih_l0.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        states, _ = self.rnn(x)
        return self.readout(states)


def windows(batch: int, length: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    t = torch.arange(length + 1).float()[None] * 0.1 + torch.rand(batch, 1, generator=g) * 6.28
    f = 1 + torch.rand(batch, 1, generator=g)
    s = torch.sin(f * t) + 0.5 * torch.sin(2.3 * f * t)
    s = s + 0.05 * torch.randn(batch, length + 1, generator=g)
    return s[:, :-1, None], s[:, 1:, None]


def train(log: Path) -> list:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    model = Forecaster()
    optimizer = torch.optim.SGD(model.parameters(), lr=3e-3, momentum=0.9)
    monitor = netdoctor.watch(model, optimizer, log=log)
    for _it in range(60):
        x, y = windows(32, 80, g)
        loss = nn.functional.mse_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        monitor.step(loss)
    return monitor.close()
