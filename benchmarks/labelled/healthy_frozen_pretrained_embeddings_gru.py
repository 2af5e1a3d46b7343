"""Text classifier on frozen word vectors: Embedding.from_pretrained(freeze=True) + a GRU.

The usual NLP baseline with pre-computed word vectors (here: vectors built in code so that words
of the same topic are close), kept frozen, a bidirectional GRU on top and a linear classifier over
3 topics. Adam 2e-3 with gradient clipping at 5, 8 epochs with validation. The embedding is
frozen on purpose (a standard choice with small data); everything else trains.

Label: healthy. (At most an info note on the deliberately frozen embedding.)
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

import netdoctor

EXPECT: tuple[str, ...] = ()

VOCAB, DIM, LENGTH = 90, 24, 14


def word_vectors(g: torch.Generator) -> torch.Tensor:
    topics = torch.randn(3, DIM, generator=g)
    vectors = 0.7 * torch.randn(VOCAB, DIM, generator=g)
    vectors[:60] += topics[torch.arange(60) // 20]  # words 0-59: 20 per topic; 60-89: filler
    return vectors


def documents(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    topic = torch.randint(0, 3, (n,), generator=g)
    filler = torch.randint(60, VOCAB, (n, LENGTH), generator=g)
    topical = topic[:, None] * 20 + torch.randint(0, 20, (n, LENGTH), generator=g)
    use_topical = torch.rand(n, LENGTH, generator=g) < 0.3
    return torch.where(use_topical, topical, filler), topic


class TopicGRU(nn.Module):
    def __init__(self, vectors: torch.Tensor) -> None:
        super().__init__()
        self.embedding = nn.Embedding.from_pretrained(vectors, freeze=True)
        self.gru = nn.GRU(DIM, 32, batch_first=True, bidirectional=True)
        self.out = nn.Linear(64, 3)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        _, h = self.gru(self.embedding(tokens))
        return self.out(torch.cat([h[0], h[1]], 1))


def train(log: Path) -> list:
    torch.manual_seed(142)
    g = torch.Generator().manual_seed(142)
    model = TopicGRU(word_vectors(g))
    x, y = documents(1200, g)
    xv, yv = documents(300, g)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=2e-3)
    crit = nn.CrossEntropyLoss()
    monitor = netdoctor.watch(model, opt, log=log)
    for _epoch in range(8):
        model.train()
        perm = torch.randperm(len(x))
        tl = 0.0
        for i in range(0, len(x), 40):
            idx = perm[i:i + 40]
            opt.zero_grad()
            loss = crit(model(x[idx]), y[idx])
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            monitor.step(loss)
            tl += loss.item() * len(idx)
        model.eval()
        with torch.no_grad():
            lv = model(xv)
        monitor.epoch(train_loss=tl / len(x), val_loss=crit(lv, yv).item(),
                      val_acc=(lv.argmax(1) == yv).float().mean().item())
    return monitor.close()
