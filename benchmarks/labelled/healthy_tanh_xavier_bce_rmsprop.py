"""Binary classification with a tanh MLP, Xavier init, BCEWithLogitsLoss and RMSprop.

An older-style network: tanh hidden units initialised with xavier_uniform_ (gain for tanh),
zero biases, a single logit trained with BCEWithLogitsLoss (numerically stable), RMSprop at
1e-3. The target is whether a point lies inside an ellipse in 6-d (only the first 3 features
matter). Epochs, a DataLoader and validation.

Label: healthy. tanh units are in their working range, not pinned at +-1.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import netdoctor

EXPECT: tuple[str, ...] = ()


class TanhNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.hidden1 = nn.Linear(6, 48)
        self.hidden2 = nn.Linear(48, 48)
        self.hidden3 = nn.Linear(48, 48)
        self.logit = nn.Linear(48, 1)
        for layer in (self.hidden1, self.hidden2, self.hidden3, self.logit):
            nn.init.xavier_uniform_(layer.weight, gain=nn.init.calculate_gain("tanh"))
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.hidden1(x))
        h = torch.tanh(self.hidden2(h))
        h = torch.tanh(self.hidden3(h))
        return self.logit(h).squeeze(1)


def ellipse(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(n, 6, generator=g)
    r = (x[:, 0] / 1.5) ** 2 + x[:, 1] ** 2 + (x[:, 2] / 0.7) ** 2
    return x, (r < 2.2).float()


def train(log: Path) -> list:
    torch.manual_seed(13)
    g = torch.Generator().manual_seed(13)
    xt, yt = ellipse(2400, g)
    xv, yv = ellipse(600, g)
    loader = DataLoader(TensorDataset(xt, yt), batch_size=48, shuffle=True,
                        generator=torch.Generator().manual_seed(14))
    model = TanhNet()
    optimizer = torch.optim.RMSprop(model.parameters(), lr=1e-3)
    bce = nn.BCEWithLogitsLoss()
    monitor = netdoctor.watch(model, optimizer, log=log)
    for _ in range(8):
        model.train()
        tot, hits = 0.0, 0.0
        for xb, yb in loader:
            optimizer.zero_grad()
            logit = model(xb)
            loss = bce(logit, yb)
            loss.backward()
            optimizer.step()
            monitor.step(loss)
            tot += loss.item() * len(xb)
            hits += ((logit > 0).float() == yb).sum().item()
        model.eval()
        with torch.no_grad():
            lv = model(xv)
            monitor.epoch(train_loss=tot / len(xt), train_acc=hits / len(xt),
                          val_loss=bce(lv, yv).item(),
                          val_acc=((lv > 0).float() == yv).float().mean().item())
    return monitor.close()
