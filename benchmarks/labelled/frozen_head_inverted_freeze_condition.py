"""Transfer learning where an inverted condition froze the new head instead of the stem.

What I did: a CNN whose stem (first two conv blocks) was pretrained on a related task; I meant
to freeze the stem and train the rest:
    for name, p in model.named_parameters():
        if not name.startswith("stem"):      # meant: if name.startswith("stem")
            p.requires_grad = False
Then Adam over model.parameters() (PyTorch skips params without grad). The loss crawled from 1.40
to 1.22 in 6 epochs (70 % validation accuracy); with the condition the right way round the same
loop reaches a loss of 0.14 and 99 %.

Why: the condition is inverted: the stem trains and everything after it -- the third conv block
and the freshly initialised classifier -- is frozen at its random init. The stem has to learn
features that a fixed random head happens to map onto the right classes. No warning anywhere:
requires_grad=False parameters are silently skipped.

Label: frozen_parameters. (Freezing is deliberate in fine-tuning, but freezing the randomly
initialised output layer while training the pretrained stem is the opposite of the recipe.)
The model does learn (accuracy far above the 25 % chance, loss still falling), just slowly, so
I do not count it as underfitting.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

import netdoctor

EXPECT: tuple[str, ...] = ("frozen_parameters",)


def stripes(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Four classes: horizontal / vertical stripes, checkerboard, blob; noisy 12x12 images."""
    y = torch.randint(0, 4, (n,), generator=g)
    r = torch.arange(12)
    patterns = torch.stack([
        (r[:, None] % 4 < 2).float().expand(12, 12),
        (r[None, :] % 4 < 2).float().expand(12, 12),
        ((r[:, None] // 3 + r[None, :] // 3) % 2).float(),
        (((r[:, None] - 6.0) ** 2 + (r[None, :] - 6.0) ** 2) < 12).float(),
    ])
    img = patterns[y].unsqueeze(1) + 0.7 * torch.randn(n, 1, 12, 12, generator=g)
    return img, y


class SmallCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.block3 = nn.Sequential(nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
                                    nn.AdaptiveAvgPool2d(2))
        self.classifier = nn.Linear(32 * 4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.block3(self.stem(x)).flatten(1))


def pretrain_stem(model: SmallCNN, g: torch.Generator) -> None:
    """A short supervised pre-training of the whole net on a related data set."""
    x, y = stripes(600, g)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(40):
        idx = torch.randint(0, len(x), (32,), generator=g)
        loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()


def train(log: Path) -> list:
    torch.manual_seed(102)
    g = torch.Generator().manual_seed(102)
    pretrained = SmallCNN()
    pretrain_stem(pretrained, g)
    model = SmallCNN()
    model.stem.load_state_dict(pretrained.stem.state_dict())  # new block3 and classifier
    for name, p in model.named_parameters():
        if not name.startswith("stem"):  # the bug: meant `if name.startswith("stem")`
            p.requires_grad = False
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = stripes(800, g)
    xv, yv = stripes(200, g)
    monitor = netdoctor.watch(model, optimizer, log=log)
    for _epoch in range(6):
        model.train()
        perm = torch.randperm(len(x))
        tl = 0.0
        for i in range(0, len(x), 40):
            idx = perm[i:i + 40]
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            optimizer.step()
            monitor.step(loss)
            tl += loss.item() * len(idx)
        model.eval()
        with torch.no_grad():
            lv = model(xv)
        monitor.epoch(train_loss=tl / len(x),
                      val_loss=nn.functional.cross_entropy(lv, yv).item(),
                      val_acc=(lv.argmax(1) == yv).float().mean().item())
    return monitor.close()
