"""The rules of distributed runs on synthetic rank rows: what fires, what must not."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import numpy as np

from netdoctor.rules import run_rules
from netdoctor.rules.rank_failed import RULE as RANK_FAILED
from netdoctor.rules.rank_nonfinite import RULE as RANK_NONFINITE
from netdoctor.rules.replicas import RULE as REPLICAS
from netdoctor.rules.straggler import RULE as STRAGGLER
from netdoctor.runlog.run_data import Event, RunData
from netdoctor.runlog.schema import RankField, StepFlag
from tests.rules.factory import make_run, nonfinite_event

HARD = int(StepFlag.LOSS_NONFINITE | StepFlag.ACT_NONFINITE)
GRAD = int(StepFlag.GRAD_NONFINITE)


def rows(n: int = 40, *, loss: float = 0.5, step_time: float = 0.05, lead: float = 0.01,
         checksum: float = 123.0, every: int = 8) -> np.ndarray:
    """One rank's rows as the capture side writes them (nothing measured at step 0)."""
    out = np.full((n, len(RankField)), math.nan)
    out[:, RankField.STEP] = np.arange(n)
    out[:, RankField.LOSS] = loss
    out[1:, RankField.STEP_TIME] = step_time
    out[1:, RankField.LEAD_TIME] = lead
    out[:, RankField.FLAGS] = 0
    out[::every, RankField.CHECKSUM] = checksum
    return out


def distributed(run: RunData, ranks: Mapping[int, np.ndarray], *, events: Sequence[Event] = (),
                status: str | None = None, replicated: bool = True,
                end_message: str | None = None) -> RunData:
    meta: dict[str, Any] = {
        **run.meta, "world_size": len(ranks), "sampling": {"flush_every": 8},
        "distributed": {"backend": "gloo", "replicated": replicated,
                        "ranks": {str(r): {"host": f"node{r}"} for r in ranks}},
    }
    if status is not None:
        meta["status"] = status
    if end_message is not None:
        meta["end_message"] = end_message
    return dataclasses.replace(run, meta=meta, ranks=MappingProxyType(dict(ranks)),
                               events=(*run.events, *events))


def rank_event(rank: int, kind: str, step: int | None, **data: Any) -> Event:
    return Event(step, "rank", data.get("layer"), f"rank {rank}: {kind}",
                 {"rank": rank, "type": kind, **data})


def check(rule, run: RunData, **overrides: float):
    return rule.check(run, {**rule.defaults(), **overrides})


# ---- rank_nonfinite ------------------------------------------------------------------------------
def _nan_on_rank_1(source: str = "input", site: str | None = None, module: str | None = None,
                   grad_norm: Sequence[float] | None = None) -> RunData:
    """Rank 1's batch goes NaN at step 20; rank 0 gets the NaN gradient at 20 and NaN from 21."""
    loss = [0.5] * 21 + [math.nan] * 19
    run = make_run(loss, grad_nonfinite=range(20, 40), act_nonfinite=range(21, 40),
                   grad_norm=grad_norm)
    r0, r1 = rows(), rows(loss=0.6)
    r0[20, RankField.FLAGS] = GRAD
    r0[21:, RankField.FLAGS] = HARD | GRAD
    r1[20:, RankField.FLAGS] = HARD | GRAD
    event = rank_event(1, "nonfinite", 20, source=source, site=site, module=module)
    return distributed(run, {0: r0, 1: r1}, events=[event])


def test_nan_from_one_ranks_batch_names_the_rank_and_explains_nan_loss():
    found = run_rules(_nan_on_rank_1())
    first = found[0]
    assert first.rule == "rank_nonfinite" and first.step == 20 and first.layer is None
    assert first.evidence["bad_ranks"] == [1] and first.evidence["finite_ranks"] == [0]
    assert first.evidence["spread_step"] == 20
    assert first.message.startswith(
        "NaN/Inf appeared on rank 1 only at step 20, in its input batch, while rank 0 stayed "
        "finite; the gradient all-reduce carried it to rank 0 at that same step: the samples "
        "rank 1 read are bad")
    assert [f.id for f in first.fixes] == ["normalize_inputs"]
    assert "rank 1 reads" in first.fixes[0].text
    nan = next(d for d in found if d.rule == "nan_loss")
    assert nan.evidence["caused_by"] == "rank_nonfinite"
    assert found.index(nan) > found.index(first)


def test_nan_from_one_ranks_activation_names_the_layer():
    [found] = check(RANK_NONFINITE, _nan_on_rank_1("activation", "fc2", "fc2"))
    assert found.layer == "fc2"
    assert "in the output of fc2" in found.message
    assert [f.id for f in found.fixes] == ["stable_loss", "lower_lr"]
    assert "the forward of fc2" in found.fixes[0].text


def test_rank_0_location_comes_from_its_own_nonfinite_event():
    run = make_run([0.5] * 40, events=[nonfinite_event(30, "loss")])
    r0, r1 = rows(), rows()
    r0[30, RankField.FLAGS] = int(StepFlag.LOSS_NONFINITE)
    [found] = check(RANK_NONFINITE, distributed(run, {0: r0, 1: r1}))
    assert found.evidence["bad_ranks"] == [0]
    assert found.evidence["origins"]["0"]["source"] == "loss"
    assert found.evidence["spread_step"] is None and "reached" not in found.message


def test_every_rank_at_once_is_not_rank_specific():
    run = make_run([0.5] * 40)
    r0, r1 = rows(), rows()
    r0[20:, RankField.FLAGS] = HARD
    r1[20:, RankField.FLAGS] = HARD
    assert check(RANK_NONFINITE, distributed(run, {0: r0, 1: r1})) == []


def test_most_ranks_at_once_is_a_shared_cause_unless_the_threshold_says_otherwise():
    run = make_run([0.5] * 40)
    r = {k: rows() for k in range(3)}
    r[1][20:, RankField.FLAGS] = HARD
    r[2][20:, RankField.FLAGS] = HARD
    logged = distributed(run, r)
    assert check(RANK_NONFINITE, logged) == []  # 2 of 3 > 0.5
    [found] = check(RANK_NONFINITE, logged, max_bad_fraction=0.9)
    assert found.evidence["bad_ranks"] == [1, 2]
    assert "on ranks 1 and 2 only" in found.message


def test_an_explosion_on_every_rank_is_not_blamed_on_the_first_rank_to_overflow():
    norms = [1.0] * 10 + [2.0 ** k for k in range(1, 11)] + [math.nan] * 20
    assert check(RANK_NONFINITE, _nan_on_rank_1(grad_norm=norms)) == []


def test_single_process_runs_have_no_rank_findings():
    run = make_run([0.5] * 20 + [math.nan] * 20)
    for rule in (RANK_NONFINITE, STRAGGLER, REPLICAS, RANK_FAILED):
        assert check(rule, run) == []


# ---- straggler_rank ------------------------------------------------------------------------------
def test_a_rank_that_starts_backward_late_is_a_straggler():
    run = distributed(make_run([0.5] * 40), {0: rows(lead=0.005), 1: rows(lead=0.04)})
    [found] = check(STRAGGLER, run)
    assert found.evidence["rank"] == 1 and found.evidence["fastest_rank"] == 0
    assert math.isclose(found.evidence["excess_s"], 0.035)
    assert math.isclose(found.evidence["waiting_fraction"], 0.7)
    assert found.step == 1 and found.fixes[0].id == "balance_ranks"
    assert found.message.startswith("rank 1 is a straggler: on a typical step rank 1 on node1 "
                                    "reaches backward 35 ms after rank 0")


def test_jitter_between_ranks_is_not_a_straggler():
    r0, r1 = rows(lead=0.010), rows(lead=0.015)
    r1[5::7, RankField.LEAD_TIME] = 0.045  # an occasional slow batch
    assert check(STRAGGLER, distributed(make_run([0.5] * 40), {0: r0, 1: r1})) == []


def test_several_slow_ranks_are_named_worst_first():
    ranks = {0: rows(lead=0.005), 1: rows(lead=0.006), 2: rows(lead=0.03), 3: rows(lead=0.04)}
    [found] = check(STRAGGLER, distributed(make_run([0.5] * 40), ranks))
    assert found.evidence["ranks"] == [2, 3] and found.evidence["rank"] == 3
    assert found.message.startswith("ranks 2 and 3 are stragglers: on a typical step rank 3")


def test_too_few_or_unmeasured_lead_times_say_nothing():
    few = {0: rows(6, lead=0.005), 1: rows(6, lead=0.04)}
    assert check(STRAGGLER, distributed(make_run([0.5] * 6), few)) == []
    compiled = {0: rows(lead=math.nan), 1: rows(lead=math.nan)}  # hook skipped under compile
    assert check(STRAGGLER, distributed(make_run([0.5] * 40), compiled)) == []


# ---- replicas_out_of_sync ------------------------------------------------------------------------
def test_a_replica_that_drifts_is_found_at_the_first_checksum_that_differs():
    r0, r1 = rows(), rows()
    r1[16::8, RankField.CHECKSUM] = 123.5
    [found] = check(REPLICAS, distributed(make_run([0.5] * 40), {0: r0, 1: r1}))
    assert found.step == 16 and found.evidence["last_equal_step"] == 8
    assert found.evidence["ranks"] == [1] and found.evidence["reference_ranks"] == [0]
    assert found.message.startswith("at step 16 the parameters of rank 1 no longer match rank "
                                    "0's (they matched at step 8)")
    assert found.fixes[0].id == "sync_replicas"


def test_the_odd_rank_out_is_named_even_when_it_is_rank_0():
    ranks = {0: rows(checksum=99.0), 1: rows(), 2: rows()}
    [found] = check(REPLICAS, distributed(make_run([0.5] * 40), ranks))
    assert found.step == 0 and found.evidence["ranks"] == [0]
    assert found.evidence["reference_ranks"] == [1, 2]


def test_float_rounding_sharding_and_missing_checksums_are_not_drift():
    r0, r1 = rows(), rows(checksum=123.0 * (1 + 1e-12))
    assert check(REPLICAS, distributed(make_run([0.5] * 40), {0: r0, 1: r1})) == []
    sharded = {0: rows(checksum=1.0), 1: rows(checksum=2.0)}  # FSDP: a shard each
    assert check(REPLICAS, distributed(make_run([0.5] * 40), sharded, replicated=False)) == []
    nan = {0: rows(), 1: rows(checksum=math.nan)}
    assert check(REPLICAS, distributed(make_run([0.5] * 40), nan)) == []


# ---- rank_failed ---------------------------------------------------------------------------------
def test_the_rank_that_crashed_first_is_named_with_its_message():
    events = [rank_event(1, "end", 6, status="crashed", last_step=6,
                         message="ValueError: labels out of range")]
    run = distributed(make_run([0.5] * 7), {0: rows(7), 1: rows(7)}, events=events,
                      status="crashed", end_message="RuntimeError: Connection closed by peer")
    [found] = check(RANK_FAILED, run)
    assert found.evidence["rank"] == 1 and found.step == 6
    assert found.message == (
        "rank 1 (node1) crashed at step 6 with ValueError: labels out of range (its traceback is "
        "in that rank's output); then rank 0 (node0) crashed at step 6 with RuntimeError: "
        "Connection closed by peer")


def test_long_error_lines_are_cut_in_the_message_and_kept_in_the_evidence():
    error = "RuntimeError: [gloo/transport/tcp/pair.cc:553] Connection closed by peer " + "x" * 300
    run = distributed(make_run([0.5] * 7), {0: rows(7), 1: rows(7)}, status="crashed",
                      end_message=error)
    [found] = check(RANK_FAILED, run)
    assert found.evidence["message"] == error and found.evidence["rank"] == 0
    assert len(found.message) < 250 and found.message.endswith("…")


def test_a_rank_that_went_silent_long_before_the_end_stopped_reporting():
    events = [rank_event(1, "silent", 12, last_step=12)]
    run = distributed(make_run([0.5] * 40), {0: rows(40), 1: rows(13)}, events=events)
    [found] = check(RANK_FAILED, run)
    assert found.evidence["status"] == "silent" and found.step == 12
    assert "rank 1 (node1) stopped reporting (rank 0 heard nothing after step 12)" in found.message


def test_a_rank_that_was_only_slow_to_close_is_not_a_failure():
    events = [rank_event(1, "silent", 33, last_step=33)]  # its last flush, then rank 0 closed
    run = distributed(make_run([0.5] * 40), {0: rows(40), 1: rows(34)}, events=events)
    assert check(RANK_FAILED, run) == []


def test_rank_0_crashing_while_others_went_silent_names_both():
    events = [rank_event(1, "silent", 6, last_step=6)]
    run = distributed(make_run([0.5] * 8), {0: rows(8), 1: rows(7)}, events=events,
                      status="crashed", end_message="RuntimeError: [gloo] Connection closed")
    [found] = check(RANK_FAILED, run)
    assert found.evidence["rank"] == 0 and found.evidence["silent_ranks"] == [1]
    assert "rank 1 sent no end (rank 1 up to step 6)" in found.message


def test_interrupted_everywhere_or_watched_on_rank_0_only_is_no_failure():
    events = [rank_event(1, "end", 20, status="interrupted", last_step=20)]
    stopped = distributed(make_run([0.5] * 21), {0: rows(21), 1: rows(21)}, events=events,
                          status="interrupted")
    assert check(RANK_FAILED, stopped) == []
    solo = distributed(make_run([0.5] * 40), {0: rows()})
    assert check(RANK_FAILED, dataclasses.replace(solo, meta={**solo.meta, "world_size": 2})) == []
