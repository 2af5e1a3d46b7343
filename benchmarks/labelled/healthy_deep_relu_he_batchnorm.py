"""An 8-layer plain (non-residual) ReLU MLP made trainable the textbook way: He init + BatchNorm.

Linear -> BatchNorm1d -> ReLU, eight times, kaiming_normal_(nonlinearity="relu"), SGD with
momentum 0.9 at 0.02, MultiStepLR dropping by 10 at epochs 6 and 9. Data: a 20-feature problem
with 5 classes given by which of 5 random directions a point is closest to (with label noise
of 5 %). Validation each epoch.

Label: healthy. Deep, but normalised and well initialised.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import netdoctor

EXPECT: tuple[str, ...] = ()


def make_problem(n: int, directions: torch.Tensor, g: torch.Generator):
    x = torch.randn(n, 20, generator=g)
    y = (x @ directions.T).argmax(1)
    flip = torch.rand(n, generator=g) < 0.05
    y[flip] = torch.randint(0, 5, (int(flip.sum()),), generator=g)
    return x, y


def deep_mlp(width: int = 64, depth: int = 8) -> nn.Sequential:
    layers: list[nn.Module] = []
    fan_in = 20
    for _ in range(depth):
        lin = nn.Linear(fan_in, width)
        nn.init.kaiming_normal_(lin.weight, nonlinearity="relu")
        nn.init.zeros_(lin.bias)
        layers += [lin, nn.BatchNorm1d(width), nn.ReLU()]
        fan_in = width
    layers.append(nn.Linear(width, 5))
    return nn.Sequential(*layers)


def train(log: Path) -> list:
    torch.manual_seed(15)
    g = torch.Generator().manual_seed(15)
    directions = torch.randn(5, 20, generator=g)
    x_tr, y_tr = make_problem(2000, directions, g)
    x_va, y_va = make_problem(500, directions, g)
    dl = DataLoader(TensorDataset(x_tr, y_tr), batch_size=64, shuffle=True,
                    generator=torch.Generator().manual_seed(16))
    model = deep_mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[6, 9], gamma=0.1)
    crit = nn.CrossEntropyLoss()
    mon = netdoctor.watch(model, opt, log=log)
    for _epoch in range(11):
        model.train()
        total = 0.0
        for xb, yb in dl:
            opt.zero_grad()
            loss = crit(model(xb), yb)
            loss.backward()
            opt.step()
            mon.step(loss)
            total += loss.item() * len(xb)
        sched.step()
        model.eval()
        with torch.no_grad():
            out = model(x_va)
        mon.epoch(train_loss=total / len(x_tr), val_loss=crit(out, y_va).item(),
                  val_acc=(out.argmax(1) == y_va).float().mean().item())
    return mon.close()
