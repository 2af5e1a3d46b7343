"""Machine-failure classifier: tanh MLP fed raw sensor readings (temperatures ~350 K, rpm ~1500).

What I did: five sensor channels straight from the CSV (air temperature in kelvin, process
temperature, rotational speed in rpm, torque in Nm, tool wear in minutes), no scaling, into a
tanh MLP (I like tanh because it is zero-centred; one nn.Tanh module, used after both hidden
layers), Adam at 1e-3. It learns a little and stalls at 67 % validation accuracy (loss 0.61);
the same network on standardised inputs gets 76 % (loss 0.49) in the same 8 epochs.

Why: the first layer's pre-activations are weights (~U(-0.45, 0.45)) times inputs in the
hundreds and thousands, i.e. a std of ~400: every first-layer tanh is pinned at +-1, where its
derivative is ~0 (the second tanh, fed by those +-1s, is fine). The first layer passes on a
sign pattern and learns almost nothing; only the layers above adapt.

Label: unnormalized_inputs (the cause), saturated_activations (its effect on the tanh layer).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

import netdoctor

EXPECT: tuple[str, ...] = ("saturated_activations", "unnormalized_inputs")


def sensor_log(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    air = 300 + 2 * torch.randn(n, generator=g)
    process = air + 10 + 1 * torch.randn(n, generator=g)
    rpm = 1500 + 180 * torch.randn(n, generator=g)
    torque = 40 + 10 * torch.randn(n, generator=g)
    wear = 240 * torch.rand(n, generator=g)
    power = rpm * torque * 2 * 3.1416 / 60
    risk = ((wear > 200).float() + ((power - 6300).abs() > 1800).float()
            + (process - air < 8.6).float())
    failure = (risk + 0.3 * torch.randn(n, generator=g) > 0.7).long()
    return torch.stack([air, process, rpm, torque, wear], 1), failure


class FailureNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(5, 32)
        self.fc2 = nn.Linear(32, 32)
        self.out = nn.Linear(32, 2)
        self.act = nn.Tanh()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.act(self.fc2(self.act(self.fc1(x)))))


def train(log: Path) -> list:
    torch.manual_seed(40)
    g = torch.Generator().manual_seed(40)
    x, y = sensor_log(3000, g)
    x_tr, y_tr, x_va, y_va = x[:2400], y[:2400], x[2400:], y[2400:]
    net = FailureNet()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    monitor = netdoctor.watch(net, opt, log=log)
    for _epoch in range(8):
        net.train()
        perm = torch.randperm(len(x_tr))
        tl, ok = 0.0, 0
        for i in range(0, len(x_tr), 64):
            idx = perm[i:i + 64]
            logits = net(x_tr[idx])
            loss = loss_fn(logits, y_tr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            monitor.step(loss)
            tl += loss.item() * len(idx)
            ok += (logits.argmax(1) == y_tr[idx]).sum().item()
        net.eval()
        with torch.no_grad():
            lv = net(x_va)
        monitor.epoch(train_loss=tl / len(x_tr), train_acc=ok / len(x_tr),
                      val_loss=loss_fn(lv, y_va).item(),
                      val_acc=(lv.argmax(1) == y_va).float().mean().item())
    return monitor.close()
