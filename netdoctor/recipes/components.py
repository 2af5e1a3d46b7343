"""The pieces a recipe names by a word: the device, the optimizer, the learning-rate schedule,
the loss, and how accuracy is counted."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from netdoctor.errors import ConfigError
from netdoctor.recipes.spec import LossSpec, OptimizerSpec, ScheduleSpec


def resolve_device(name: str, where: str = "train.device") -> torch.device:
    """``auto`` | ``cpu`` | ``cuda`` | ``cuda:N`` | ``mps`` as a device this machine has;
    ConfigError saying why not otherwise."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            why = ("this torch was built without CUDA" if torch.version.cuda is None
                   else "no CUDA GPU is visible")
            raise ConfigError(f"{where} = {name!r}: CUDA is not available ({why}, torch "
                              f"{torch.__version__}); use --device cpu or auto")
        index = int(name.partition(":")[2] or 0)
        count = torch.cuda.device_count()
        if index >= count:
            raise ConfigError(f"{where} = {name!r}: this machine has {count} CUDA device"
                              f"{'s' if count != 1 else ''} (cuda:0 to cuda:{count - 1})")
        return torch.device("cuda", index)
    if name == "mps":
        if not _mps_available():
            raise ConfigError(f"{where} = 'mps': Apple's MPS backend is not available here; "
                              "use --device cpu or auto")
        return torch.device("mps")
    raise ConfigError(f"{where} = {name!r} is not one of auto, cpu, cuda, cuda:N, mps")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def make_optimizer(spec: OptimizerSpec, model: nn.Module) -> torch.optim.Optimizer:
    """Every parameter goes to the optimizer, frozen ones too (they get no gradient and are
    skipped): unfreezing then needs no new optimizer."""
    params = list(model.parameters())
    if spec.kind == "sgd":
        return torch.optim.SGD(params, lr=spec.lr, momentum=spec.momentum,
                               weight_decay=spec.weight_decay)
    if spec.kind == "adam":
        return torch.optim.Adam(params, lr=spec.lr, weight_decay=spec.weight_decay)
    if spec.kind == "adamw":
        return torch.optim.AdamW(params, lr=spec.lr, weight_decay=spec.weight_decay)
    raise ConfigError(f"optimizer.kind = {spec.kind!r} is not one of sgd, adam, adamw")


def make_scheduler(spec: ScheduleSpec, optimizer: torch.optim.Optimizer, epochs: int) -> Any:
    """The learning-rate schedule, stepped once per epoch (plateau: on the validation loss)."""
    sched = torch.optim.lr_scheduler
    if spec.kind == "none":
        return None
    if spec.kind == "step":
        return sched.StepLR(optimizer, step_size=spec.step_size, gamma=spec.gamma)
    if spec.kind == "exponential":
        return sched.ExponentialLR(optimizer, gamma=spec.gamma)
    if spec.kind == "cosine":
        return sched.CosineAnnealingLR(optimizer, T_max=max(epochs, 1))
    if spec.kind == "plateau":
        return sched.ReduceLROnPlateau(optimizer, mode="min", factor=spec.factor,
                                       patience=spec.patience)
    raise ConfigError(f"schedule.kind = {spec.kind!r} is not one of none, step, exponential, "
                      "cosine, plateau")


LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def make_loss(spec: LossSpec, classification: bool, where: str) -> LossFn:
    kind = spec.kind
    if kind == "auto":
        kind = "cross_entropy" if classification else "mse"
    if kind in ("cross_entropy", "manual_log_softmax") and not classification:
        raise ConfigError(f"{where}: loss.kind = {spec.kind!r} needs class labels; this task is "
                          "a regression (use 'mse' or 'auto')")
    if kind == "cross_entropy":
        return F.cross_entropy
    if kind == "manual_log_softmax":
        return _manual_log_softmax
    if classification:
        return _mse_one_hot
    return _mse


def _manual_log_softmax(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """-log(softmax(x)) written by hand, the unstable way on purpose: a probability that
    underflows to 0 makes the loss inf, which F.cross_entropy (log-sum-exp) never does."""
    probs = torch.softmax(out, dim=1)
    return -torch.log(probs.gather(1, y.unsqueeze(1))).mean()


def _mse_one_hot(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(out, F.one_hot(y, out.shape[1]).to(out.dtype))


def _mse(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if y.shape != out.shape and y.numel() == out.numel():
        y = y.reshape(out.shape)  # (n,) targets for an (n, 1) output
    return F.mse_loss(out, y.to(out.dtype))


def correct_count(out: Any, y: torch.Tensor) -> tuple[torch.Tensor, int] | None:
    """(number right, number judged) of a classification batch, on the device."""
    if not isinstance(out, torch.Tensor) or out.dim() < 2:
        return None
    pred = out.argmax(dim=1)
    if pred.shape != y.shape:
        return None
    return (pred == y).sum(), y.numel()
