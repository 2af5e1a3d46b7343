"""Customer-churn MLP where the features and labels were shuffled separately.

What I did: to randomise the row order before splitting, I wrote
    X = X[torch.randperm(len(X))]
    y = y[torch.randperm(len(y))]
-- two different permutations. Then a standard MLP (20 -> 32 -> 32 -> 2, ReLU), Adam 1e-3,
batch 100, 6 epochs, validation. The loss sat at 0.69 from the first batch to the last and the
accuracy at ~50 %, on train and validation alike. Same code with one permutation: 94 %.

Why: after the two shuffles every label belongs to some other row, so the inputs carry no
information about the targets. Nothing is wrong with the model or the optimiser -- the gradient
pushes the weights around, but there is no signal to find, so the loss stays at ln 2.

Label: loss_not_decreasing (the symptom: the loss never moves from where it started). Not
underfitting: the train loss is at chance because chance is all there is to learn here, and
the underfitting remedies (more capacity, longer training, higher lr) would only let the model
memorise noise. (Trained long enough, a big model would start memorising -- this one, on 5,000
rows, does not in 6 epochs.)
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import netdoctor

EXPECT: tuple[str, ...] = ("loss_not_decreasing",)


def churn(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(n, 20, generator=g)
    logit = 2.0 * x[:, 0] - 1.5 * x[:, 1] + x[:, 2] * x[:, 3]
    return x, (logit > 0).long()


def train(log: Path) -> list:
    torch.manual_seed(90)
    g = torch.Generator().manual_seed(90)
    X, y = churn(6000, g)
    X = X[torch.randperm(len(X), generator=g)]
    y = y[torch.randperm(len(y), generator=g)]  # the bug: a second, different permutation
    X_train, y_train, X_val, y_val = X[:5000], y[:5000], X[5000:], y[5000:]
    loader = DataLoader(TensorDataset(X_train, y_train), batch_size=100, shuffle=True,
                        generator=torch.Generator().manual_seed(91))
    model = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(),
                          nn.Linear(32, 2))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    criterion = nn.CrossEntropyLoss()
    monitor = netdoctor.watch(model, optimizer, log=log)
    for _epoch in range(6):
        model.train()
        total, hits, n = 0.0, 0, 0
        for xb, yb in loader:
            optimizer.zero_grad()
            logits = model(xb)
            loss = criterion(logits, yb)
            loss.backward()
            optimizer.step()
            monitor.step(loss)
            total += loss.item() * len(yb)
            hits += (logits.argmax(1) == yb).sum().item()
            n += len(yb)
        model.eval()
        with torch.no_grad():
            lv = model(X_val)
        monitor.epoch(train_loss=total / n, train_acc=hits / n,
                      val_loss=criterion(lv, y_val).item(),
                      val_acc=(lv.argmax(1) == y_val).float().mean().item())
    return monitor.close()
