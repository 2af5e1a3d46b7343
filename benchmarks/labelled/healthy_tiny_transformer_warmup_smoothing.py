"""A two-layer Transformer encoder classifying token sequences, with warm-up and label smoothing.

Task: sequences of 12 tokens from a 16-token vocabulary; the class (4 of them) is which of the
tokens 1..4 appears most often. Embedding + learned positions, nn.TransformerEncoder (2 layers,
d_model 32, 4 heads, batch_first), mean pooling, a linear head. AdamW at 2e-3 with a linear
warm-up over 50 steps then inverse-sqrt decay (LambdaLR), CrossEntropyLoss(label_smoothing=0.1),
so the loss floor is ~0.4, not 0.

Label: healthy.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

import netdoctor

EXPECT: tuple[str, ...] = ()

VOCAB, LENGTH, CLASSES = 16, 12, 4


def sample(n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    tokens = torch.randint(0, VOCAB, (n, LENGTH), generator=gen)
    counts = torch.stack([(tokens == t).sum(1) for t in range(1, CLASSES + 1)], 1).float()
    counts += torch.rand(n, CLASSES, generator=gen) * 0.5  # break ties at random
    return tokens, counts.argmax(1)


class TokenClassifier(nn.Module):
    def __init__(self, d_model: int = 32) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, d_model)
        self.pos = nn.Parameter(torch.randn(1, LENGTH, d_model) * 0.02)
        layer = nn.TransformerEncoderLayer(d_model, nhead=4, dim_feedforward=64, dropout=0.1,
                                           batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, CLASSES)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.encoder(self.embed(tokens) + self.pos)
        return self.head(h.mean(1))


def train(log: Path) -> list:
    torch.manual_seed(6)
    gen = torch.Generator().manual_seed(6)
    val_x, val_y = sample(500, gen)
    model = TokenClassifier()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
    warmup = 50
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warmup, (warmup / (s + 1)) ** 0.5))
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)
    monitor = netdoctor.watch(model, opt, log=log)
    for it in range(1, 301):
        model.train()
        x, y = sample(64, gen)
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        monitor.step(loss.detach())
        if it % 60 == 0:
            model.eval()
            with torch.no_grad():
                out = model(val_x)
                monitor.epoch(val_loss=loss_fn(out, val_y).item(),
                              val_acc=(out.argmax(1) == val_y).float().mean().item())
    return monitor.close()
