"""Per-layer norms of FSDP2 (``fully_shard``) parameters from their local shards.

A norm of a whole DTensor is a collective per tensor (and hangs when only some ranks ask), and
``full_tensor()`` gathers the whole layer. Instead each rank takes the norms of its local shards,
squares them, and one SUM all-reduce over the *shard* group gives the squared per-layer norms
(a world reduce would over-count HSDP's replicas). Every rank calls it from the optimizer's step
hooks on the same step-based schedule (every rank steps every step under FSDP), so the
collectives line up: one all-reduce per step for gradients, one more on sampled steps for weight
and update norms.

What stays per rank: ``UNIT_SPREAD`` is taken over this rank's rows of a weight (FSDP2 shards
dim 0; FSDP1's flat shards are 1-D, so NaN), and activation statistics are each rank's own
(rank 0's log holds rank 0's view; the rank channel carries the others' non-finite flags).
FSDP1 with ``use_orig_params=False`` exposes only flat parameters: their norms are right, but
layer names cannot be recovered; use ``use_orig_params=True`` or FSDP2 for per-layer rules.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist

try:
    from torch.distributed.tensor import DTensor, Shard
except ImportError:  # pragma: no cover - very old torch
    DTensor = Shard = ()  # type: ignore[assignment,misc]

#: Name parts that FSDP1, activation checkpointing and torch.compile put into module names.
WRAPPER_PARTS = frozenset({"_fsdp_wrapped_module", "_checkpoint_wrapped_module", "_orig_mod"})


def user_name(name: str) -> str:
    """A parameter or module name as the user wrote the model: wrapper parts removed
    (``_fsdp_wrapped_module.encoder._fsdp_wrapped_module.weight`` -> ``encoder.weight``)."""
    return ".".join(part for part in name.split(".") if part not in WRAPPER_PARTS)


@dataclass(frozen=True, slots=True)
class ShardGroup:
    """The process group a set of DTensor parameters is sharded over (not the replicas)."""

    group: dist.ProcessGroup

    @staticmethod
    def of(model: torch.nn.Module, params: list[torch.Tensor]) -> ShardGroup | None:
        """The shard group of the parameters: FSDP2's from the first DTensor sharded along a
        mesh dimension (FSDP2 shards a model's parameters over one mesh), FSDP1's from its
        outermost wrapper (``process_group`` is the shard group, also under HSDP); None for
        ordinary, whole parameters."""
        for p in params:
            if isinstance(p, DTensor):
                for dim, placement in enumerate(p.placements):
                    if isinstance(placement, Shard):
                        return ShardGroup(p.device_mesh.get_group(dim))
        for module in model.modules():
            if type(module).__name__ == "FullyShardedDataParallel":
                return ShardGroup(module.process_group)
        return None

    def grad_norms(self, grads: list[torch.Tensor | None], dtype: torch.dtype,
                   device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(n,) whole-tensor gradient norms and (n,) whether any rank had a gradient, from one
        all-reduce. FSDP1 with ``use_orig_params=True`` leaves a rank with an empty shard and
        no ``.grad`` for layers that other ranks hold, so presence is summed, not assumed."""
        local_grads = [torch.zeros(0, device=device) if g is None else local(g.detach())
                       for g in grads]
        packed = torch.cat([_norms(local_grads, dtype).to(device).square(),
                            torch.tensor([g is not None for g in grads], device=device,
                                         dtype=dtype)])
        dist.all_reduce(packed, op=dist.ReduceOp.SUM, group=self.group)
        n = len(grads)
        return packed[:n].sqrt(), packed[n:] > 0

    def sum_squares(self, local_norms: torch.Tensor) -> torch.Tensor:
        """Whole-tensor norms from (n,) local-shard norms: one all-reduce of their squares.
        NaN/Inf on any rank propagate into the sum, so every rank sees the non-finite layer."""
        squares = local_norms.square()
        dist.all_reduce(squares, op=dist.ReduceOp.SUM, group=self.group)
        return squares.sqrt()


def _norms(tensors: list[torch.Tensor], dtype: torch.dtype) -> torch.Tensor:
    return torch.stack(torch._foreach_norm(tensors, 2, dtype=dtype)) if tensors else (
        torch.zeros(0, dtype=dtype))


def local(tensor: torch.Tensor) -> torch.Tensor:
    """This rank's shard of a DTensor; any other tensor as it is."""
    return tensor.to_local() if isinstance(tensor, DTensor) else tensor
