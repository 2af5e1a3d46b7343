"""Defect detection on 0-255 grey-level images fed straight into a CNN with SGD.

What I did: uint8 images of 16x16 metal surface patches, converted with .float() but never
divided by 255 or normalised; two conv layers with ReLU and a linear head, SGD(lr=0.01,
momentum=0.9), 6 epochs with validation, the usual train()/eval() switching. The first losses
were 2, 572, 3, 8800, then 0.69 = ln 2 for the rest of the run, accuracy 52 %.

Why: the first convolution's pre-activations are weighted sums of 9 pixels in 0-255, i.e. in the
hundreds; the first gradients are as large (norm ~200 at step 0, spiking to ~14,000 at step 3),
and an SGD step at lr 0.01 changes conv1's weights by about their own size. Within four steps an
update pushes every conv1 pre-activation far below zero (mean ~-4e4): all 8 channels of its
ReLU are 0 for every image from then on, nothing reaches the head but zeros, and the network
predicts a constant. The learning rate would be fine for inputs in [0, 1].

Label: unnormalized_inputs (the cause), exploding_gradients (the gradient spikes by ~70x within
the first steps and the update it causes wrecks conv1), dead_relu (conv1's ReLU dies, 100 %) and
underfitting (the run ends at chance: loss ln 2, accuracy 52 %). Not vanishing_gradients
(conv1's gradient is zero because its units are dead, see dead_relu), not lr_too_high (0.01 is a
sane rate for normalised images; the input scale is what is wrong), not loss_not_decreasing
(the first loss, 2.15, was already inflated by the raw inputs; the loss then sits at ln 2).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

import netdoctor

EXPECT: tuple[str, ...] = ("dead_relu", "exploding_gradients", "underfitting",
                           "unnormalized_inputs")


def patches(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    defect = torch.randint(0, 2, (n,), generator=g)
    img = 120 + 25 * torch.randn(n, 1, 16, 16, generator=g)
    rows = torch.randint(2, 14, (n,), generator=g)
    for i in range(n):
        if defect[i]:
            r = int(rows[i])
            img[i, 0, r - 1:r + 1, 3:13] -= 90  # a dark scratch
    return img.clamp(0, 255).round(), defect


class DefectNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.fc = nn.Linear(16 * 4 * 4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.max_pool2d(nn.functional.relu(self.conv1(x)), 2)
        x = nn.functional.max_pool2d(nn.functional.relu(self.conv2(x)), 2)
        return self.fc(x.flatten(1))


def train(log: Path) -> list:
    torch.manual_seed(132)
    g = torch.Generator().manual_seed(132)
    x, y = patches(1000, g)
    xv, yv = patches(250, g)
    model = DefectNet()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    monitor = netdoctor.watch(model, opt, log=log)
    for _epoch in range(6):
        model.train()
        perm = torch.randperm(len(x))
        tl, hits = 0.0, 0
        for i in range(0, len(x), 25):
            idx = perm[i:i + 25]
            opt.zero_grad()
            out = model(x[idx])
            loss = nn.functional.cross_entropy(out, y[idx])
            loss.backward()
            opt.step()
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
