"""Small CNN with BatchNorm on synthetic 16x16 "bars" images, SGD + momentum and StepLR.

Three classes (horizontal bar, vertical bar, diagonal) drawn at random positions in heavy pixel
noise, each image scaled to [0, 1] then normalised with the training mean/std. Conv-BN-ReLU
blocks, max pooling, a linear head; SGD(lr=0.05, momentum=0.9, weight_decay=5e-4), the rate
halved every 3 epochs. model.train()/model.eval() switched around validation so BatchNorm uses
running stats. The first few steps at lr 0.05 overshoot (batch losses of ~10 in the first epoch,
back near chance by the second): common with a fresh BatchNorm net, and recovered from.

Label: healthy.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import netdoctor

EXPECT: tuple[str, ...] = ()


def draw_bars(n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    images = torch.rand(n, 1, 16, 16, generator=gen) * 1.0
    labels = torch.randint(0, 3, (n,), generator=gen)
    pos = torch.randint(2, 14, (n,), generator=gen)
    idx = torch.arange(16)
    for i in range(n):
        p = int(pos[i])
        if labels[i] == 0:
            images[i, 0, p, :] += 0.35
        elif labels[i] == 1:
            images[i, 0, :, p] += 0.35
        else:
            images[i, 0, idx, idx] += 0.35
    return images / images.amax(dim=(2, 3), keepdim=True), labels


class BarNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Linear(32 * 4 * 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


def train(log: Path) -> list:
    torch.manual_seed(1)
    gen = torch.Generator().manual_seed(1)
    x, y = draw_bars(1000, gen)
    x_train, y_train, x_val, y_val = x[:800], y[:800], x[800:], y[800:]
    mean, std = x_train.mean(), x_train.std()
    x_train, x_val = (x_train - mean) / std, (x_val - mean) / std
    loader = DataLoader(TensorDataset(x_train, y_train), batch_size=50, shuffle=True,
                        generator=torch.Generator().manual_seed(2))
    val_loader = DataLoader(TensorDataset(x_val, y_val), batch_size=100)

    net = BarNet()
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
    loss_fn = nn.CrossEntropyLoss()
    monitor = netdoctor.watch(net, opt, log=log)
    for _epoch in range(8):
        net.train()
        running, hits = 0.0, 0
        for images, labels in loader:
            opt.zero_grad()
            out = net(images)
            loss = loss_fn(out, labels)
            loss.backward()
            opt.step()
            monitor.step(loss)
            running += loss.item() * images.size(0)
            hits += (out.argmax(dim=1) == labels).sum().item()
        sched.step()
        net.eval()
        v_loss, v_hits = 0.0, 0
        with torch.no_grad():
            for images, labels in val_loader:
                out = net(images)
                v_loss += loss_fn(out, labels).item() * images.size(0)
                v_hits += (out.argmax(dim=1) == labels).sum().item()
        monitor.epoch(train_loss=running / len(x_train), val_loss=v_loss / len(x_val),
                      train_acc=hits / len(x_train), val_acc=v_hits / len(x_val))
    return monitor.close()
