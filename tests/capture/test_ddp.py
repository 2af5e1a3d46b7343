"""Two real processes (gloo, CPU) training DDP under watch(): rank 0 writes one log, with the
other rank's rows in it (tests/capture/test_distributed.py checks what they are good for)."""

from __future__ import annotations

import os
import socket
import sys

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from netdoctor.runlog import open_run
from netdoctor.runlog.schema import RankField, RunStatus

pytestmark = pytest.mark.skipif(
    sys.platform == "win32" or not dist.is_available(), reason="needs torch.distributed (gloo)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, log: str) -> None:
    import netdoctor

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        torch.manual_seed(0)
        model = DistributedDataParallel(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1)))
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        with netdoctor.watch(model, opt, log=log) as monitor:
            torch.manual_seed(rank)
            for _ in range(12):
                opt.zero_grad()
                loss = F.mse_loss(model(torch.randn(8, 4)), torch.randn(8, 1))
                loss.backward()
                opt.step()
                monitor.step(loss)
            monitor.epoch(train_loss=float(loss))
        assert monitor.steps == 12
    finally:
        dist.destroy_process_group()


def test_ddp_rank0_writes_one_log_with_every_ranks_rows(tmp_path):
    log = tmp_path / "ddp.sqlite"
    import torch._dynamo  # noqa: F401 - DDP's constructor imports it (seconds): once, here

    start = "fork" if sys.platform.startswith("linux") else "spawn"  # fork: torch imported once
    mp.start_processes(_worker, args=(2, _free_port(), str(log)), nprocs=2, join=True,
                       start_method=start)
    run = open_run(log)
    assert run.status is RunStatus.FINISHED
    assert run.n_steps == 12 and run.meta["world_size"] == 2
    assert {s.module for s in run.sites} >= {"0", "1", "2"}  # hooks on ddp.module's layers
    assert sorted(p.name for p in run.params) == ["0.bias", "0.weight", "2.bias", "2.weight"]
    assert [p.name for p in tmp_path.iterdir()] == ["ddp.sqlite"]
    assert sorted(run.ranks) == [0, 1]
    assert all((rows[:, RankField.STEP] == range(12)).all() for rows in run.ranks.values())
    assert [e.data["status"] for e in run.rank_events("end")] == ["finished"]


def test_quiet_monitor_takes_the_same_arguments_as_monitor():
    import inspect as pyinspect

    from netdoctor.capture import Monitor
    from netdoctor.capture.ranks import QuietMonitor

    for name in ("step", "epoch", "close"):
        assert (pyinspect.signature(getattr(QuietMonitor, name)).parameters.keys()
                == pyinspect.signature(getattr(Monitor, name)).parameters.keys())
