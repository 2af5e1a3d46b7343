"""``replicas_out_of_sync``: the ranks of a DDP run no longer hold the same parameters.

DistributedDataParallel broadcasts rank 0's weights when it wraps the model and then gives every
rank the same averaged gradient, so with the same optimizer the replicas stay bit-identical. Each
rank sends a checksum of its parameters (sum of squares, float64) on the same steps; a difference
beyond float rounding means something changed weights on some ranks outside DDP's update.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from netdoctor.diagnosis import Diagnosis, Severity
from netdoctor.rules.base import Rule, RuleDoc, Threshold
from netdoctor.rules.facts import fmt
from netdoctor.rules.fixes import fix
from netdoctor.rules.rank_facts import distributed_fact, rank_names
from netdoctor.runlog.run_data import RunData
from netdoctor.runlog.schema import RankField

RULE_ID = "replicas_out_of_sync"


def check(run: RunData, th: Mapping[str, float]) -> list[Diagnosis]:
    if len(run.ranks) < 2 or distributed_fact(run, "replicated") is False:
        return []  # sharded parameters (FSDP) are different on every rank by design
    tol = th["rel_tolerance"]
    last_equal: int | None = None
    for step, values in sorted(_checksums(run).items()):
        if len(values) < 2:
            continue
        groups = _groups(values, tol)
        if len(groups) == 1:
            last_equal = step
            continue
        reference = max(groups, key=lambda g: (len(g), 0 in g))
        off = sorted(r for g in groups if g is not reference for r in g)
        ref_value = values[min(reference)]
        worst = max(off, key=lambda r: abs(values[r] - ref_value))
        rel = abs(values[worst] - ref_value) / max(abs(ref_value), 1e-300)
        since = "" if last_equal is None else f" (they matched at step {last_equal})"
        message = (
            f"at step {step} the parameters of {rank_names(off)} no longer match "
            f"{rank_names(reference)}'s{since}: sum of squared weights {values[worst]:.10g} vs "
            f"{ref_value:.10g}, a relative difference of {fmt(rel)}. DDP keeps replicas "
            "identical, so something changed weights on some ranks outside DDP's synchronised "
            "update: a weight edit or checkpoint load under `if rank == 0` after wrapping, a "
            "different optimizer or scheduler per rank, or parameters DDP was told to ignore"
        )
        evidence: dict[str, Any] = {
            "step": step,
            "ranks": off,
            "reference_ranks": sorted(reference),
            "checksums": {str(r): v for r, v in sorted(values.items())},
            "relative_difference": rel,
            "last_equal_step": last_equal,
        }
        return [Diagnosis(RULE_ID, Severity.ERROR, step, None, message, evidence,
                          (fix("sync_replicas"),))]
    return []


def _checksums(run: RunData) -> dict[int, dict[int, float]]:
    """step -> rank -> checksum, on the steps where ranks sent one (NaN ones left out)."""
    table: dict[int, dict[int, float]] = {}
    for rank, rows in run.ranks.items():
        ok = np.isfinite(rows[:, RankField.CHECKSUM])
        for step, value in zip(rows[ok, RankField.STEP], rows[ok, RankField.CHECKSUM],
                               strict=True):
            table.setdefault(int(step), {})[rank] = float(value)
    return table


def _groups(values: dict[int, float], tol: float) -> list[list[int]]:
    """Ranks grouped by equal checksum (within ``tol`` relative), in increasing value."""
    groups: list[list[int]] = []
    anchor = 0.0
    for rank in sorted(values, key=lambda r: values[r]):
        value = values[rank]
        if groups and abs(value - anchor) <= tol * max(abs(anchor), abs(value), 1e-300):
            groups[-1].append(rank)
        else:
            groups.append([rank])
            anchor = value
    return groups


RULE = Rule(
    id=RULE_ID,
    severity=Severity.ERROR,
    title="The ranks of a DDP run no longer hold the same parameters",
    thresholds=(
        Threshold(
            "rel_tolerance",
            1e-6,
            "relative difference between two ranks' parameter checksums (float64 sum of "
            "squares) above which the replicas count as different; equal replicas differ by "
            "float rounding only, around 1e-15",
            "netdoctor; DDP keeps replicas bit-identical (PyTorch DDP design notes)",
        ),
    ),
    fixes=("sync_replicas",),
    doc=RuleDoc(
        what=(
            "In a run whose parameters are replicated on every rank (DDP, not FSDP), the first "
            "step at which the ranks' parameter checksums differ. Every rank computes the sum "
            "of squares of all its parameters on the same steps (multiples of flush_every); "
            "the rule names the ranks that differ from the others, the step, the values, and "
            "the last step at which they still matched."
        ),
        why=(
            "DistributedDataParallel broadcasts rank 0's weights when it wraps the model and "
            "then applies the same averaged gradient on every rank, so replicas stay "
            "bit-identical. Replicas that drift apart train different models: the gradients "
            "averaged each step no longer belong to one set of weights, the checkpoint saved on "
            "rank 0 is not what the other ranks evaluate, and results stop being reproducible."
        ),
        how_to_fix=(
            "Change parameters only through the wrapped model's optimizer step, the same way on "
            "every rank: load checkpoints before wrapping in DDP (it broadcasts rank 0's "
            "weights), never edit weights under `if rank == 0`, build the same optimizer and "
            "scheduler on every rank, and if parameters must change outside training, broadcast "
            "them afterwards with torch.distributed.broadcast(p.data, src=0)."
        ),
        example=(
            "if rank == 0: model.module.load_state_dict(torch.load('best.pt'))  # only rank 0 "
            "changes, the other replicas keep their weights; load before DDP(model) instead"
        ),
    ),
    check=check,
)
