"""``straggler_rank``: one rank of a distributed run is late every step, and the others wait.

Under DDP every rank leaves backward's gradient all-reduce at the same moment, so their total
step times are equal and say nothing about who is slow. What differs is the *lead time*: from
the end of the previous step to the end of this step's forward, the rank's own work (loading its
batch, running the forward) before it joins the all-reduce. A rank whose typical lead time is
well above the fastest rank's makes every other rank wait that difference on every step.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from netdoctor.diagnosis import Diagnosis, Severity
from netdoctor.rules.base import Rule, RuleDoc, Threshold
from netdoctor.rules.fixes import fix
from netdoctor.rules.rank_facts import rank_hosts, rank_names
from netdoctor.runlog.run_data import RunData
from netdoctor.runlog.schema import RankField

RULE_ID = "straggler_rank"


def check(run: RunData, th: Mapping[str, float]) -> list[Diagnosis]:
    leads: dict[int, float] = {}
    step_times: list[np.ndarray] = []
    for rank, rows in sorted(run.ranks.items()):
        lead = rows[:, RankField.LEAD_TIME]
        lead = lead[np.isfinite(lead) & (lead >= 0)]
        if lead.size < th["min_steps"]:
            continue
        leads[rank] = float(np.median(lead))
        times = rows[:, RankField.STEP_TIME]
        step_times.append(times[np.isfinite(times) & (times > 0)])
    if len(leads) < 2:
        return []
    every = np.concatenate(step_times)
    step_time = float(np.median(every)) if every.size else 0.0
    if not step_time > 0:
        return []
    fastest = min(leads, key=lambda r: leads[r])
    allowed = th["excess_fraction"] * step_time
    slow = {r: leads[r] - leads[fastest] for r in leads if leads[r] - leads[fastest] > allowed}
    if not slow:
        return []
    worst = max(slow, key=lambda r: slow[r])
    excess = slow[worst]
    waiting = min(excess / step_time, 1.0)
    hosts = rank_hosts(run)
    on_host = f" on {hosts[worst]}" if worst in hosts else ""
    step = _first_late_step(run, worst, leads[fastest] + allowed)
    others = rank_names(r for r in leads if r != worst)
    message = (
        f"{rank_names(sorted(slow))} {'is a straggler' if len(slow) == 1 else 'are stragglers'}: "
        f"on a typical step rank {worst}{on_host} reaches backward {_ms(excess)} after rank "
        f"{fastest} (time from the previous step's end to the end of its forward: "
        f"{_ms(leads[worst])} vs {_ms(leads[fastest])}, on a {_ms(step_time)} step), so "
        f"{others} spend about {waiting:.0%} of each step waiting for it in DDP's gradient "
        f"all-reduce: look at what only rank {worst} does before its forward (loading its "
        "batch, a slower disk or GPU, other processes on its node)"
    )
    evidence: dict[str, Any] = {
        "ranks": sorted(slow),
        "rank": worst,
        "fastest_rank": fastest,
        "median_lead_time_s": {str(r): v for r, v in leads.items()},
        "median_step_time_s": step_time,
        "excess_s": excess,
        "waiting_fraction": waiting,
        "host": hosts.get(worst),
    }
    return [Diagnosis(RULE_ID, Severity.WARNING, step, None, message, evidence,
                      (fix("balance_ranks"),))]


def _first_late_step(run: RunData, rank: int, limit: float) -> int | None:
    rows = run.ranks[rank]
    late = np.nonzero(np.nan_to_num(rows[:, RankField.LEAD_TIME], nan=-1.0) > limit)[0]
    return int(rows[late[0], RankField.STEP]) if late.size else None


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3g} ms" if seconds < 1 else f"{seconds:.3g} s"


RULE = Rule(
    id=RULE_ID,
    severity=Severity.WARNING,
    title="One rank is late every step and the others wait for it",
    thresholds=(
        Threshold(
            "excess_fraction",
            0.25,
            "how much longer than the fastest rank's a rank's median lead time (previous step's "
            "end to the end of its forward) may be, as a fraction of the median step time, "
            "before it counts as a straggler: the others then wait that share of every step",
            "netdoctor (data-loading jitter between ranks stays well under it)",
        ),
        Threshold(
            "min_steps",
            10.0,
            "steps with a measured lead time a rank needs before its median is compared",
            "netdoctor",
        ),
    ),
    fixes=("balance_ranks",),
    doc=RuleDoc(
        what=(
            "A rank of a distributed run whose median lead time, the time from the end of the "
            "previous optimizer step to the end of its forward pass, exceeds the fastest "
            "rank's by more than a quarter of the median step time. Names the rank, its host, "
            "both lead times and the share of each step the other ranks spend waiting."
        ),
        why=(
            "DistributedDataParallel averages gradients in an all-reduce during backward, which "
            "no rank can finish before the slowest one joins it. One slow rank (a data loader "
            "with too few workers, a slow disk or network share, a bigger shard, a slower or "
            "shared GPU) therefore sets the pace of the whole job: N GPUs train at the speed "
            "of the worst one."
        ),
        how_to_fix=(
            "Give every rank the same work and the same resources: equal shards "
            "(DistributedSampler with drop_last=True), enough DataLoader workers with pinned "
            "memory on every node, data on a local disk, and no other jobs on the slow rank's "
            "GPU or CPU. Profile that rank's input pipeline with torch.profiler if the "
            "difference remains."
        ),
        example=(
            "rank 1 reads its shard from a network share with DataLoader(num_workers=0): its "
            "forward starts 40 ms late each step and ranks 0, 2 and 3 wait 40 ms in backward"
        ),
    ),
    check=check,
)
