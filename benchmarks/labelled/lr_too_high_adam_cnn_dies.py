"""Small CNN on synthetic glyphs with Adam at lr=0.1 ("Adam is adaptive, any lr works").

What I did: two conv layers + a linear head, ReLU, no normalisation layers, Adam(lr=0.1), batch
32, 5 epochs, validation each epoch. The second batch printed a loss of 63; after that it hung
around 2.2 (ln 10 = 2.30) with 10-15 % train accuracy for the rest of the run: barely above
chance; with lr=1e-3 the same loop reaches 42 % in 5 epochs, still climbing.

Why: Adam's step size is roughly lr per weight regardless of the gradient's scale, so lr=0.1 moves
every weight by ~0.1 per step -- as large as the conv weights themselves (the first update
changes conv2's weights by ~90 % of their norm). The first step throws the loss from 2.3 to 63;
the following ones push conv2's pre-activations far below zero (mean ~-25 to -40), so ~99 % of
its ReLU units output 0 for every image, the head sees almost only zeros and the network
predicts nearly a constant.

Label: lr_too_high (the cause), dead_relu (99 % of conv2's ReLU units die) and underfitting (the
train loss ends at ~94 % of ln 10, accuracy ~14 %). Not loss_not_decreasing: apart from the
spike the loss does drift down a little (2.33 -> ~2.15).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

import netdoctor

EXPECT: tuple[str, ...] = ("dead_relu", "lr_too_high", "underfitting")


def glyphs(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Ten classes, each a fixed random 5x5 stroke pattern pasted at a random offset in 12x12."""
    base = (torch.rand(10, 5, 5, generator=torch.Generator().manual_seed(99)) > 0.55).float()
    y = torch.randint(0, 10, (n,), generator=g)
    img = 0.2 * torch.randn(n, 1, 12, 12, generator=g)
    off = torch.randint(0, 8, (n, 2), generator=g)
    for i in range(n):
        r, c = int(off[i, 0]), int(off[i, 1])
        img[i, 0, r:r + 5, c:c + 5] += base[y[i]]
    return (img - 0.15) / 0.45, y


class GlyphNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(32 * 3 * 3, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(torch.relu(self.conv1(x)))
        x = self.pool(torch.relu(self.conv2(x)))
        return self.fc(x.flatten(1))


def train(log: Path) -> list:
    torch.manual_seed(70)
    g = torch.Generator().manual_seed(70)
    x, y = glyphs(1000, g)
    xv, yv = glyphs(300, g)
    net = GlyphNet()
    opt = torch.optim.Adam(net.parameters(), lr=0.1)
    crit = nn.CrossEntropyLoss()
    monitor = netdoctor.watch(net, opt, log=log)
    for _epoch in range(5):
        net.train()
        perm = torch.randperm(len(x))
        tl, hits = 0.0, 0
        for i in range(0, len(x), 32):
            idx = perm[i:i + 32]
            opt.zero_grad()
            out = net(x[idx])
            loss = crit(out, y[idx])
            loss.backward()
            opt.step()
            monitor.step(loss)
            tl += loss.item() * len(idx)
            hits += (out.argmax(1) == y[idx]).sum().item()
        net.eval()
        with torch.no_grad():
            ov = net(xv)
        monitor.epoch(train_loss=tl / len(x), train_acc=hits / len(x),
                      val_loss=crit(ov, yv).item(),
                      val_acc=(ov.argmax(1) == yv).float().mean().item())
    return monitor.close()
