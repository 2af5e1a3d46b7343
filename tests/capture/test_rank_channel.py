"""The rank protocol in one process: a forwarder (rank 1) and rank 0's collecting writer share an
in-memory Store, so every message, ack and timeout can be checked without starting processes."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest
import torch
import torch.distributed as dist
from torch import nn

from netdoctor.capture import ranks
from netdoctor.capture.ranks import (
    RankChannel,
    RankCollectingWriter,
    RankForwarder,
    StepClock,
    open_channel,
    parameters_replicated,
)
from netdoctor.runlog import open_run
from netdoctor.runlog.schema import RankField, RunStatus

pytestmark = pytest.mark.skipif(not dist.is_available(), reason="needs torch.distributed")


def _rows(first: int, n: int, loss: float) -> np.ndarray:
    rows = np.full((n, len(RankField)), np.nan)
    rows[:, RankField.STEP] = np.arange(first, first + n)
    rows[:, RankField.LOSS] = loss
    rows[:, RankField.FLAGS] = 0
    return rows


@pytest.fixture
def store():
    return dist.HashStore()


@pytest.fixture
def rank0(tmp_path, store, log_parts, monkeypatch):
    monkeypatch.setattr(ranks, "POLL_SECONDS", 0.02)
    _, _, meta = log_parts
    writer = RankCollectingWriter(tmp_path / "run.sqlite", {**meta, "world_size": 2},
                                  RankChannel(store, "t/1", 0, 2))
    yield writer
    writer.close(RunStatus.FINISHED)


def _rank1(store, path) -> RankForwarder:
    return RankForwarder(RankChannel(store, "t/1", 1, 2), path,
                         {"host": "node1", "pid": 42, "device": "cpu"})


def test_rows_events_and_a_crash_reach_rank_0s_log(rank0, store):
    other = _rank1(store, rank0.path)
    other.put_rank_rows(1, _rows(0, 4, 2.0), {"samples_per_step": 8})
    other.put_event(3, "nonfinite", None, "first non-finite value at step 3, in the input batch",
                    {"source": "input", "site": "0 (input)"})
    other.put_event(3, "warning", "0", "probe disabled")  # same on every rank: not sent
    other.put_sample(0, np.zeros((1, 1)), np.zeros((1, 1)))  # per-layer samples stay here
    other.commit()
    started = time.monotonic()
    other.close(RunStatus.CRASHED, "ValueError: bad shard")
    assert time.monotonic() - started < 2.0  # the ack came at the collector's next poll
    rank0.put_rank_rows(0, _rows(0, 5, 1.0), {"samples_per_step": 8})
    rank0.close(RunStatus.CRASHED, "RuntimeError: Connection closed by peer")

    run = open_run(rank0.path)
    assert (run.ranks[1][:, RankField.LOSS] == 2.0).all() and len(run.ranks[0]) == 5
    [nonfinite] = run.rank_events("nonfinite")
    assert nonfinite.step == 3 and nonfinite.data["rank"] == 1
    assert nonfinite.data["source"] == "input"
    assert nonfinite.message == "rank 1: first non-finite value at step 3, in the input batch"
    [end] = run.rank_events("end")
    assert end.data == {"rank": 1, "type": "end", "status": "crashed",
                        "message": "ValueError: bad shard", "last_step": 3}
    assert end.message == "rank 1 crashed at step 3: ValueError: bad shard"
    distributed = run.meta["distributed"]
    assert distributed["ranks"]["1"] == {"host": "node1", "pid": 42, "device": "cpu",
                                         "samples_per_step": 8}
    assert distributed["global_batch"] == 16
    assert store.num_keys() <= 5  # messages deleted once read; counters, acks and marks stay


def test_rank_0_waits_for_ranks_that_said_hello_then_records_them_silent(rank0, store,
                                                                        monkeypatch):
    monkeypatch.setattr(ranks, "END_WAIT_S", 0.3)
    other = _rank1(store, rank0.path)
    other.put_rank_rows(1, _rows(0, 2, 2.0))
    other.commit()  # ... and never closes (killed)
    started = time.monotonic()
    rank0.close(RunStatus.FINISHED)
    assert 0.25 < time.monotonic() - started < 2.0
    [silent] = open_run(rank0.path).rank_events("silent")
    assert silent.data == {"rank": 1, "type": "silent", "last_step": 1}


def test_rank_0_alone_does_not_wait(rank0, monkeypatch):
    monkeypatch.setattr(ranks, "END_WAIT_S", 30.0)
    started = time.monotonic()
    rank0.close(RunStatus.FINISHED)  # no other rank said hello: watch() on rank 0 only
    assert time.monotonic() - started < 1.0
    run = open_run(rank0.path)
    assert run.rank_events("silent") == [] and run.rank_events("end") == []


def test_a_crashing_rank_does_not_wait_when_rank_0_is_not_listening(store, tmp_path):
    other = _rank1(store, tmp_path / "run.sqlite")
    started = time.monotonic()
    other.close(RunStatus.CRASHED, "ValueError: early")
    assert time.monotonic() - started < 0.5


class _BrokenStore:
    def set(self, key, value):
        raise RuntimeError("Connection reset by peer")

    def add(self, key, amount):
        raise RuntimeError("Connection reset by peer")


def test_a_broken_store_is_reported_once_and_training_goes_on(tmp_path):
    with pytest.warns(RuntimeWarning, match="rank 1 cannot reach rank 0") as caught:
        other = RankForwarder(RankChannel(_BrokenStore(), "t/1", 1, 2), tmp_path / "x", {})
    other.put_rank_rows(1, _rows(0, 2, 1.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        other.commit()
        other.close(RunStatus.CRASHED, "ValueError: x")
    assert len(caught) == 1 and other.error == "RuntimeError: Connection reset by peer"


def test_no_store_falls_back_with_one_warning_on_rank_0(monkeypatch):
    from torch.distributed import distributed_c10d

    def missing():
        raise ValueError("Default process group has not been initialized")

    monkeypatch.setattr(distributed_c10d, "_get_default_store", missing)
    with pytest.warns(RuntimeWarning, match="only rank 0 is logged"):
        assert open_channel("run.sqlite", 0, 2) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert open_channel("run.sqlite", 1, 2) is None


def test_step_clock_measures_training_forwards_only():
    model = nn.Linear(3, 2)
    clock = StepClock(model)
    model(torch.randn(4, 3))
    model(input=torch.randn(6, 3))  # keyword input: still counted
    assert np.isnan(clock.step_end()).all()  # step 0: no previous step end to measure from
    assert clock.samples_per_step == 10
    time.sleep(0.01)
    model(torch.randn(4, 3))
    step_time, lead = clock.step_end()
    assert 0.01 <= lead <= step_time
    with torch.no_grad():  # validation between steps
        model(torch.randn(4, 3))
    model.eval()
    model(torch.randn(4, 3))
    assert np.isnan(clock.step_end()[1])  # no training forward in that step
    assert clock.samples_per_step == 10  # counted in step 0 only
    clock.remove()
    assert not model._forward_hooks


def test_sharded_parameters_are_not_compared():
    assert parameters_replicated(nn.Sequential(nn.Linear(2, 2)))
    empty = nn.Linear(2, 2)
    empty.weight = nn.Parameter(torch.empty(0))  # what a rank holding no shard sees
    assert not parameters_replicated(empty)
