"""Hand-rolled init that fills every weight with zeros, in a tanh MLP for 3-class audio features.

What I did: my own `init_weights(m)` applied with model.apply(), doing
`m.weight.data.fill_(0.0); m.bias.data.fill_(0.0)` for every Linear -- I had seen zero-init for
the last layer in a paper and applied it everywhere, "the optimiser will sort it out". tanh
hidden layers (40 -> 64 -> 64 -> 3), SGD with momentum at 0.05, 6 epochs with validation. The
loss printed 1.0986 (= ln 3) every single epoch, accuracy stuck at one class.

Why: all hidden units start identical (all zero), so they compute the same thing (tanh(0) = 0)
for every input. Worse, with zero outgoing weights each hidden layer's gradient is zero too
(it flows back through the next layer's zero weights), so the hidden weights never leave zero.
Only the output biases learn, and on balanced classes the best biases are what they started as:
the model outputs the same uniform prediction for every input, forever.

Label: symmetric_weights (the cause: every unit of the hidden layers is the same, and stays so),
loss_not_decreasing (flat at ln 3 from the first step) and underfitting (at chance). Not
vanishing_gradients or frozen_parameters, although the hidden gradients are exactly zero and
the weights never move: that is the zero init itself, and the fix is random init, not
activations, normalisation or the optimizer's param groups.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import netdoctor

EXPECT: tuple[str, ...] = ("loss_not_decreasing", "symmetric_weights", "underfitting")


def init_weights(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        m.weight.data.fill_(0.0)
        m.bias.data.fill_(0.0)


def audio_features(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    y = torch.arange(n) % 3  # balanced classes
    y = y[torch.randperm(n, generator=g)]
    centres = torch.randn(3, 40, generator=torch.Generator().manual_seed(4))
    return centres[y] * 0.8 + torch.randn(n, 40, generator=g), y


def train(log: Path) -> list:
    torch.manual_seed(112)
    g = torch.Generator().manual_seed(112)
    x, y = audio_features(2400, g)
    xv, yv = audio_features(600, g)
    model = nn.Sequential(nn.Linear(40, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(),
                          nn.Linear(64, 3))
    model.apply(init_weights)
    loader = DataLoader(TensorDataset(x, y), batch_size=48, shuffle=True,
                        generator=torch.Generator().manual_seed(113))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    criterion = nn.CrossEntropyLoss()
    monitor = netdoctor.watch(model, opt, log=log)
    for _epoch in range(6):
        model.train()
        tl, hits = 0.0, 0
        for xb, yb in loader:
            opt.zero_grad()
            out = model(xb)
            loss = criterion(out, yb)
            loss.backward()
            opt.step()
            monitor.step(loss)
            tl += loss.item() * len(yb)
            hits += (out.argmax(1) == yb).sum().item()
        model.eval()
        with torch.no_grad():
            ov = model(xv)
        monitor.epoch(train_loss=tl / len(x), train_acc=hits / len(x),
                      val_loss=criterion(ov, yv).item(),
                      val_acc=(ov.argmax(1) == yv).float().mean().item())
    return monitor.close()
