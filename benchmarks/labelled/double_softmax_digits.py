"""Ten-class classifier of small synthetic "digit" images that ends in nn.Softmax, trained with
nn.CrossEntropyLoss.

What I did: the course notes say the output activation of a classifier is a softmax, so I put
nn.Softmax(dim=1) as the model's last layer, and used nn.CrossEntropyLoss as every tutorial
does. Adam at 1e-3, a DataLoader, 12 epochs with a validation split. Accuracy climbed to ~95 %,
but the loss would not go below ~1.5, far from the ~0.1 I expected at that accuracy.

Why: CrossEntropyLoss applies log-softmax itself. Fed probabilities in [0, 1] instead of logits,
a perfect prediction still scores log(9 + e) - 1 = 1.46 for 10 classes, and the gradient that
reaches the logits passes through two softmaxes. Returning the logits fixes it.

Label: double_softmax (the loss sits on the floor of cross-entropy on probabilities).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import netdoctor

EXPECT: tuple[str, ...] = ("double_softmax",)


def digits(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """10 noisy 8x8 prototypes: each class is a fixed random pattern plus pixel noise."""
    prototypes = torch.rand(10, 1, 8, 8, generator=torch.Generator().manual_seed(7))
    y = torch.randint(0, 10, (n,), generator=g)
    x = prototypes[y] + 0.35 * torch.randn(n, 1, 8, 8, generator=g)
    return (x - 0.5) / 0.5, y


def train(log: Path) -> list:
    torch.manual_seed(3)
    g = torch.Generator().manual_seed(3)
    x_train, y_train = digits(3000, g)
    x_val, y_val = digits(600, g)
    loader = DataLoader(TensorDataset(x_train, y_train), batch_size=64, shuffle=True,
                        generator=torch.Generator().manual_seed(4))
    model = nn.Sequential(
        nn.Flatten(),
        nn.Linear(64, 128), nn.ReLU(),
        nn.Linear(128, 10),
        nn.Softmax(dim=1),  # the bug: CrossEntropyLoss wants logits
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    criterion = nn.CrossEntropyLoss()
    monitor = netdoctor.watch(model, optimizer, log=log)
    for _epoch in range(12):
        model.train()
        total, correct, seen = 0.0, 0, 0
        for xb, yb in loader:
            optimizer.zero_grad()
            probs = model(xb)
            loss = criterion(probs, yb)
            loss.backward()
            optimizer.step()
            monitor.step(loss)
            total += loss.item() * len(yb)
            correct += (probs.argmax(1) == yb).sum().item()
            seen += len(yb)
        model.eval()
        with torch.no_grad():
            val_probs = model(x_val)
            val_loss = criterion(val_probs, y_val).item()
            val_acc = (val_probs.argmax(1) == y_val).float().mean().item()
        monitor.epoch(train_loss=total / seen, val_loss=val_loss, train_acc=correct / seen,
                      val_acc=val_acc)
    return monitor.close()
