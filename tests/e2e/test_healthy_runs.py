"""Healthy hand-written loops of several kinds: no warning and no error, ever."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import netdoctor
from netdoctor.diagnosis import Severity


def _loud(diagnoses):
    return [d for d in diagnoses if d.severity in (Severity.ERROR, Severity.WARNING)]


def _bars(n, seed):
    """12x12 images with one horizontal or vertical bar (class 0/1) plus noise."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 12, 12, generator=g) * 0.3
    y = torch.randint(0, 2, (n,), generator=g)
    pos = torch.randint(2, 10, (n,), generator=g)
    for i in range(n):
        if y[i] == 0:
            x[i, 0, pos[i], :] += 1.0
        else:
            x[i, 0, :, pos[i]] += 1.0
    return x, y


def test_small_cnn_with_batchnorm_is_healthy(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(16, 2),
    )
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    x, y = _bars(256, 0)
    xv, yv = _bars(128, 1)
    with netdoctor.watch(model, opt, log=tmp_path / "cnn.sqlite") as monitor:
        for _ in range(6):
            model.train()
            for i in range(0, 256, 32):
                opt.zero_grad()
                loss = F.cross_entropy(model(x[i:i + 32]), y[i:i + 32])
                loss.backward()
                opt.step()
                monitor.step(loss)
            model.eval()
            with torch.no_grad():
                out = model(xv)
            monitor.epoch(val_loss=F.cross_entropy(out, yv).item(),
                          val_acc=(out.argmax(1) == yv).float().mean().item())
    assert _loud(monitor.close()) == []


class SeqClassifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(1, 32, num_layers=2, batch_first=True)
        self.head = nn.Linear(32, 2)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


def test_two_layer_lstm_is_healthy(tmp_path):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(384, 20, 1, generator=g)
    y = (x.sum(dim=(1, 2)) > 0).long()  # is the sequence's sum positive?
    model = SeqClassifier()
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    with netdoctor.watch(model, opt, log=tmp_path / "lstm.sqlite") as monitor:
        for _ in range(5):
            total = 0.0
            for i in range(0, 320, 32):
                opt.zero_grad()
                loss = F.cross_entropy(model(x[i:i + 32]), y[i:i + 32])
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                monitor.step(loss)
                total += loss.item()
            with torch.no_grad():
                val = F.cross_entropy(model(x[320:]), y[320:]).item()
            monitor.epoch(train_loss=total / 10, val_loss=val)
    assert _loud(monitor.close()) == []


def test_regularised_mlp_with_sgd_momentum_and_scheduler_is_healthy(tmp_path):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(512, 10, generator=g)
    w = torch.randn(10, 1, generator=g)
    y = torch.sin(x @ w) + 0.05 * torch.randn(512, 1, generator=g)
    model = nn.Sequential(nn.Linear(10, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Dropout(0.2),
                          nn.Linear(64, 64), nn.ReLU(), nn.Dropout(0.2), nn.Linear(64, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.5)
    with netdoctor.watch(model, opt, log=tmp_path / "mlp.sqlite",
                         chance_loss=float(y[:384].var())) as monitor:
        for _ in range(15):
            model.train()
            for i in range(0, 384, 32):
                opt.zero_grad()
                loss = F.mse_loss(model(x[i:i + 32]), y[i:i + 32])
                loss.backward()
                opt.step()
                monitor.step(loss)
            sched.step()
            model.eval()
            with torch.no_grad():
                monitor.epoch(val_loss=F.mse_loss(model(x[384:]), y[384:]).item())
    assert _loud(monitor.close()) == []
