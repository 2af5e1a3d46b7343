"""Eight-layer ReLU MLP initialised the "small random numbers" way: N(0, 0.01).

What I did: the course notes said "initialise weights with small random numbers", so:
    nn.init.normal_(m.weight, std=0.01); nn.init.zeros_(m.bias)
for every Linear of an 8-hidden-layer, 128-wide ReLU MLP, on a 4-class problem, SGD with momentum
at 0.05, 8 epochs. The loss sat at ln 4 = 1.386 and never moved.

Why: each ReLU layer multiplies the activations' scale by about std * sqrt(fan_in / 2)
= 0.01 * 8 = 0.08, so after 8 layers the signal is ~0.08^8 ~ 2e-9 of the input: the output is
the same (zero) for every input. Backwards the same factor applies, so the first layers'
gradients are ~1e-9 of the last layer's. He init (std = sqrt(2 / fan_in) = 0.125) keeps the
scale constant through the depth.

One more thing happens: the only parameters with a usable gradient are the top layers', and the
top layers' biases drift negative within the first ten steps, so the last hidden ReLU layer ends
with (nearly) every unit at 0 for every sample -- the network is dead at the top as well.

Label: poor_init (the cause: the activation scale collapses geometrically with depth at the
first step), vanishing_gradients (the first layers get ~nothing), dead_relu (the last hidden
layer dies at step ~10, 99-100 % of its units, and stays dead), loss_not_decreasing and
underfitting (flat at the chance loss from the first to the last step). I added dead_relu after
a first run pointed at it and I checked the layer's numbers.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import netdoctor

EXPECT: tuple[str, ...] = ("dead_relu", "loss_not_decreasing", "poor_init", "underfitting",
                           "vanishing_gradients")


def quadrants(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(n, 10, generator=g)
    y = (x[:, 0] > 0).long() * 2 + (x[:, 1] * x[:, 2] > 0).long()
    return x, y


def train(log: Path) -> list:
    torch.manual_seed(120)
    g = torch.Generator().manual_seed(120)
    x, y = quadrants(2400, g)
    xv, yv = quadrants(600, g)
    layers: list[nn.Module] = []
    width_in = 10
    for _ in range(8):
        layers += [nn.Linear(width_in, 128), nn.ReLU()]
        width_in = 128
    layers.append(nn.Linear(128, 4))
    model = nn.Sequential(*layers)
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.01)
            nn.init.zeros_(m.bias)
    loader = DataLoader(TensorDataset(x, y), batch_size=48, shuffle=True,
                        generator=torch.Generator().manual_seed(121))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    monitor = netdoctor.watch(model, opt, log=log)
    for _epoch in range(8):
        model.train()
        tl, hits = 0.0, 0
        for xb, yb in loader:
            opt.zero_grad()
            out = model(xb)
            loss = nn.functional.cross_entropy(out, yb)
            loss.backward()
            opt.step()
            monitor.step(loss)
            tl += loss.item() * len(yb)
            hits += (out.argmax(1) == yb).sum().item()
        model.eval()
        with torch.no_grad():
            ov = model(xv)
        monitor.epoch(train_loss=tl / len(x), train_acc=hits / len(x),
                      val_loss=nn.functional.cross_entropy(ov, yv).item(),
                      val_acc=(ov.argmax(1) == yv).float().mean().item())
    return monitor.close()
