"""A LeNet-style CNN made deeper, still with sigmoid activations, trained with SGD + momentum.

What I did: I took the original LeNet recipe (sigmoid after every conv and linear layer) and
stacked six 3x3 conv layers before the classifier to "see more context" on 16x16 images of
bars (3 classes: horizontal, vertical, diagonal). SGD(lr=0.05, momentum=0.9). The training loss
sat at ln 3 for ages.

Why: every sigmoid multiplies the backward signal by at most 0.25; six conv layers and two
linear layers of them, with default (Kaiming-uniform, a=sqrt(5)) init whose gain is < 1, leave
the first convolutions with gradients thousands of times smaller than the classifier's. The
classifier alone sees almost input-independent features (each sigmoid layer shrinks the spread
around 0.5), so the loss does not move.

Label: vanishing_gradients (the cause), loss_not_decreasing and underfitting (the loss stays
at chance from the first step to the end).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

import netdoctor

EXPECT: tuple[str, ...] = ("loss_not_decreasing", "underfitting", "vanishing_gradients")


def bars(n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    img = torch.rand(n, 1, 16, 16, generator=gen) * 0.5
    lab = torch.randint(0, 3, (n,), generator=gen)
    pos = torch.randint(2, 14, (n,), generator=gen)
    diag = torch.arange(16)
    for i in range(n):
        if lab[i] == 0:
            img[i, 0, pos[i], :] += 0.5
        elif lab[i] == 1:
            img[i, 0, :, pos[i]] += 0.5
        else:
            img[i, 0, diag, diag] += 0.5
    return (img - 0.3) / 0.2, lab


class DeepLeNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        chans = [1, 8, 8, 16, 16, 16, 16]
        convs: list[nn.Module] = []
        for i in range(6):
            convs += [nn.Conv2d(chans[i], chans[i + 1], 3, padding=1), nn.Sigmoid()]
            if i in (1, 3):
                convs.append(nn.AvgPool2d(2))
        self.features = nn.Sequential(*convs)
        self.fc1 = nn.Linear(16 * 4 * 4, 32)
        self.act = nn.Sigmoid()
        self.fc2 = nn.Linear(32, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(self.features(x).flatten(1))))


def train(log: Path) -> list:
    torch.manual_seed(31)
    gen = torch.Generator().manual_seed(31)
    x, y = bars(960, gen)
    net = DeepLeNet()
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    monitor = netdoctor.watch(net, opt, log=log)
    for _epoch in range(5):
        net.train()
        perm = torch.randperm(len(x))
        total = 0.0
        for i in range(0, len(x), 32):
            idx = perm[i:i + 32]
            opt.zero_grad()
            loss = loss_fn(net(x[idx]), y[idx])
            loss.backward()
            opt.step()
            monitor.step(loss)
            total += loss.item()
        monitor.epoch(train_loss=total / (len(x) // 32))
    return monitor.close()
