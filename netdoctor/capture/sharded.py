"""Per-layer norms of FSDP2 (``fully_shard``) parameters from their local shards.

A norm of a whole DTensor is a collective per tensor (and hangs when only some ranks ask), and
``full_tensor()`` gathers the whole layer. Instead each rank takes the norms of its local shards,
squares them, and one SUM all-reduce over the *shard* group gives the squared per-layer norms
(a world reduce would over-count HSDP's replicas). Every rank calls it from the optimizer's step
hooks on the same step-based schedule, so the collectives line up.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist

try:
    from torch.distributed.tensor import DTensor, Shard
except ImportError:  # pragma: no cover - very old torch
    DTensor = Shard = ()  # type: ignore[assignment,misc]

#: Wrapper prefixes FSDP1 and activation checkpointing put into parameter names.
WRAPPER_PARTS = ("_fsdp_wrapped_module.", "_checkpoint_wrapped_module.", "_orig_mod.")


def user_name(name: str) -> str:
    """A parameter name as the user wrote the model: FSDP/checkpoint wrapper parts removed."""
    for part in WRAPPER_PARTS:
        name = name.replace(part, "")
    return name


@dataclass(frozen=True, slots=True)
class ShardGroup:
    """The process group a set of DTensor parameters is sharded over (not the replicas)."""

    group: dist.ProcessGroup

    @staticmethod
    def of(params: list[torch.Tensor]) -> ShardGroup | None:
        """The shard group of the first DTensor parameter sharded along a mesh dimension; None
        for ordinary tensors. FSDP2 shards every parameter of a model over the same mesh."""
        for p in params:
            if isinstance(p, DTensor):
                for dim, placement in enumerate(p.placements):
                    if isinstance(placement, Shard):
                        return ShardGroup(p.device_mesh.get_group(dim))
        return None

    def sum_squares(self, local_norms: torch.Tensor) -> torch.Tensor:
        """Whole-tensor norms from (n,) local-shard norms: one all-reduce of their squares.
        NaN/Inf on any rank propagate into the sum, so every rank sees the non-finite layer."""
        squares = local_norms.square()
        dist.all_reduce(squares, op=dist.ReduceOp.SUM, group=self.group)
        return squares.sqrt()


def local(tensor: torch.Tensor) -> torch.Tensor:
    """This rank's shard of a DTensor; any other tensor as it is."""
    return tensor.to_local() if isinstance(tensor, DTensor) else tensor
