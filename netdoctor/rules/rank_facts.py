"""Facts about the ranks of a distributed run that the rank rules share.

A distributed log holds, besides rank 0's own tables, one row per rank and step (``run.ranks``,
``RankField`` columns) and events about the other ranks (kind 'rank'). These helpers line the
ranks up at equal steps and name them the same way in every message.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from netdoctor.runlog.run_data import Event, RunData
from netdoctor.runlog.schema import RankField


def rank_names(ranks: Iterable[int]) -> str:
    """'rank 1', 'ranks 1 and 3', 'ranks 0, 2 and 5'."""
    ordered = sorted(set(ranks))
    if len(ordered) == 1:
        return f"rank {ordered[0]}"
    head = ", ".join(str(r) for r in ordered[:-1])
    return f"ranks {head} and {ordered[-1]}"


def row_at(run: RunData, rank: int, step: int) -> np.ndarray | None:
    """The rank's row for optimizer step ``step``, or None when it sent none."""
    rows = run.ranks.get(rank)
    if rows is None:
        return None
    found = np.nonzero(rows[:, RankField.STEP] == step)[0]
    return rows[int(found[0])] if found.size else None


def rank_hosts(run: RunData) -> dict[int, str]:
    """Host name of each rank that said so (meta['distributed']['ranks'])."""
    distributed = run.meta.get("distributed")
    ranks = distributed.get("ranks") if isinstance(distributed, dict) else None
    hosts: dict[int, str] = {}
    if isinstance(ranks, dict):
        for key, info in ranks.items():
            if str(key).isdigit() and isinstance(info, dict) and isinstance(info.get("host"), str):
                hosts[int(key)] = info["host"]
    return hosts


def distributed_fact(run: RunData, key: str) -> Any:
    """One entry of meta['distributed'] (None when absent or not a distributed log)."""
    distributed = run.meta.get("distributed")
    return distributed.get(key) if isinstance(distributed, dict) else None


def event_rank(event: Event) -> int | None:
    rank = event.data.get("rank")
    return rank if isinstance(rank, int) and not isinstance(rank, bool) and rank >= 0 else None


def flush_every(run: RunData) -> int:
    """Steps between flushes of the run (meta['sampling']); 64, watch()'s default, if unknown."""
    sampling = run.meta.get("sampling")
    value = sampling.get("flush_every") if isinstance(sampling, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 64
