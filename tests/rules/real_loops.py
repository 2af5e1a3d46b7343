"""Tiny real training runs under ``netdoctor.watch``, by name: the learning-rate, progress,
frozen and symmetry rules are tested on what the capture side really writes, not only on
synthetic logs.

Each run is a plain loop as a user writes it, trained once per test session (``functools.cache``)
into a temporary folder and read back with the real reader; a test asks for it by name. The sick
ones state their bug; the healthy ones cover what must stay quiet: SGD with momentum, Adam, AdamW
with weight decay, step/cosine/plateau schedules, warm-up, batchnorm, dropout, LSTM/GRU and
fine-tuning with a frozen backbone. torch is imported only when a run is asked for.
"""

from __future__ import annotations

import functools
import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from netdoctor.runlog import open_run
from netdoctor.runlog.run_data import RunData

_DIR = Path(tempfile.mkdtemp(prefix="netdoctor-real-runs-"))


# ---- data ---------------------------------------------------------------------------------------
def _blobs(n: int = 1024, d: int = 32, classes: int = 10, seed: int = 0, spread: float = 1.5):
    import torch

    g = torch.Generator().manual_seed(seed)
    protos = torch.randn(classes, d, generator=g) * spread
    y = torch.randint(0, classes, (n,), generator=g)
    return protos[y] + torch.randn(n, d, generator=g), y


def _spirals(n: int = 600, classes: int = 3, seed: int = 0, turns: float = 1.0):
    import torch

    g = torch.Generator().manual_seed(seed)
    per = n // classes
    xs, ys = [], []
    for c in range(classes):
        r = torch.linspace(0.05, 1.0, per)
        t = (
            torch.linspace(0.0, turns * 2 * math.pi, per)
            + c * 2 * math.pi / classes
            + torch.randn(per, generator=g) * 0.2
        )
        xs.append(torch.stack([r * torch.sin(t), r * torch.cos(t)], dim=1))
        ys.append(torch.full((per,), c, dtype=torch.long))
    x, y = torch.cat(xs), torch.cat(ys)
    order = torch.randperm(len(x), generator=g)
    return x[order], y[order]


def _bars(n: int = 384, seed: int = 0):
    """12x12 images with one horizontal (class 0) or vertical (class 1) bar, plus noise."""
    import torch

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


def _sequences(n: int = 384, length: int = 16, seed: int = 0):
    """Is the sum of the sequence positive? One feature per time step."""
    import torch

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, length, 1, generator=g)
    return x, (x.sum(dim=(1, 2)) > 0).long()


# ---- models -------------------------------------------------------------------------------------
def _mlp(sizes: list[int], act: Any = None, dropout: float = 0.0, batchnorm: bool = False):
    from torch import nn

    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            if batchnorm:
                layers.append(nn.BatchNorm1d(sizes[i + 1]))
            layers.append((act or nn.ReLU)())
            if dropout:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


def _seq_model(cell: str):
    from torch import nn

    class SeqClassifier(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = getattr(nn, cell)(1, 24, batch_first=True)
            self.head = nn.Linear(24, 2)

        def forward(self, x):
            return self.head(self.rnn(x)[0][:, -1])

    return SeqClassifier()


def _cnn():
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, 2),
    )


def _init(model: Any, weight: Callable[[Any], Any]) -> None:
    from torch import nn

    for m in model.modules():
        if isinstance(m, nn.Linear):
            weight(m.weight)
            nn.init.zeros_(m.bias)


# ---- the loop -----------------------------------------------------------------------------------
def _train(
    name: str,
    model: Any,
    opt: Any,
    x: Any,
    y: Any,
    *,
    epochs: int,
    batch: int,
    loss_fn: Callable[..., Any] | None = None,
    step_sched: Any = None,
    epoch_sched: Any = None,
    clip: float | None = None,
    zero_grad_late: bool = False,
    watch_optimizer: bool = True,
    **task: Any,
) -> RunData:
    """A plain loop under ``watch``; returns the run as the reader hands it to the rules."""
    import torch
    import torch.nn.functional as F

    import netdoctor

    loss_fn = loss_fn or F.cross_entropy
    log = _DIR / f"{name}.sqlite"
    watched = opt if watch_optimizer else None
    with netdoctor.watch(model, watched, log=log, **task) as monitor:
        for _ in range(epochs):
            model.train()
            total, count = 0.0, 0
            for i in range(0, len(x), batch):
                if not zero_grad_late:
                    opt.zero_grad()
                loss = loss_fn(model(x[i : i + batch]), y[i : i + batch])
                loss.backward()
                if zero_grad_late:  # the bug: gradients cleared between backward() and step()
                    opt.zero_grad()
                if clip is not None:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
                opt.step()
                if step_sched is not None:
                    step_sched.step()
                monitor.step(loss)
                total, count = total + loss.item(), count + 1
            mean = total / count
            if epoch_sched is not None:
                if isinstance(epoch_sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
                    epoch_sched.step(mean)
                else:
                    epoch_sched.step()
            monitor.epoch(train_loss=mean if math.isfinite(mean) else None)
    monitor.close()
    return open_run(log)


def real(name: str) -> RunData:
    """The named run (see ``RUNS``), trained on first use; the test is skipped without torch."""
    pytest.importorskip("torch")
    return _cached(name)


@functools.cache
def _cached(name: str) -> RunData:
    import torch

    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return RUNS[name]()
    finally:
        torch.set_num_threads(threads)


# ---- healthy ------------------------------------------------------------------------------------
def _sgd_momentum_step() -> RunData:
    import torch

    x, y = _blobs(seed=1)
    model = _mlp([32, 64, 64, 10], dropout=0.2)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.3)
    return _train("sgd_momentum_step", model, opt, x, y, epochs=5, batch=64, epoch_sched=sched)


def _adam_spirals() -> RunData:
    import torch

    x, y = _spirals(seed=2)
    model = _mlp([2, 64, 64, 3])
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    return _train("adam_spirals", model, opt, x, y, epochs=6, batch=32, num_classes=3)


def _adamw_plateau() -> RunData:
    import torch

    x, y = _blobs(seed=3)
    model = _mlp([32, 64, 10], dropout=0.3)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=0, factor=0.3)
    return _train("adamw_plateau", model, opt, x, y, epochs=5, batch=64, epoch_sched=sched)


def _warmup_cosine() -> RunData:
    """A linear warm-up from ~0, then a cosine decay all the way to zero (an annealed tail)."""
    import torch

    x, y = _blobs(seed=4)
    model = _mlp([32, 64, 10])
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    total, warm = 5 * 16, 20

    def factor(s: int) -> float:
        if s < warm:
            return (s + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (s - warm) / (total - warm))))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    return _train("warmup_cosine", model, opt, x, y, epochs=5, batch=64, step_sched=sched)


def _batchnorm_high_sgd() -> RunData:
    import torch

    x, y = _blobs(seed=5)
    model = _mlp([32, 64, 64, 10], batchnorm=True)
    opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    return _train("batchnorm_high_sgd", model, opt, x, y, epochs=4, batch=64)


def _cnn_sgd() -> RunData:
    import torch

    x, y = _bars(n=512, seed=31)
    model = _cnn()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=5 * 16)
    return _train("cnn_sgd", model, opt, x, y, epochs=5, batch=32, step_sched=sched)


def _lstm_adam() -> RunData:
    import torch

    x, y = _sequences(seed=7)
    model = _seq_model("LSTM")
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    return _train("lstm_adam", model, opt, x, y, epochs=5, batch=32, clip=1.0)


def _gru_sgd() -> RunData:
    import torch

    x, y = _sequences(seed=8)
    model = _seq_model("GRU")
    opt = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
    return _train("gru_sgd", model, opt, x, y, epochs=5, batch=32, clip=1.0)


def _frozen_backbone() -> RunData:
    """Fine-tuning on purpose: a pretrained body frozen (requires_grad=False), a new head."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    x, y = _blobs(seed=9)
    body = _mlp([32, 64, 32])
    pre = nn.Sequential(body, nn.ReLU(), nn.Linear(32, 10))
    pre_opt = torch.optim.Adam(pre.parameters(), lr=3e-3)
    for i in range(0, len(x), 64):  # "pretraining": one quick pass
        pre_opt.zero_grad()
        F.cross_entropy(pre(x[i : i + 64]), y[i : i + 64]).backward()
        pre_opt.step()
    for p in body.parameters():
        p.requires_grad_(False)
    model = nn.Sequential(body, nn.ReLU(), nn.Linear(32, 10))
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    return _train("frozen_backbone", model, opt, x, y, epochs=3, batch=64, num_classes=10)


# ---- sick ---------------------------------------------------------------------------------------
def _sgd_lr_one() -> RunData:
    """Bug: SGD with momentum at lr=1 on an MLP: it learns, then overshoots and diverges."""
    import torch

    x, y = _blobs(seed=10)
    model = _mlp([32, 64, 64, 10])
    opt = torch.optim.SGD(model.parameters(), lr=1.0, momentum=0.9)
    return _train("sgd_lr_one", model, opt, x, y, epochs=3, batch=64)


def _correlated_regression() -> RunData:
    """Bug: linear regression on 24 correlated, standardised channels at SGD lr=0.3: the
    curvature along their common direction is ~40, so every step overshoots ×11 from the start
    and the loss overflows within a few dozen steps."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    g = torch.Generator().manual_seed(24)
    common = torch.randn(1280, 1, generator=g)
    x = 0.92 * common + 0.39 * torch.randn(1280, 24, generator=g)
    y = (x @ (torch.randn(24, generator=g) * 0.3) + 0.1 * torch.randn(1280, generator=g))[:, None]
    model = nn.Linear(24, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.3)
    return _train("correlated_regression", model, opt, x, y, epochs=2, batch=64, loss_fn=F.mse_loss)


def _logistic_sgd_fifty() -> RunData:
    """Bug: logistic regression with lr=50: every step overshoots, the loss bounces for good."""
    import torch
    from torch import nn

    g = torch.Generator().manual_seed(11)
    x = torch.randn(2400, 20, generator=g)
    y = (x[:, :3].sum(1) + 0.3 * torch.randn(2400, generator=g) > 0).long()
    model = nn.Linear(20, 2)
    opt = torch.optim.SGD(model.parameters(), lr=50.0)
    return _train("logistic_sgd_fifty", model, opt, x, y, epochs=2, batch=50, num_classes=2)


def _cnn_sgd_two() -> RunData:
    """Bug: a CNN without batchnorm at SGD lr=2 with momentum: the loss climbs and stalls."""
    import torch

    x, y = _bars(n=512, seed=31)
    model = _cnn()
    opt = torch.optim.SGD(model.parameters(), lr=2.0, momentum=0.9)
    return _train("cnn_sgd_two", model, opt, x, y, epochs=5, batch=32)


def _adam_jump() -> RunData:
    """Bug: Adam at lr=0.05 on a deep MLP: the first updates throw the loss up, it stalls."""
    import torch

    x, y = _spirals(n=600, seed=13, turns=1.5)
    model = _mlp([2, 128, 128, 128, 3])
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    return _train("adam_jump", model, opt, x, y, epochs=5, batch=32)


def _lstm_sgd_twenty() -> RunData:
    """Bug: an LSTM at SGD lr=20 without clipping: its gradients explode through time."""
    import torch

    x, y = _sequences(seed=14)
    model = _seq_model("LSTM")
    opt = torch.optim.SGD(model.parameters(), lr=20.0)
    return _train("lstm_sgd_twenty", model, opt, x, y, epochs=3, batch=32)


def _raw_inputs() -> RunData:
    """Bug: house-price-like raw columns (thousands) into SGD: the data's scale explodes it."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    g = torch.Generator().manual_seed(15)
    sqft = torch.empty(480).uniform_(600, 4000, generator=g)
    year = torch.empty(480).uniform_(1950, 2020, generator=g)
    x = torch.stack([sqft, year], 1)
    y = ((150 * sqft + 800 * (year - 1950)) / 1e5)[:, None]
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 1))
    opt = torch.optim.SGD(model.parameters(), lr=1e-4)
    return _train("raw_inputs", model, opt, x, y, epochs=4, batch=40, loss_fn=F.mse_loss)


def _sgd_lr_typo() -> RunData:
    """Bug: lr=1e-5 where 1e-2 was meant: the weights barely move."""
    import torch

    x, y = _blobs(seed=16)
    model = _mlp([32, 64, 64, 10])
    opt = torch.optim.SGD(model.parameters(), lr=1e-5, momentum=0.9)
    return _train("sgd_lr_typo", model, opt, x, y, epochs=4, batch=64, num_classes=10)


def _adam_tiny_lr() -> RunData:
    """Bug: Adam at lr=1e-6."""
    import torch

    x, y = _spirals(seed=17)
    model = _mlp([2, 64, 64, 3])
    opt = torch.optim.Adam(model.parameters(), lr=1e-6)
    return _train("adam_tiny_lr", model, opt, x, y, epochs=4, batch=32)


def _scheduler_per_batch() -> RunData:
    """Bug: StepLR(step_size=10, gamma=0.5) meant per epoch, stepped after every batch: the
    rate is a tenth of itself by step 40, while the loss is still falling fast."""
    import torch

    x, y = _blobs(seed=33)
    model = _mlp([32, 64, 10])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.5)
    return _train("scheduler_per_batch", model, opt, x, y, epochs=4, batch=32, step_sched=sched)


def _shuffled_labels() -> RunData:
    """Bug in the data: labels drawn apart from their inputs. There is nothing to learn."""
    import torch

    g = torch.Generator().manual_seed(18)
    x = torch.randn(2048, 8, generator=g)
    y = torch.randint(0, 4, (2048,), generator=g)
    model = _mlp([8, 16, 4])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    return _train("shuffled_labels", model, opt, x, y, epochs=2, batch=32)


def _zero_init() -> RunData:
    """Bug: every layer initialised to zero."""
    import torch
    from torch import nn

    x, y = _spirals(seed=19)
    model = _mlp([2, 64, 64, 3])
    _init(model, nn.init.zeros_)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    return _train("zero_init", model, opt, x, y, epochs=4, batch=32)


def _constant_init() -> RunData:
    """Bug: every weight set to 0.05: each layer's units are copies of each other."""
    import torch
    from torch import nn

    x, y = _blobs(seed=20)
    model = _mlp([32, 64, 64, 10])
    _init(model, lambda w: nn.init.constant_(w, 0.05))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    return _train("constant_init", model, opt, x, y, epochs=3, batch=64)


def _zero_head() -> RunData:
    """Healthy: only the output layer starts at zero (a common choice): symmetry breaks at once."""
    import torch
    from torch import nn

    x, y = _blobs(seed=21)
    model = _mlp([32, 64, 10])
    nn.init.zeros_(model[-1].weight)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    return _train("zero_head", model, opt, x, y, epochs=3, batch=64)


def _missing_from_optimizer() -> RunData:
    """Bug: the optimizer was built from the head only."""
    import torch

    x, y = _blobs(seed=22)
    model = _mlp([32, 64, 64, 10])
    opt = torch.optim.Adam(model[2:].parameters(), lr=1e-3)
    return _train("missing_from_optimizer", model, opt, x, y, epochs=3, batch=64)


def _other_instance() -> RunData:
    """Bug: the optimizer holds the parameters of another instance of the model."""
    import torch

    x, y = _blobs(seed=23)
    model = _mlp([32, 64, 10])
    opt = torch.optim.Adam(_mlp([32, 64, 10]).parameters(), lr=1e-3)
    return _train("other_instance", model, opt, x, y, epochs=3, batch=64, num_classes=10)


def _detached() -> RunData:
    """Bug: the body's output is detached before the head, so the body never learns."""
    import torch
    from torch import nn

    class Detached(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(nn.Linear(32, 64), nn.ReLU())
            self.head = nn.Linear(64, 10)

        def forward(self, x):
            return self.head(self.body(x).detach())

    x, y = _blobs(seed=24)
    model = Detached()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    return _train("detached", model, opt, x, y, epochs=3, batch=64)


def _rounded() -> RunData:
    """Bug: torch.round between two layers: its derivative is zero, the first layer never learns."""
    import torch
    from torch import nn

    class Rounded(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(32, 64), nn.Linear(64, 10)

        def forward(self, x):
            return self.b(torch.round(torch.relu(self.a(x))))

    x, y = _blobs(seed=25)
    model = Rounded()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    return _train("rounded", model, opt, x, y, epochs=3, batch=64)


def _frozen_head() -> RunData:
    """Bug: requires_grad turned off on the output layer instead of the body."""
    import torch

    x, y = _blobs(seed=26)
    model = _mlp([32, 64, 10])
    for p in model[-1].parameters():
        p.requires_grad_(False)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    return _train("frozen_head", model, opt, x, y, epochs=3, batch=64)


def _unused_module() -> RunData:
    """Harmless: a module defined but never called in forward (an unused pretrained pooler)."""
    import torch
    from torch import nn

    class WithPooler(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = _mlp([32, 64, 10])
            self.pooler = nn.Linear(10, 10)

        def forward(self, x):
            return self.body(x)

    x, y = _blobs(seed=27)
    model = WithPooler()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    return _train("unused_module", model, opt, x, y, epochs=3, batch=64)


def _zero_grad_late() -> RunData:
    """Bug: optimizer.zero_grad() between backward() and step(): every step sees zero gradients."""
    import torch

    x, y = _blobs(seed=28)
    model = _mlp([32, 64, 10])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    return _train(
        "zero_grad_late", model, opt, x, y, epochs=3, batch=64, zero_grad_late=True, num_classes=10
    )


def _zero_lr_group() -> RunData:
    """The body's param group has lr=0 (frozen through the rate), the head learns."""
    import torch

    x, y = _blobs(seed=29)
    model = _mlp([32, 64, 10])
    opt = torch.optim.SGD(
        [
            {"params": model[0].parameters(), "lr": 0.0},
            {"params": model[2].parameters(), "lr": 0.05},
        ],
        momentum=0.9,
    )
    return _train("zero_lr_group", model, opt, x, y, epochs=3, batch=64)


def _no_optimizer() -> RunData:
    """A high learning rate, but watch() was not given the optimizer: updates are not measured."""
    import torch

    x, y = _bars(n=512, seed=12)
    model = _cnn()
    opt = torch.optim.SGD(model.parameters(), lr=2.0, momentum=0.9)
    return _train("no_optimizer", model, opt, x, y, epochs=3, batch=32, watch_optimizer=False)


#: name -> how to train it
RUNS: dict[str, Callable[[], RunData]] = {
    "sgd_momentum_step": _sgd_momentum_step,
    "adam_spirals": _adam_spirals,
    "adamw_plateau": _adamw_plateau,
    "warmup_cosine": _warmup_cosine,
    "batchnorm_high_sgd": _batchnorm_high_sgd,
    "cnn_sgd": _cnn_sgd,
    "lstm_adam": _lstm_adam,
    "gru_sgd": _gru_sgd,
    "frozen_backbone": _frozen_backbone,
    "zero_head": _zero_head,
    "sgd_lr_one": _sgd_lr_one,
    "correlated_regression": _correlated_regression,
    "logistic_sgd_fifty": _logistic_sgd_fifty,
    "cnn_sgd_two": _cnn_sgd_two,
    "adam_jump": _adam_jump,
    "lstm_sgd_twenty": _lstm_sgd_twenty,
    "raw_inputs": _raw_inputs,
    "sgd_lr_typo": _sgd_lr_typo,
    "adam_tiny_lr": _adam_tiny_lr,
    "scheduler_per_batch": _scheduler_per_batch,
    "shuffled_labels": _shuffled_labels,
    "zero_init": _zero_init,
    "constant_init": _constant_init,
    "missing_from_optimizer": _missing_from_optimizer,
    "other_instance": _other_instance,
    "detached": _detached,
    "rounded": _rounded,
    "frozen_head": _frozen_head,
    "unused_module": _unused_module,
    "zero_grad_late": _zero_grad_late,
    "zero_lr_group": _zero_lr_group,
    "no_optimizer": _no_optimizer,
}

#: Runs without any problem: none of the rules may warn on them.
HEALTHY = (
    "sgd_momentum_step",
    "adam_spirals",
    "adamw_plateau",
    "warmup_cosine",
    "batchnorm_high_sgd",
    "cnn_sgd",
    "lstm_adam",
    "gru_sgd",
    "frozen_backbone",
    "zero_head",
)
