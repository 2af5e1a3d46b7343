"""Gradient, weight and update norms of every parameter tensor.

Gradients are read from ``.grad`` at the optimizer's step pre-hook: there they are final (after
gradient accumulation, DDP's all-reduce and GradScaler's unscaling) and every setting agrees on
them. Full backward hooks are never used: they break on in-place ops such as ``ReLU(inplace=True)``.

Per step we take one ``torch._foreach_norm`` over all gradients (the total norm and the first
non-finite parameter come from it); weight norms and update norms only on sampled steps.

On the CPU, norms are taken in float32 (four times faster than float64 there) and read back at
once, which costs nothing on the CPU: the few values float32 may have got wrong (non-finite,
or so small that squares underflowed) are taken again in float64, so every number is the one
the float64 path gives. Other devices keep float64 on the device: no host sync per step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from netdoctor.capture.precision import stat_dtype
from netdoctor.capture.sharded import ShardGroup, local, user_name
from netdoctor.capture.sites import root_name
from netdoctor.runlog.schema import GRAD_ABSENT, ParamStat


@dataclass(frozen=True, slots=True)
class ParamSpec:
    idx: int
    name: str  # 'fc1.weight'
    module: str  # 'fc1'
    param: nn.Parameter
    in_optimizer: bool


def plan_params(model: nn.Module, optimizer: torch.optim.Optimizer | None) -> list[ParamSpec]:
    """Every parameter of ``model`` (also frozen ones and ones the optimizer lacks: rules need
    to see those), each with the qualified name of the module that owns it."""
    optimized = set()
    if optimizer is not None:
        for group in optimizer.param_groups:
            optimized.update(id(p) for p in group["params"])
    specs = []
    for name, param in model.named_parameters():
        name = user_name(name)  # FSDP1/checkpoint wrappers: the user's layer names
        module, _, _ = name.rpartition(".")
        module = module or root_name(model)
        specs.append(ParamSpec(len(specs), name, module, param, id(param) in optimized))
    return specs


#: A float32 norm at or above this is as good as the float64 one: elements whose squares underflow
#: (|x| < 1e-19) add at most numel * 1e-38 to a sum of squares of at least 1e-24.
_F32_NORM_MIN = 1e-12
#: A float32 unit spread at or above this is as good as the float64 one (rounding the mean row to
#: float32 moves the spread by about 1e-14 / spread); lower ones decide "symmetric": float64.
_F32_SPREAD_MIN = 1e-2
#: A unit spread from sqrt(1 - units * |mean row|^2 / |W|^2) (no pass over W - mean row) at or
#: above this is within 2e-6 of the direct one: the float32 norms' ~1e-7 error, over 2 spread^2.
_CANCEL_SPREAD_MIN = 0.5
_FAST_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def _norms(tensors: list[torch.Tensor], dtype: torch.dtype, host_checked: bool = False
           ) -> torch.Tensor:
    """(len,) L2 norms in ``dtype`` (see capture.precision); sparse gradients
    (``nn.Embedding(sparse=True)``) handled apart. ``host_checked`` (CPU tensors only): in
    float32, with the doubtful values taken again in ``dtype``."""
    if not tensors:
        return torch.zeros(0, dtype=dtype)
    if all(not t.is_sparse for t in tensors):
        if host_checked and all(t.dtype in _FAST_DTYPES for t in tensors):
            norms = torch.stack(torch._foreach_norm(tensors, 2, dtype=torch.float32))
            redo = [i for i, v in enumerate(norms.tolist()) if not _F32_NORM_MIN <= v < math.inf]
            norms = norms.to(dtype)
            if redo:
                norms[redo] = torch.stack(
                    torch._foreach_norm([tensors[i] for i in redo], 2, dtype=dtype))
            return norms
        return torch.stack(torch._foreach_norm(tensors, 2, dtype=dtype))
    return torch.stack([
        torch.linalg.vector_norm(t.coalesce().values() if t.is_sparse else t, dtype=dtype)
        for t in tensors
    ])


def _unit_spread(weight: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """ParamStat.UNIT_SPREAD of one tensor: 0 when all its units (rows) are the same."""
    if weight.dim() < 2 or weight.shape[0] < 2 or weight.is_sparse:
        return torch.full((), float("nan"), device=weight.device, dtype=dtype)
    rows = weight.reshape(weight.shape[0], -1).to(dtype)
    scale = rows.square().mean().sqrt()
    spread = (rows - rows.mean(dim=0)).square().mean().sqrt()
    ratio = spread / scale.clamp_min(torch.finfo(dtype).tiny)
    # all-zero weights are perfectly symmetric: 0, not 0/0; NaN/Inf weights say nothing: NaN
    return torch.where(scale == 0, torch.zeros_like(ratio),
                       torch.where(torch.isfinite(scale), ratio, torch.full_like(ratio, math.nan)))


def _unit_spreads(params: list[torch.Tensor], weight_norms: torch.Tensor, dtype: torch.dtype,
                  host_checked: bool) -> torch.Tensor:
    """(len,) UNIT_SPREAD of every tensor (``weight_norms``: their norms, already taken).

    ``host_checked`` (CPU tensors only): the spread is ||W - mean row|| / ||W||. Most weights
    need only their mean row (one read of W): spread^2 = 1 - units * |mean row|^2 / |W|^2,
    kept when at least ``_CANCEL_SPREAD_MIN``; else W - mean row is taken in float32, kept when
    at least ``_F32_SPREAD_MIN``; else (where "identical units" is decided, and any doubtful
    value) ``_unit_spread`` takes it in ``dtype``."""
    if not host_checked:
        return torch.stack([_unit_spread(p, dtype) for p in params])
    values = [math.nan] * len(params)
    fast: list[int] = []
    rows_of: list[torch.Tensor] = []
    for i, weight in enumerate(params):
        if weight.dim() < 2 or weight.shape[0] < 2 or weight.is_sparse:
            continue
        if weight.dtype in _FAST_DTYPES:
            rows_of.append(weight.reshape(weight.shape[0], -1).float())
            fast.append(i)
        else:
            values[i] = float(_unit_spread(weight, dtype))
    if not fast:
        return torch.tensor(values, dtype=dtype)
    norms = weight_norms.tolist()
    means = [rows.mean(dim=0) for rows in rows_of]
    mean_norms = torch.stack(torch._foreach_norm(means, 2)).tolist()
    for i, rows, mean, mean_norm in zip(fast, rows_of, means, mean_norms, strict=True):
        norm = norms[i]
        ratio = math.nan
        if 0 < norm < math.inf:
            if _F32_NORM_MIN <= mean_norm < math.inf:  # else its square under/overflowed
                ratio = math.sqrt(max(1.0 - rows.shape[0] * (mean_norm / norm) ** 2, 0.0))
            if not ratio >= _CANCEL_SPREAD_MIN:
                ratio = float(torch.linalg.vector_norm(rows - mean)) / norm
        values[i] = (ratio if _F32_SPREAD_MIN <= ratio < math.inf
                     else float(_unit_spread(params[i], dtype)))
    return torch.tensor(values, dtype=dtype)


class ParamProbe:
    """Reads gradients once per optimizer step; weights and updates on sampled steps."""

    def __init__(self, specs: list[ParamSpec], device: torch.device,
                 model: nn.Module | None = None) -> None:
        self.specs = specs
        self.device = device
        self.dtype = stat_dtype(device)
        self._absent = torch.full((len(specs),), GRAD_ABSENT, device=device, dtype=self.dtype)
        # on the CPU a host read is free: float32 norms, checked there (see _norms)
        self._host_checked = device.type == "cpu"
        self._before: list[torch.Tensor] | None = None  # reused while steps are sampled in a row
        self._snapshot_taken = False
        self._index_cache: dict[tuple[int, ...], torch.Tensor] = {}
        # FSDP1/FSDP2: norms from local shards, one all-reduce over the shard group
        self._shards = None if model is None else ShardGroup.of(model, [s.param for s in specs])

    def grad_norms(self, scale: float | torch.Tensor | None = None) -> tuple[torch.Tensor, bool]:
        """(n_params,) gradient norms, GRAD_ABSENT where ``.grad`` is None; and whether any
        parameter had a gradient. ``scale``: a GradScaler's loss scale the gradients still carry
        (fused optimizers unscale inside their step), divided out here without a host sync."""
        if self._shards is not None:
            norms, has = self._shards.grad_norms([s.param.grad for s in self.specs], self.dtype,
                                                 self.device)
            if scale is not None:
                norms = norms / torch.as_tensor(scale).to(norms.device, self.dtype)
            return torch.where(has, norms, self._absent), True
        present = [s for s in self.specs if s.param.grad is not None]
        if not present:
            return self._absent.clone(), False
        norms = _norms([s.param.grad.detach() for s in present],  # type: ignore[union-attr]
                       self.dtype, self._host_checked)
        if scale is not None:
            norms = norms / torch.as_tensor(scale).to(norms.device, self.dtype)
        if len(present) == len(self.specs):
            return norms.to(self.device), True
        out = self._absent.clone()
        key = tuple(s.idx for s in present)
        index = self._index_cache.get(key)
        if index is None:  # made once per set of parameters with gradients: no copy per step
            index = self._index_cache[key] = torch.tensor(key, device=self.device)
        out.index_copy_(0, index, norms.to(self.device))
        return out, True

    def snapshot(self) -> None:
        """Copy the weights before a sampled optimizer step into one parameter-sized buffer,
        kept while the next steps are sampled too (see ``release``): no allocation per step."""
        params = [local(s.param.detach()) for s in self.specs]
        before = self._before
        if before is None or any(b.shape != p.shape or b.dtype != p.dtype
                                 for b, p in zip(before, params, strict=True)):
            before = self._before = [torch.empty_like(p) for p in params]
        if params:
            with torch.no_grad():
                torch._foreach_copy_(before, params)
        self._snapshot_taken = True

    def release(self) -> None:
        """Free the snapshot buffer: the monitor calls it when the next step is not sampled."""
        self._before = None
        self._snapshot_taken = False

    def sample(self, grad_norms: torch.Tensor) -> torch.Tensor:
        """(n_params, len(ParamStat)) for a sampled step, after the optimizer stepped."""
        params = [local(s.param.detach()) for s in self.specs]
        local_weight = _norms(params, self.dtype, self._host_checked)
        weight = local_weight.to(self.device)
        if self._snapshot_taken and self._before:
            with torch.no_grad():  # before - after, in place: the update's norm, no new buffer
                torch._foreach_sub_(self._before, params)
                update = _norms(self._before, self.dtype, self._host_checked).to(self.device)
            self._snapshot_taken = False
        else:
            update = torch.full_like(weight, float("nan"))
        if self._shards is not None:  # one all-reduce for both, on every rank's sampled step
            weight, update = self._shards.sum_squares(torch.stack([weight, update])).unbind(0)
        out = torch.empty(len(self.specs), len(ParamStat), device=self.device, dtype=self.dtype)
        out[:, ParamStat.HAS_GRAD] = (grad_norms != GRAD_ABSENT).float()
        out[:, ParamStat.GRAD_NORM] = torch.where(
            grad_norms == GRAD_ABSENT, torch.full_like(grad_norms, float("nan")), grad_norms)
        out[:, ParamStat.WEIGHT_NORM] = weight
        out[:, ParamStat.UPDATE_NORM] = update
        with torch.no_grad():
            out[:, ParamStat.UNIT_SPREAD] = _unit_spreads(
                params, local_weight, self.dtype, self._host_checked).to(self.device)
        return out
