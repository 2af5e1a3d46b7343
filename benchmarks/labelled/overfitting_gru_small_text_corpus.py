"""Sentiment classifier on a tiny labelled corpus: Embedding + GRU, 20 epochs, no regularisation.

What I did: 150 labelled "reviews" (token sequences of length 16 from a 60-word vocabulary),
a 32-d embedding, a 64-unit GRU, the last hidden state into a linear layer, Adam at 3e-3,
batches of 15, 20 epochs, validation on 300 more reviews after every epoch. Validation accuracy
stalled at ~68 %; I kept training because the train loss kept falling.

Why: the sentiment depends on a handful of words (and is noisy: 15 % of labels are flipped, as
annotators disagree). With ~20k parameters for 150 sequences the GRU memorises every training
review, noise included: by epoch 9 train accuracy is 100 % and the train loss heads to ~0,
while the validation loss climbs from its minimum at epoch 1 (0.69) to about three times that.

Label: overfitting.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

import netdoctor

EXPECT: tuple[str, ...] = ("overfitting",)

VOCAB, LENGTH = 60, 16
POSITIVE, NEGATIVE = torch.arange(1, 6), torch.arange(6, 11)


def reviews(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    tokens = torch.randint(11, VOCAB, (n, LENGTH), generator=g)
    label = torch.randint(0, 2, (n,), generator=g)
    for i in range(n):
        words = POSITIVE if label[i] == 1 else NEGATIVE
        k = int(torch.randint(1, 4, (1,), generator=g))
        where = torch.randperm(LENGTH, generator=g)[:k]
        tokens[i, where] = words[torch.randint(0, 5, (k,), generator=g)]
    flip = torch.rand(n, generator=g) < 0.15
    return tokens, torch.where(flip, 1 - label, label)


class GRUClassifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, 32)
        self.gru = nn.GRU(32, 64, batch_first=True)
        self.fc = nn.Linear(64, 2)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        _, h = self.gru(self.embedding(tokens))
        return self.fc(h[-1])


def train(log: Path) -> list:
    torch.manual_seed(51)
    g = torch.Generator().manual_seed(51)
    x_tr, y_tr = reviews(150, g)
    x_va, y_va = reviews(300, g)
    clf = GRUClassifier()
    optimizer = torch.optim.Adam(clf.parameters(), lr=3e-3)
    criterion = nn.CrossEntropyLoss()
    monitor = netdoctor.watch(clf, optimizer, log=log)
    for _epoch in range(20):
        clf.train()
        order = torch.randperm(len(x_tr))
        epoch_loss, correct = 0.0, 0
        for start in range(0, len(x_tr), 15):
            idx = order[start:start + 15]
            optimizer.zero_grad()
            logits = clf(x_tr[idx])
            loss = criterion(logits, y_tr[idx])
            loss.backward()
            optimizer.step()
            monitor.step(loss)
            epoch_loss += loss.item() * len(idx)
            correct += (logits.argmax(-1) == y_tr[idx]).sum().item()
        clf.eval()
        with torch.no_grad():
            val_logits = clf(x_va)
        monitor.epoch(train_loss=epoch_loss / len(x_tr), train_acc=correct / len(x_tr),
                      val_loss=criterion(val_logits, y_va).item(),
                      val_acc=(val_logits.argmax(-1) == y_va).float().mean().item())
    return monitor.close()
