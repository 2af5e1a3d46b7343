"""``rank_nonfinite``: NaN/Inf appeared on some ranks of a distributed run but not on the others.

Under DDP every rank holds the same weights, so a NaN that one rank's loss or activations produce
while the others stay finite at the same step comes from what only that rank had: its batch.
One step later the NaN reaches every rank through the gradient all-reduce, and rank 0's log then
looks like an ordinary ``nan_loss``; this rule names the rank, the step and where it entered
there, and the engine lists it as the cause of ``nan_loss``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from netdoctor.diagnosis import Diagnosis, Fix, Severity
from netdoctor.rules.base import Rule, RuleDoc, Threshold
from netdoctor.rules.facts import index_of
from netdoctor.rules.fixes import fix
from netdoctor.rules.onset import trend_before
from netdoctor.rules.rank_facts import event_rank, rank_names, row_at
from netdoctor.runlog.run_data import RunData
from netdoctor.runlog.schema import RankField, StepFlag

RULE_ID = "rank_nonfinite"

#: Flags a rank raises from its own batch: its loss or its activations. A non-finite gradient
#: is not one of them: after DDP's all-reduce every rank has the same (NaN) gradient.
_OWN = int(StepFlag.LOSS_NONFINITE | StepFlag.ACT_NONFINITE)
_ANY = _OWN | int(StepFlag.GRAD_NONFINITE)


def check(run: RunData, th: Mapping[str, float]) -> list[Diagnosis]:
    if len(run.ranks) < 2:
        return []
    step = _first_own_nonfinite(run)
    if step is None:
        return []
    rows = {r: row for r in sorted(run.ranks) if (row := row_at(run, r, step)) is not None}
    bad = [r for r, row in rows.items() if int(row[RankField.FLAGS]) & _OWN]
    finite = [r for r in rows if r not in bad]
    if not finite or len(bad) > th["max_bad_fraction"] * len(rows):
        return []  # (nearly) every rank at once: a shared cause, which nan_loss explains
    index = index_of(run, step)
    if index is not None:
        trend = trend_before(run, index, int(th["window"]))
        if trend is not None and trend.growth >= th["growth"] and trend.loss_not_falling:
            return []  # an explosion on every rank that one batch happened to tip over first
    origins = {r: _origin(run, r, step, int(rows[r][RankField.FLAGS])) for r in bad}
    first = origins[bad[0]]
    spread = _spread_step(run, finite, step)
    evidence: dict[str, Any] = {
        "step": step,
        "bad_ranks": bad,
        "finite_ranks": finite,
        "origins": {str(r): o for r, o in origins.items()},
        "losses": {str(r): float(row[RankField.LOSS]) for r, row in rows.items()},
        "spread_step": spread,
    }
    where = _where(bad, first)
    if spread is None:
        reached = ""
    elif spread == step:
        reached = f"; the gradient all-reduce carried it to {rank_names(finite)} at that same step"
    else:
        reached = (f"; it reached {rank_names(finite)} through the gradient all-reduce at "
                   f"step {spread}")
    message = (
        f"NaN/Inf appeared on {rank_names(bad)} only at step {step}, in {where}, while "
        f"{rank_names(finite)} stayed finite{reached}: {_advice(bad, first)}"
    )
    layer = first["module"] if first["source"] == "activation" else None
    return [Diagnosis(RULE_ID, Severity.ERROR, step, layer, message, evidence,
                      tuple(_fixes(bad, first)))]


def _first_own_nonfinite(run: RunData) -> int | None:
    first: int | None = None
    for rows in run.ranks.values():
        hit = np.nonzero(rows[:, RankField.FLAGS].astype(np.int64) & _OWN)[0]
        if hit.size:
            step = int(rows[hit[0], RankField.STEP])
            first = step if first is None else min(first, step)
    return first


def _origin(run: RunData, rank: int, step: int, flags: int) -> dict[str, Any]:
    """Where the rank's first non-finite value entered: its capture side's event for that step
    (rank 0: the log's own 'nonfinite' event), else what its flags say."""
    if rank == 0:
        events = run.events_of("nonfinite")
    else:
        events = [e for e in run.rank_events("nonfinite") if event_rank(e) == rank]
    event = next((e for e in events if e.step == step), None)
    data = event.data if event is not None else {}
    source = data.get("source")
    if source not in ("input", "activation", "loss", "gradient"):
        source = "activation" if flags & StepFlag.ACT_NONFINITE else "loss"
    site, module = data.get("site"), data.get("module")
    return {"source": source, "site": site if isinstance(site, str) else None,
            "module": module if isinstance(module, str) else None}


def _spread_step(run: RunData, finite: list[int], step: int) -> int | None:
    """First step, from ``step`` on, at which one of the finite ranks had any non-finite flag."""
    found: int | None = None
    for rank in finite:
        rows = run.ranks[rank]
        later = rows[rows[:, RankField.STEP] >= step]
        hit = np.nonzero(later[:, RankField.FLAGS].astype(np.int64) & _ANY)[0]
        if hit.size:
            s = int(later[hit[0], RankField.STEP])
            found = s if found is None else min(found, s)
    return found


def _where(bad: list[int], origin: dict[str, Any]) -> str:
    whose = "its" if len(bad) == 1 else f"rank {bad[0]}'s"
    if origin["source"] == "input":
        return f"{whose} input batch"
    if origin["source"] == "activation" and origin["site"]:
        return f"the output of {origin['site']}"
    return f"{whose} loss" if origin["source"] == "loss" else f"{whose} activations"


def _advice(bad: list[int], origin: dict[str, Any]) -> str:
    who = rank_names(bad)
    if origin["source"] == "input":
        return (
            f"the samples {who} read are bad (the model and the learning rate are the same on "
            "every rank): find them with torch.isfinite(x).all() on that rank's batches"
        )
    return (
        f"the weights are the same on every rank, so {who}'s batch drove a division, log or "
        "sqrt without an epsilon (or an overflow) where the others' did not: guard it, and check "
        "that rank's samples for extreme values"
    )


def _fixes(bad: list[int], origin: dict[str, Any]) -> list[Fix]:
    who = rank_names(bad)
    if origin["source"] == "input":
        return [fix(
            "normalize_inputs",
            f"check the samples {who} reads: DistributedSampler gives each rank every "
            "world_size-th index of the shuffled dataset, so one bad record or file shows up on "
            "one rank only; assert torch.isfinite(x).all() on each batch to find it, drop or "
            "repair it, then standardise: x = (x - mean) / std",
        )]
    place = f"the forward of {origin['module']}" if origin["module"] else "the model's forward"
    eps = fix(
        "stable_loss",
        f"look in {place} for a log, sqrt or division of a value that can reach zero on some "
        "batches and guard it with an epsilon: torch.log(x.clamp_min(1e-8)), "
        "(h - mean) / (h.std(0) + 1e-5); compute losses from logits with nn.CrossEntropyLoss",
    )
    return [eps, fix("lower_lr")]


RULE = Rule(
    id=RULE_ID,
    severity=Severity.ERROR,
    title="NaN/Inf on some ranks of a distributed run but not on the others",
    thresholds=(
        Threshold(
            "max_bad_fraction",
            0.5,
            "largest share of the ranks that may go non-finite at the first bad step for the "
            "NaN to count as rank-specific; more ranks at once point at a shared cause",
            "netdoctor",
        ),
        Threshold(
            "window",
            20.0,
            "steps before the first non-finite one over which the grad-norm trend is measured "
            "(as nan_loss)",
            "netdoctor",
        ),
        Threshold(
            "growth",
            10.0,
            "grad-norm growth over that window, with a loss that did not fall, that makes the "
            "NaN the end of an explosion on every rank rather than one rank's batch (as nan_loss)",
            "Pascanu et al. 2013 (exploding gradients end in NaN); netdoctor",
        ),
    ),
    fixes=("normalize_inputs", "stable_loss", "lower_lr"),
    doc=RuleDoc(
        what=(
            "In a distributed run, the first step at which some rank's loss or activations went "
            "NaN/Inf while other ranks stayed finite at that same step. Names the ranks, the "
            "step, and where the value entered on the first of them (its input batch, a layer's "
            "output, or its loss). Not reported when the gradient norm was exploding before "
            "(that is exploding_gradients on every rank) or when most ranks went bad together."
        ),
        why=(
            "Under DistributedDataParallel every rank holds the same weights, so the only thing "
            "that differs between ranks is their data. A NaN from one rank's batch enters the "
            "averaged gradient and, one step later, every rank's weights: rank 0's log then shows "
            "an ordinary NaN, and looking at rank 0's data or the learning rate finds nothing."
        ),
        how_to_fix=(
            "If it entered in the input batch, find the bad samples in that rank's shard "
            "(assert torch.isfinite(x).all() on its batches) and drop or repair them. If it "
            "entered in a layer or the loss, that rank's batch hit a log, sqrt or division "
            "without an epsilon, or overflowed: guard the operation and look for extreme values "
            "in the data."
        ),
        example=(
            "rank 1 reads a record with a missing value stored as NaN; DistributedSampler puts "
            "it in rank 1's shard only:  x = torch.nan_to_num(x) or drop the record when loading"
        ),
    ),
    check=check,
)
