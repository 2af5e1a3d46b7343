"""``netdoctor.watch``: attach the doctor to any PyTorch training loop."""

from __future__ import annotations

import os
import platform
import socket
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from netdoctor._version import __version__
from netdoctor.capture.compiled import ran_compiled
from netdoctor.capture.monitor import Monitor
from netdoctor.capture.param_probe import plan_params
from netdoctor.capture.ranks import (
    QuietMonitor,
    RankCollectingWriter,
    RankForwarder,
    RankSetup,
    StepClock,
    backend_name,
    open_channel,
    parameters_replicated,
    rank_and_world,
)
from netdoctor.capture.schedule import SamplingSchedule
from netdoctor.capture.sites import plan_sites
from netdoctor.runlog.writer import RunLogWriter


def watch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    log: str | os.PathLike[str] | None = None,
    *,
    num_classes: int | None = None,
    chance_loss: float | None = None,
    schedule: SamplingSchedule | None = None,
    flush_every: int = 64,
    flush_seconds: float = 2.0,
) -> Monitor | QuietMonitor:
    """Start monitoring ``model`` (and ``optimizer``) and return the :class:`Monitor`.

    Under ``torchrun``/DDP call it on every rank, with the same ``log``: every rank measures the
    same way, rank 0 writes the log, and the other ranks send it their per-step loss, timing,
    non-finite flags, parameter checksums and how they ended (see ``netdoctor.capture.ranks``).
    Only rank 0's ``close()`` returns diagnoses. Calling it on rank 0 alone also works.

    Call ``monitor.step(loss)`` after each ``optimizer.step()``, ``monitor.epoch(...)`` with the
    epoch's metrics, and ``monitor.close()`` at the end (or use ``with watch(...) as monitor:``).

    Args:
        model: the module being trained (a ``torch.compile``'d or DDP-wrapped model is unwrapped
            so the probes sit on the real layers; watch before the first compiled call).
        optimizer: its optimizer. Steps are counted where it really steps (its step hooks), and
            update ratios are measured; None measures gradients at ``monitor.step()`` instead.
        log: the run log to write; default ``runs/<time>-<model class>.sqlite``. An existing
            file at that path is replaced unless another process is writing it.
        num_classes: for classification, the number of classes (sets the chance-level loss
            -log(1/C) that underfitting is measured against; inferred when not given).
        chance_loss: the loss of a model that learned nothing, when you know it (for
            regression: the variance of the targets).
        schedule: when to take full per-layer statistics (default: every step for 32 steps,
            then sparser, at least every 50 steps).
        flush_every: steps kept on the device between writes to the log.
        flush_seconds: also write when this much time passed since the last write.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"netdoctor.watch: model must be a torch.nn.Module, got "
                        f"{type(model).__name__}")
    optimizer = _unwrap_optimizer(optimizer)
    if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"netdoctor.watch: optimizer must be a torch.optim.Optimizer or None, "
                        f"got {type(optimizer).__name__}")
    if flush_every < 1:
        raise ValueError(f"netdoctor.watch: flush_every must be >= 1, got {flush_every}")
    if num_classes is not None and (not isinstance(num_classes, int) or num_classes < 1):
        raise ValueError(
            f"netdoctor.watch: num_classes must be a positive int, got {num_classes!r}")
    inner = _unwrap(model)
    if ran_compiled(inner):
        warnings.warn(
            f"netdoctor.watch: a {type(inner).__name__} already ran under torch.compile in this "
            "process; hooks added now never run inside the graph compiled then (pytorch#117758), "
            "so layer statistics may be missing. Call watch() before the first compiled call, "
            "or torch._dynamo.reset() before watch().", RuntimeWarning, stacklevel=2)
    path = Path(log) if log is not None else _default_log(inner)
    rank, world = rank_and_world()
    channel = open_channel(log, rank, world) if world > 1 else None
    if rank != 0 and channel is None:
        return QuietMonitor(path, rank)
    _close_previous(inner)
    device = _device_of(inner)
    sites, modules = plan_sites(inner)
    params = plan_params(inner, optimizer)
    schedule = schedule or SamplingSchedule()
    task: dict[str, Any] = {}
    if num_classes is not None:
        task["num_classes"] = num_classes
    if chance_loss is not None:
        task["chance_loss"] = float(chance_loss)
    meta = {
        "netdoctor_version": __version__,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "created_at": time.time(),
        "device": str(device),
        "model_class": type(inner).__name__,
        "optimizer": _describe_optimizer(optimizer),
        "n_parameters": sum(p.numel() for p in inner.parameters()),
        "n_trainable": sum(p.numel() for p in inner.parameters() if p.requires_grad),
        "task": task,
        "sampling": {"dense": schedule.dense, "max_interval": schedule.max_interval,
                     "flush_every": flush_every},
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "argv": sys.argv,
        "source": "watch",
        "world_size": world,
    }
    replicated = parameters_replicated(model)
    if world > 1:
        meta["distributed"] = {"backend": backend_name(), "wrapper": type(model).__name__,
                               "replicated": replicated, "ranks_report": channel is not None}
    writer: RunLogWriter | RankForwarder
    if channel is None:
        writer = RunLogWriter(path, meta)
    elif rank == 0:
        writer = RankCollectingWriter(path, meta, channel)
    else:
        writer = RankForwarder(channel, path, {"host": socket.gethostname(), "pid": os.getpid(),
                                               "device": str(device)})
    # on the module the user calls: outside torch.compile's graph, around DDP's forward
    ranks = None if channel is None else RankSetup(rank, world, StepClock(model), replicated)
    monitor = Monitor(inner, optimizer, writer, sites, modules, params, device, schedule,
                      flush_every, flush_seconds, ranks)
    inner.__dict__[_ATTACHED] = monitor
    return monitor


#: Where a model keeps its open monitor: on the model itself, so nothing global outlives it.
_ATTACHED = "_netdoctor_monitor"


def _close_previous(model: nn.Module) -> None:
    """A notebook cell that calls watch() again must not stack a second set of hooks."""
    previous = model.__dict__.get(_ATTACHED)
    if isinstance(previous, Monitor) and not previous.closed:
        warnings.warn(
            f"netdoctor.watch: this model was still watched (log {previous.log_path}); "
            "closing that monitor first", RuntimeWarning, stacklevel=3)
        previous.close()


def _unwrap(model: nn.Module) -> nn.Module:
    """The module whose layers really run: through torch.compile and (Distributed)DataParallel."""
    while True:
        inner = getattr(model, "_orig_mod", None)  # torch.compile's OptimizedModule
        if isinstance(inner, nn.Module):
            model = inner
            continue
        if isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
            model = model.module
            continue
        return model


def _unwrap_optimizer(optimizer: Any) -> Any:
    """The torch optimizer inside a wrapper that is not one itself or does not run its step
    hooks (accelerate's AcceleratedOptimizer): its step hooks fire on real steps only."""
    while (not hasattr(optimizer, "_optimizer_step_pre_hooks")
           and isinstance(getattr(optimizer, "optimizer", None), torch.optim.Optimizer)):
        optimizer = optimizer.optimizer
    return optimizer


def _device_of(model: nn.Module) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


def _default_log(model: nn.Module) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{stamp}-{type(model).__name__}.sqlite"


def _describe_optimizer(optimizer: torch.optim.Optimizer | None) -> dict[str, Any] | None:
    if optimizer is None:
        return None
    groups = []
    for group in optimizer.param_groups:
        groups.append({
            key: (float(v) if isinstance(v, torch.Tensor) and v.numel() == 1 else v)
            for key, v in group.items()
            if key != "params" and isinstance(v, (int, float, bool, str, tuple, list,
                                                  torch.Tensor, type(None)))
        })
    return {"class": type(optimizer).__name__, "groups": groups}
