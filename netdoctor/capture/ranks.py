"""Which process of a distributed run writes the log.

Under DDP the gradients, weights and updates are the same on every rank after the all-reduce,
so rank 0's log already holds them. The other ranks get a :class:`QuietMonitor`: the same API,
no hooks, no file, so a script runs unchanged under ``torchrun``. (Per-rank losses, non-finite
values and stragglers need the ranks to send statistics to rank 0: not done yet.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch.distributed as dist

from netdoctor.diagnosis import Diagnosis


def rank_and_world() -> tuple[int, int]:
    """(rank, world size) of this process; (0, 1) outside an initialised process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class QuietMonitor:
    """What ``watch()`` returns on ranks other than 0: accepts every call, records nothing."""

    def __init__(self, log_path: Path, rank: int) -> None:
        self.log_path = log_path
        self.rank = rank
        self._closed = False
        self._steps = 0

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def steps(self) -> int:
        return self._steps

    def step(self, loss: Any = None) -> None:
        self._steps += 1

    def epoch(
        self,
        train_loss: Any = None,
        val_loss: Any = None,
        train_acc: Any = None,
        val_acc: Any = None,
        **metrics: Any,
    ) -> None:
        """Same signature as ``Monitor.epoch``; other ranks' metrics are not recorded."""

    def close(self, rules: Any = None) -> list[Diagnosis]:
        """Rank 0 holds the diagnoses; here there are none."""
        self._closed = True
        return []

    def __enter__(self) -> QuietMonitor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
