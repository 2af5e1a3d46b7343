"""A port from TensorFlow 1: `keep_prob=0.9` became `nn.Dropout(0.9)`, which drops 90 %.

What I did: I ported an old TF1 model (two hidden layers of 128 with dropout keep_prob=0.9) to
PyTorch and wrote nn.Dropout(0.9) after each hidden layer. Adam 3e-3, 12 epochs, switching
model.train() / model.eval() properly. The TF1 version reached ~99 % on this five-arm spiral
data; mine stays at ~25 % train accuracy (~37 % validation, in eval mode) with a train loss
around 1.5 (chance: ln 5 = 1.61).

Why: PyTorch's argument is the probability of *dropping* a unit. With p=0.9 only ~13 of the 128
units survive each forward pass, at random, twice in a row: the training signal is mostly noise
and the network cannot even fit the training set. (Validation, in eval mode without dropout,
is a bit better but still poor.)

Label: underfitting (the train loss stays close to chance). The loss does drift down from its
first values, so not a flat loss; no optimisation fault.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

import netdoctor

EXPECT: tuple[str, ...] = ("underfitting",)


def spiral_arms(n: int, g: torch.Generator, arms: int = 5):
    y = torch.randint(0, arms, (n,), generator=g)
    t = torch.rand(n, generator=g) * 2.5 + 0.3
    a = t * 2.2 + y.float() * 2 * math.pi / arms
    x = torch.stack([t * torch.cos(a), t * torch.sin(a)], 1)
    return x + 0.08 * torch.randn(n, 2, generator=g), y


class PortedNet(nn.Module):
    def __init__(self, keep_prob: float = 0.9) -> None:
        super().__init__()
        self.fc1 = nn.Linear(2, 128)
        self.drop1 = nn.Dropout(keep_prob)  # the bug: PyTorch's p is the drop probability
        self.fc2 = nn.Linear(128, 128)
        self.drop2 = nn.Dropout(keep_prob)
        self.logits = nn.Linear(128, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop1(torch.relu(self.fc1(x)))
        x = self.drop2(torch.relu(self.fc2(x)))
        return self.logits(x)


def train(log: Path) -> list:
    torch.manual_seed(62)
    g = torch.Generator().manual_seed(62)
    x_train, y_train = spiral_arms(3000, g)
    x_val, y_val = spiral_arms(600, g)
    net = PortedNet()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    monitor = netdoctor.watch(net, opt, log=log, num_classes=5)
    for _epoch in range(12):
        net.train()
        perm = torch.randperm(len(x_train))
        total, hits = 0.0, 0
        for i in range(0, len(x_train), 50):
            idx = perm[i:i + 50]
            logits = net(x_train[idx])
            loss = nn.functional.cross_entropy(logits, y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            monitor.step(loss)
            total += loss.item() * len(idx)
            hits += (logits.argmax(1) == y_train[idx]).sum().item()
        net.eval()
        with torch.no_grad():
            lv = net(x_val)
        monitor.epoch(train_loss=total / len(x_train), train_acc=hits / len(x_train),
                      val_loss=nn.functional.cross_entropy(lv, y_val).item(),
                      val_acc=(lv.argmax(1) == y_val).float().mean().item())
    return monitor.close()
