"""Fine-tuning: a backbone pretrained on one task, frozen, and a new head trained on another.

Stage 1 (not watched): a small MLP backbone is trained on a 6-class problem. Stage 2 (watched):
the backbone's parameters get requires_grad_(False), a fresh 3-class head is put on top, and only
the head is given to Adam -- the standard "linear probe / frozen backbone" recipe. The backbone is
left in eval mode. The new task reuses the same inputs, so the frozen features are useful and the
head learns quickly.

Label: healthy. The frozen backbone is deliberate; at most an info-level note is fair.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

import netdoctor

EXPECT: tuple[str, ...] = ()


def features_and_tasks(n: int, gen: torch.Generator):
    x = torch.randn(n, 8, generator=gen)
    angle = torch.atan2(x[:, 1], x[:, 0])
    fine = ((angle + torch.pi) / (2 * torch.pi) * 6).long().clamp(max=5)  # 6 sectors
    coarse = fine // 2  # 3 merged sectors: the downstream task
    return x, fine, coarse


class Backbone(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class Finetuned(nn.Module):
    def __init__(self, backbone: Backbone, n_classes: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(32, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


def pretrain(backbone: Backbone, x: torch.Tensor, y: torch.Tensor) -> None:
    probe = nn.Linear(32, 6)
    opt = torch.optim.Adam([*backbone.parameters(), *probe.parameters()], lr=3e-3)
    for _ in range(300):
        idx = torch.randint(0, len(x), (64,))
        loss = nn.functional.cross_entropy(probe(backbone(x[idx])), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()


def train(log: Path) -> list:
    torch.manual_seed(8)
    gen = torch.Generator().manual_seed(8)
    x, fine, coarse = features_and_tasks(3000, gen)
    backbone = Backbone()
    pretrain(backbone, x[:2000], fine[:2000])

    model = Finetuned(backbone, 3)
    for p in model.backbone.parameters():
        p.requires_grad_(False)
    model.backbone.eval()
    opt = torch.optim.Adam(model.head.parameters(), lr=1e-2)
    x_new, y_new = x[2000:2600], coarse[2000:2600]
    x_val, y_val = x[2600:], coarse[2600:]
    monitor = netdoctor.watch(model, opt, log=log)
    for _epoch in range(10):
        model.head.train()
        perm = torch.randperm(len(x_new))
        total = 0.0
        for i in range(0, len(x_new), 32):
            idx = perm[i:i + 32]
            logits = model(x_new[idx])
            loss = nn.functional.cross_entropy(logits, y_new[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            monitor.step(loss)
            total += loss.item() * len(idx)
        with torch.no_grad():
            logits = model(x_val)
            monitor.epoch(train_loss=total / len(x_new),
                          val_loss=nn.functional.cross_entropy(logits, y_val).item(),
                          val_acc=(logits.argmax(1) == y_val).float().mean().item())
    return monitor.close()
