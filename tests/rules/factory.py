"""Build a ``RunData`` straight from numpy series, the way the reader would hand it to rules.

Tests describe a run by what matters to a rule (the loss per step, the grad norm per step, the
RMS gradient of each layer on sampled steps, the epoch metrics, the events) and get back the
same typed record a real log produces, with the flags the capture side would have set.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from netdoctor.runlog.run_data import EpochRecord, Event, ParamInfo, RunData, SiteInfo
from netdoctor.runlog.schema import ActStat, ParamStat, StepField, StepFlag


@dataclass(frozen=True)
class Layer:
    """One module in forward order: an output site, plus a weight when ``weight`` is given."""

    module: str
    module_type: str = "Linear"
    family: str = "linear"
    out_shape: tuple[int, ...] = (32, 64)
    weight: tuple[int, ...] | None = (64, 64)


def act(module: str, module_type: str = "ReLU", family: str = "relu") -> Layer:
    """A parameter-free activation module."""
    return Layer(module, module_type, family, (32, 64), None)


def mlp(
    depth: int = 3,
    width: int = 64,
    n_in: int = 20,
    n_out: int = 10,
    activation: str = "ReLU",
    family: str = "relu",
) -> list[Layer]:
    """Linear layers ``layers.0`` ... with an activation after each hidden one."""
    layers: list[Layer] = []
    fan_in = n_in
    for i in range(depth):
        out = n_out if i == depth - 1 else width
        layers.append(Layer(f"layers.{2 * i}", out_shape=(32, out), weight=(out, fan_in)))
        if i < depth - 1:
            layers.append(act(f"layers.{2 * i + 1}", activation, family))
        fan_in = out
    return layers


def make_run(
    loss: Iterable[float] | None = None,
    *,
    n_steps: int | None = None,
    grad_norm: Iterable[float] | None = None,
    lr: float | Iterable[float] = 1e-3,
    layers: Sequence[Layer] = (),
    layer_rms: np.ndarray | None = None,
    weight_rms: np.ndarray | None = None,
    update_rms: np.ndarray | float | None = None,
    unit_spread: np.ndarray | float = 1.0,
    input_scale: float | None = None,
    sample_every: int = 10,
    sample_steps: Iterable[int] | None = None,
    grad_nonfinite: Iterable[int] = (),
    act_nonfinite: Iterable[int] = (),
    no_loss: Iterable[int] = (),
    epochs: Sequence[Mapping[str, float]] = (),
    epoch_steps: Sequence[int] | None = None,
    events: Sequence[Event] = (),
    task: Mapping[str, Any] | None = None,
    optimizer: Mapping[str, Any] | None = None,
    status: str = "finished",
    writer_alive: bool = False,
) -> RunData:
    """A run of ``n_steps`` optimizer steps (default: the length of ``loss``).

    ``layer_rms`` is (samples, layers-with-weights) RMS gradients on the sampled steps; the
    factory stores the norms (RMS × sqrt(numel)) as the capture side does, and likewise for
    ``weight_rms`` (default: He's scale) and ``update_rms`` (the optimizer's change per step;
    default: not measured); ``unit_spread`` is each weight's ParamStat.UNIT_SPREAD (default 1,
    a random init's units). ``input_scale`` adds an input site before the first layer whose
    values have that standard deviation; ``optimizer`` goes to the meta as ``watch`` writes it.
    Non-finite losses get LOSS_NONFINITE; rows in ``grad_nonfinite``/``act_nonfinite`` get their
    flags (and a NaN grad norm); ``epochs`` are metric dicts, spread evenly over the steps unless
    ``epoch_steps``.
    """
    loss_arr = None if loss is None else np.asarray(list(loss), dtype=np.float64)
    n = n_steps if n_steps is not None else (0 if loss_arr is None else loss_arr.size)
    steps = np.zeros((n, len(StepField)))
    steps[:, StepField.STEP] = np.arange(n)
    steps[:, StepField.LOSS] = math.nan if loss_arr is None else loss_arr
    steps[:, StepField.GRAD_NORM] = 1.0 if grad_norm is None else np.asarray(list(grad_norm))
    steps[:, StepField.LR] = lr if isinstance(lr, (int, float)) else np.asarray(list(lr))
    steps[:, StepField.TIME] = np.arange(n) * 0.01
    steps[:, StepField.MICRO_BATCHES] = 1
    flags = np.zeros(n, dtype=np.int64)
    if loss_arr is None:
        flags |= StepFlag.NO_LOSS
    else:
        flags[~np.isfinite(loss_arr)] |= StepFlag.LOSS_NONFINITE
    for row in no_loss:
        flags[row] |= StepFlag.NO_LOSS
        flags[row] &= ~StepFlag.LOSS_NONFINITE
        steps[row, StepField.LOSS] = math.nan
    for row in grad_nonfinite:
        flags[row] |= StepFlag.GRAD_NONFINITE
        steps[row, StepField.GRAD_NORM] = math.nan
    for row in act_nonfinite:
        flags[row] |= StepFlag.ACT_NONFINITE

    sites = tuple(
        SiteInfo(
            i,
            layer.module,
            layer.module,
            layer.module_type,
            "output",
            layer.family,
            i + 1,
            layer.out_shape,
        )
        for i, layer in enumerate(layers)
    )
    if input_scale is not None and layers:
        first = layers[0]
        inp = SiteInfo(
            len(sites),
            f"{first.module} (input)",
            first.module,
            first.module_type,
            "input",
            "input",
            0,
            None,
        )
        sites = (*sites, inp)
    weighted = [(layer.module, layer.weight) for layer in layers if layer.weight is not None]
    params = tuple(
        ParamInfo(i, f"{module}.weight", module, shape, int(np.prod(shape)), True, True)
        for i, (module, shape) in enumerate(weighted)
    )
    if sample_steps is not None:
        sampled = np.asarray(list(sample_steps), dtype=np.int64)
    elif layer_rms is not None:
        sampled = np.arange(np.asarray(layer_rms).shape[0], dtype=np.int64) * sample_every
    else:
        sampled = np.arange(0, n, sample_every, dtype=np.int64) if weighted else np.zeros(0, int)
    m = sampled.size
    act_arr = np.zeros((m, len(sites), len(ActStat)), dtype=np.float32)
    act_arr[:, :, ActStat.CALLS] = 1
    act_arr[:, :, ActStat.STD] = 1.0  # activations that vary across the batch, as they do
    param_arr = np.zeros((m, len(params), len(ParamStat)), dtype=np.float32)
    param_arr[:, :, ParamStat.HAS_GRAD] = 1
    numel = np.array([p.numel for p in params], dtype=np.float64)
    rms = np.full((m, len(params)), 1e-2) if layer_rms is None else np.asarray(layer_rms)
    param_arr[:, :, ParamStat.GRAD_NORM] = rms * np.sqrt(numel)
    if weight_rms is None:
        fan_in = np.array([np.prod(p.shape[1:]) for p in params], dtype=np.float64)
        w_rms = np.broadcast_to(np.sqrt(2.0 / np.maximum(fan_in, 1)), (m, len(params)))
    else:
        w_rms = np.asarray(weight_rms)
    param_arr[:, :, ParamStat.WEIGHT_NORM] = w_rms * np.sqrt(numel)
    param_arr[:, :, ParamStat.UPDATE_NORM] = (
        math.nan if update_rms is None else np.asarray(update_rms) * np.sqrt(numel)
    )
    param_arr[:, :, ParamStat.UNIT_SPREAD] = np.asarray(unit_spread)
    if input_scale is not None and layers:
        act_arr[:, -1, ActStat.STD] = input_scale
    flags[sampled[sampled < n]] |= StepFlag.SAMPLED
    steps[:, StepField.FLAGS] = flags

    if epoch_steps is None and epochs:
        per = max(1, n // len(epochs))
        epoch_steps = [min(n - 1, (i + 1) * per - 1) for i in range(len(epochs))]
    records = (
        tuple(
            EpochRecord(i, int(epoch_steps[i]), {k: float(v) for k, v in metrics.items()})
            for i, metrics in enumerate(epochs)
        )
        if epochs and epoch_steps is not None
        else ()
    )
    meta: dict[str, Any] = {"status": status, "_writer_alive": writer_alive}
    if task is not None:
        meta["task"] = dict(task)
    if optimizer is not None:
        meta["optimizer"] = dict(optimizer)
    return RunData(
        path="<synthetic>",
        meta=meta,
        sites=sites,
        params=params,
        steps=steps,
        lrs=steps[:, [StepField.LR]].copy(),
        sample_steps=sampled,
        act=act_arr,
        param=param_arr,
        epochs=records,
        events=tuple(events),
    )


def nonfinite_event(
    step: int,
    source: str,
    site: str | None = None,
    module: str | None = None,
    param: str | None = None,
    loss: float | None = math.nan,
) -> Event:
    """The one 'nonfinite' event the capture side writes at the first bad step."""
    data = {
        "source": source,
        "site": site,
        "module": module,
        "param": param,
        "sites": [site] if site else [],
        "params": [param] if param else [],
        "loss": loss,
    }
    return Event(step, "nonfinite", site or param, f"first non-finite {source}", data)


# ---- realistic series -------------------------------------------------------------------------
def noisy_decay(
    n: int,
    start: float = 2.3,
    floor: float = 0.2,
    tau: float | None = None,
    noise: float = 0.15,
    seed: int = 0,
) -> np.ndarray:
    """A minibatch loss: exponential decay to a floor, with multiplicative batch noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    tau = tau or n / 4
    return (floor + (start - floor) * np.exp(-t / tau)) * np.exp(rng.normal(0, noise, n))


def healthy_grad_norm(n: int, rise: float = 10.0, seed: int = 1) -> np.ndarray:
    """Grad norm that rises ``rise``-fold over the first ~30 steps, then settles and drifts down."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    trend = 0.1 * (1 + (rise - 1) * (1 - np.exp(-t / 10))) * np.exp(-t / (3 * n))
    return trend * np.exp(rng.normal(0, 0.3, n))
