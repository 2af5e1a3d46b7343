"""Gradient, weight and update norms of every parameter tensor.

Gradients are read from ``.grad`` at the optimizer's step pre-hook: there they are final (after
gradient accumulation, DDP's all-reduce and GradScaler's unscaling) and every setting agrees on
them. Full backward hooks are never used: they break on in-place ops such as ``ReLU(inplace=True)``.

Per step we take one ``torch._foreach_norm`` over all gradients (the total norm and the first
non-finite parameter come from it); weight norms and update norms only on sampled steps.
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


def _norms(tensors: list[torch.Tensor], dtype: torch.dtype) -> torch.Tensor:
    """(len,) L2 norms in ``dtype`` (see capture.precision); sparse gradients
    (``nn.Embedding(sparse=True)``) handled apart."""
    if not tensors:
        return torch.zeros(0, dtype=dtype)
    if all(not t.is_sparse for t in tensors):
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


class ParamProbe:
    """Reads gradients once per optimizer step; weights and updates on sampled steps."""

    def __init__(self, specs: list[ParamSpec], device: torch.device,
                 model: nn.Module | None = None) -> None:
        self.specs = specs
        self.device = device
        self.dtype = stat_dtype(device)
        self._absent = torch.full((len(specs),), GRAD_ABSENT, device=device, dtype=self.dtype)
        self._before: list[torch.Tensor] | None = None
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
        norms = _norms([s.param.grad.detach() for s in present], self.dtype)  # type: ignore[union-attr]
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
        """Keep the weights before a sampled optimizer step (freed right after the step)."""
        with torch.no_grad():
            self._before = [local(s.param.detach()).clone() for s in self.specs]

    def sample(self, grad_norms: torch.Tensor) -> torch.Tensor:
        """(n_params, len(ParamStat)) for a sampled step, after the optimizer stepped."""
        params = [local(s.param.detach()) for s in self.specs]
        weight = _norms(params, self.dtype).to(self.device)
        if self._before is not None:
            with torch.no_grad():
                deltas = torch._foreach_sub(params, self._before)
                update = _norms(deltas, self.dtype).to(self.device)
            self._before = None
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
            out[:, ParamStat.UNIT_SPREAD] = torch.stack(
                [_unit_spread(p, self.dtype) for p in params]).to(self.device)
        return out
