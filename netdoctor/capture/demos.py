"""Small hand-written training loops, each showing one classic failure (or none), under watch().

They are what ``netdoctor demo`` runs and what the end-to-end tests train: plain PyTorch loops
as a user writes them, seconds each on one CPU core. Each one states the bug it contains.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from netdoctor.capture.watch import watch
from netdoctor.recipes.data import spirals


def mlp(sizes: list[int], act: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


def _train_classifier(
    model: nn.Module, opt: torch.optim.Optimizer, log: Path, data: tuple[torch.Tensor, ...],
    epochs: int, batch: int, loss_fn: Callable[..., torch.Tensor] = F.cross_entropy,
    val: tuple[torch.Tensor, ...] | None = None,
) -> None:
    x, y = data
    with watch(model, opt, log=log) as monitor:
        for _ in range(epochs):
            model.train()
            total, correct, seen = 0.0, 0, 0
            for i in range(0, len(x), batch):
                xb, yb = x[i:i + batch], y[i:i + batch]
                opt.zero_grad()
                out = model(xb)
                loss = loss_fn(out, yb)
                loss.backward()
                opt.step()
                monitor.step(loss)
                total += loss.item() * len(xb)
                correct += int((out.argmax(1) == yb).sum())
                seen += len(xb)
            metrics = {"train_loss": total / seen, "train_acc": correct / seen}
            if val is not None:
                model.eval()
                with torch.no_grad():
                    vout = model(val[0])
                    metrics["val_loss"] = float(F.cross_entropy(vout, val[1]))
                    metrics["val_acc"] = float((vout.argmax(1) == val[1]).float().mean())
            monitor.epoch(**metrics)


def healthy(log: Path, seed: int = 0) -> None:
    """A ReLU MLP with He init and Adam on spirals: learns, nothing to report."""
    torch.manual_seed(seed)
    model = mlp([2, 64, 64, 3])
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)
    data, val = spirals(600, seed=seed), spirals(300, seed=seed + 1)
    _train_classifier(model, torch.optim.Adam(model.parameters(), lr=3e-3), log, data, 15, 32,
                      val=val)


def exploding(log: Path, seed: int = 0) -> None:
    """Bug: features on very different scales (up to 20x) fed unnormalised to SGD with momentum
    and a learning rate past the stability limit: each update overshoots more than the last, so
    the gradient norm grows geometrically until it overflows to inf/NaN."""
    g = torch.Generator().manual_seed(seed)
    scales = torch.tensor([1.0, 2.0, 5.0, 10.0, 20.0, 1.0, 1.0, 3.0])
    x = torch.randn(512, 8, generator=g) * scales
    y = x @ torch.randn(8, 1, generator=g) + 0.1 * torch.randn(512, 1, generator=g)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(8, 1))
    opt = torch.optim.SGD(model.parameters(), lr=6e-3, momentum=0.9)
    with watch(model, opt, log=log) as monitor:
        for _ in range(6):
            total = 0.0
            for i in range(0, len(x), 32):
                opt.zero_grad()
                loss = F.mse_loss(model(x[i:i + 32]), y[i:i + 32])
                loss.backward()
                opt.step()
                monitor.step(loss)
                total += loss.item()
            monitor.epoch(train_loss=total / (len(x) // 32))


def vanishing(log: Path, seed: int = 0) -> None:
    """Bug: ten sigmoid layers with default init: each sigmoid scales gradients by at most 1/4,
    so the first layers get almost none and stop learning."""
    torch.manual_seed(seed)
    model = mlp([2] + [32] * 10 + [3], act=nn.Sigmoid)
    _train_classifier(model, torch.optim.SGD(model.parameters(), lr=0.1), log,
                      spirals(600, seed=seed), 10, 32, val=spirals(300, seed=seed + 1))


def nan_loss(log: Path, seed: int = 0) -> None:
    """Bug: a hand-written cross-entropy, -log(softmax(logits)): once a probability underflows
    to 0 the log is -inf and the loss is inf/NaN. F.cross_entropy on logits never does this."""
    torch.manual_seed(seed)
    model = mlp([2, 64, 64, 3])

    def handmade_ce(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        probs = torch.softmax(out * 50.0, dim=1)  # a "temperature" typo makes logits huge
        return -torch.log(probs[torch.arange(len(y)), y]).mean()

    _train_classifier(model, torch.optim.SGD(model.parameters(), lr=0.05), log,
                      spirals(600, seed=seed), 5, 32, loss_fn=handmade_ce)


def overfitting(log: Path, seed: int = 0) -> None:
    """Bug: a large network trained for many epochs on 40 samples with noisy labels and no
    regularisation: it memorises the training set and validation loss climbs."""
    torch.manual_seed(seed)
    x, y = spirals(40, noise=0.5, seed=seed)
    flip = torch.rand(len(y)) < 0.25
    y = torch.where(flip, (y + 1) % 3, y)
    model = mlp([2, 256, 256, 3])
    _train_classifier(model, torch.optim.Adam(model.parameters(), lr=1e-2), log, (x, y), 80, 20,
                      val=spirals(600, noise=0.5, seed=seed + 1))


def underfitting(log: Path, seed: int = 0) -> None:
    """Bug: a linear model (no hidden layer) for spirals, which no straight line can separate:
    the loss stays near chance, log(3) = 1.10, however long it trains."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(2, 3))
    _train_classifier(model, torch.optim.Adam(model.parameters(), lr=1e-2), log,
                      spirals(600, seed=seed), 15, 32, val=spirals(300, seed=seed + 1))


#: name -> (one-line description, training function)
_DEMOS: dict[str, tuple[str, Callable[[Path, int], None]]] = {
    "healthy": ("ReLU MLP, He init, Adam on spirals: nothing to report", healthy),
    "exploding": ("unscaled features and a too-high SGD learning rate: gradients grow into inf",
                  exploding),
    "vanishing": ("ten sigmoid layers: the first layers get no gradient", vanishing),
    "nan": ("-log(softmax(x)) written by hand: the loss becomes inf/NaN", nan_loss),
    "overfitting": ("big net, 40 noisy samples, 80 epochs: validation loss climbs", overfitting),
    "underfitting": ("a linear model on spirals: the loss stays near chance", underfitting),
}

#: name -> one-line description (what `netdoctor demo --help` lists)
DEMOS: dict[str, str] = {name: text for name, (text, _) in _DEMOS.items()}


def run_demo(name: str, log: Path, seed: int = 0) -> None:
    """Train the named demo under watch(), writing ``log``. Raises KeyError for unknown names."""
    _, train = _DEMOS[name]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the demo models are tiny: more threads only add contention
    try:
        train(Path(log), seed)
    finally:
        torch.set_num_threads(threads)
