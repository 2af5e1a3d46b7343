"""Real distributed runs (gloo, CPU, 2 processes) under watch(): what rank 0's log learns about
every rank, and the rules that need ranks.

One set of processes trains several short runs in a row (each a fresh watch() on its own log, in the
same process group), because starting the processes costs more than the training; a crashing
rank and a ``torchrun`` launch get processes of their own.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from netdoctor.recipes.data import spirals
from netdoctor.rules import run_rules
from netdoctor.runlog import open_run
from netdoctor.runlog.schema import RankField, RunStatus, StepFlag

pytestmark = pytest.mark.skipif(
    sys.platform == "win32" or not dist.is_available(), reason="needs torch.distributed (gloo)")

ROOT = Path(__file__).resolve().parents[2]
PHASES = ("underfit", "straggler", "replicas", "nan", "solo")
#: A forked worker starts with torch already imported: seconds less per test on a busy machine.
START = "fork" if sys.platform.startswith("linux") else "spawn"


def _start(worker, args: tuple, join: bool) -> mp.ProcessContext | None:
    import torch._dynamo  # noqa: F401 - DDP's constructor imports it (seconds): once, here

    return mp.start_processes(worker, args=args, nprocs=2, join=join, start_method=START)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _init(rank: int, world: int, port: int, timeout_s: float = 60.0) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world,
                            timeout=timedelta(seconds=timeout_s))


def _mlp() -> nn.Sequential:
    torch.manual_seed(0)  # DDP broadcasts rank 0's weights anyway
    return nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 3))


def train_underfit(log: Path, rank: int = 0, world: int = 1) -> None:
    """A linear model on spirals (underfits), global batch 32 split over the ranks; the epoch
    metrics are logged on rank 0 only, as many DDP scripts do."""
    import netdoctor

    x, y = spirals(400, seed=0)
    vx, vy = spirals(300, seed=1)
    torch.manual_seed(0)
    model: nn.Module = nn.Sequential(nn.Linear(2, 3))
    if world > 1:
        model = DistributedDataParallel(model)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    with netdoctor.watch(model, opt, log=log) as monitor:
        for _ in range(8):
            total, batches = 0.0, 0
            for i in range(0, len(x), 32):
                xb, yb = x[i:i + 32][rank::world], y[i:i + 32][rank::world]
                opt.zero_grad()
                loss = F.cross_entropy(model(xb), yb)
                loss.backward()
                opt.step()
                monitor.step(loss)
                total, batches = total + loss.item(), batches + 1
            if rank == 0:
                with torch.no_grad():
                    val = float(F.cross_entropy(model(vx), vy))
                monitor.epoch(train_loss=total / batches, val_loss=val)


def _train_mlp(log: Path, rank: int, world: int, steps: int, before_forward=None,
               after_step=None) -> None:
    import netdoctor

    model = DistributedDataParallel(_mlp())
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    x, y = spirals(32 * steps, seed=rank)
    with netdoctor.watch(model, opt, log=log, flush_every=8) as monitor:
        for step in range(steps):
            xb, yb = x[step * 32:(step + 1) * 32].clone(), y[step * 32:(step + 1) * 32]
            if before_forward is not None:
                before_forward(step, xb)
            opt.zero_grad()
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            monitor.step(loss)
            if after_step is not None:
                after_step(step, model.module)


def train_watched_on_rank_0_only(log: Path, rank: int, world: int) -> float:
    """DDP on every rank, watch() on rank 0 only; returns how long rank 0's close took."""
    import netdoctor

    model = DistributedDataParallel(_mlp())
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    monitor = netdoctor.watch(model, opt, log=log) if rank == 0 else None
    x, y = spirals(32 * 20, seed=rank)
    for step in range(20):
        opt.zero_grad()
        loss = F.cross_entropy(model(x[step * 32:(step + 1) * 32]), y[step * 32:(step + 1) * 32])
        loss.backward()
        opt.step()
        if monitor is not None:
            monitor.step(loss)
    started = time.monotonic()
    if monitor is not None:
        monitor.close()
    return time.monotonic() - started


def _phases(rank: int, world: int, port: int, folder: str) -> None:
    _init(rank, world, port)
    logs = {name: Path(folder) / f"{name}.sqlite" for name in PHASES}
    try:
        train_underfit(logs["underfit"], rank, world)

        def late(step: int, xb: torch.Tensor) -> None:
            if rank == 1:
                time.sleep(0.02)  # a slow data loader on rank 1 only

        _train_mlp(logs["straggler"], rank, world, 40, before_forward=late)

        def edit(step: int, model: nn.Module) -> None:
            if rank == 1 and step == 10:  # a weight change DDP knows nothing about
                with torch.no_grad():
                    model[0].weight.add_(0.01)

        _train_mlp(logs["replicas"], rank, world, 30, after_step=edit)

        def poison(step: int, xb: torch.Tensor) -> None:
            if rank == 1 and step == 12:
                xb[0, 0] = float("nan")  # a bad record in rank 1's shard

        _train_mlp(logs["nan"], rank, world, 20, before_forward=poison)

        closing = train_watched_on_rank_0_only(logs["solo"], rank, world)
        if rank == 0:
            (Path(folder) / "solo-close-seconds.txt").write_text(str(closing))
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def ddp_logs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("ddp")
    _start(_phases, (2, _free_port(), str(folder)), join=True)
    return {name: folder / f"{name}.sqlite" for name in PHASES}


def _logs_only(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.suffix == ".sqlite")


def _rules(path: Path) -> list[str]:
    return [d.rule for d in run_rules(open_run(path))]


def test_two_ranks_write_one_log_with_both_ranks_rows(ddp_logs):
    run = open_run(ddp_logs["underfit"])
    assert run.status is RunStatus.FINISHED and run.world_size == 2
    assert sorted(run.ranks) == [0, 1]
    steps = 8 * (400 // 32 + 1)
    for rank in (0, 1):
        rows = run.ranks[rank]
        assert (rows[:, RankField.STEP] == np.arange(steps)).all()
        assert np.isfinite(rows[:, RankField.LOSS]).all()
        assert np.isfinite(rows[1:, RankField.LEAD_TIME]).all()
        assert (rows[1:, RankField.LEAD_TIME] <= rows[1:, RankField.STEP_TIME]).all()
    # each rank logged its own half-batch loss; rank 0's is the step table's
    assert not np.allclose(run.ranks[0][:, RankField.LOSS], run.ranks[1][:, RankField.LOSS])
    assert np.allclose(run.ranks[0][:, RankField.LOSS], run.loss)
    # checksums on the shared schedule, identical replicas
    sums = [run.ranks[r][:, RankField.CHECKSUM] for r in (0, 1)]
    on = np.isfinite(sums[0])
    assert (np.flatnonzero(on) % 64 == 0).all() and on.sum() == len(range(0, steps, 64))
    assert (sums[0][on] == sums[1][on]).all()
    distributed = run.meta["distributed"]
    assert distributed["backend"] == "gloo" and distributed["replicated"] is True
    assert distributed["global_batch"] == 32
    assert [e.data["status"] for e in run.rank_events("end")] == ["finished"]
    folder = ddp_logs["underfit"].parent  # rank 1 wrote no file of its own
    assert _logs_only(folder) == sorted(f"{n}.sqlite" for n in PHASES)
    assert len(run.epochs) == 8  # monitor.epoch() on rank 0 only: nothing waited for it


def test_two_ranks_find_what_one_process_finds(ddp_logs, tmp_path):
    single = tmp_path / "single.sqlite"
    train_underfit(single)
    found = _rules(single)
    assert "underfitting" in found
    assert _rules(ddp_logs["underfit"]) == found  # and no rank rule on a healthy DDP run


def test_nan_in_one_ranks_batch_names_that_rank(ddp_logs):
    run = open_run(ddp_logs["nan"])
    diagnoses = run_rules(run)
    first = diagnoses[0]
    assert first.rule == "rank_nonfinite" and first.step == 12
    assert first.evidence["bad_ranks"] == [1] and first.evidence["finite_ranks"] == [0]
    assert first.evidence["origins"]["1"]["source"] == "input"
    assert "rank 1 only at step 12, in its input batch" in first.message
    assert first.fixes[0].id == "normalize_inputs"
    nan = next(d for d in diagnoses if d.rule == "nan_loss")
    assert nan.evidence["caused_by"] == "rank_nonfinite"
    # rank 1 flagged its own loss and activations; rank 0 only got the averaged NaN gradient
    flags = {r: int(run.ranks[r][12, RankField.FLAGS]) for r in (0, 1)}
    assert flags[1] & StepFlag.ACT_NONFINITE and not flags[0] & StepFlag.ACT_NONFINITE


def test_a_slow_rank_is_named_a_straggler(ddp_logs):
    diagnoses = [d for d in run_rules(open_run(ddp_logs["straggler"]))
                 if d.rule == "straggler_rank"]
    assert len(diagnoses) == 1
    evidence = diagnoses[0].evidence
    assert evidence["rank"] == 1 and evidence["fastest_rank"] == 0
    assert evidence["excess_s"] > 0.015  # the 20 ms sleep, give or take the scheduler
    assert "rank 1 is a straggler" in diagnoses[0].message


def test_a_weight_changed_on_one_rank_breaks_replica_sync(ddp_logs):
    run = open_run(ddp_logs["replicas"])
    found = [d for d in run_rules(run) if d.rule == "replicas_out_of_sync"]
    assert len(found) == 1
    assert found[0].step == 16 and found[0].evidence["last_equal_step"] == 8
    assert found[0].evidence["ranks"] == [1]  # two ranks, no majority: rank 0 is the reference
    assert all("replicas_out_of_sync" not in _rules(ddp_logs[name])
               for name in ("underfit", "straggler"))


def test_watch_on_rank_0_only_neither_waits_nor_blames_the_other_ranks(ddp_logs):
    run = open_run(ddp_logs["solo"])
    assert run.status is RunStatus.FINISHED and run.n_steps == 20 and list(run.ranks) == [0]
    assert run.rank_events("silent") == [] and "rank_failed" not in _rules(ddp_logs["solo"])
    closing = float((ddp_logs["solo"].parent / "solo-close-seconds.txt").read_text())
    assert closing < 4.0  # no wait for end messages that no rank will send (END_WAIT_S is 5)


# ---- a rank that crashes ------------------------------------------------------------------
def _crash(rank: int, world: int, port: int, log: str) -> None:
    import netdoctor

    _init(rank, world, port, timeout_s=10.0)  # rank 0 must not wait long for the dead rank
    model = DistributedDataParallel(_mlp())
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    x, y = spirals(320, seed=rank)
    with netdoctor.watch(model, opt, log=log, flush_every=4) as monitor:
        for step in range(10):
            if rank == 1 and step == 7:
                raise ValueError("labels out of range in shard 1")
            opt.zero_grad()
            loss = F.cross_entropy(model(x[step * 32:(step + 1) * 32]),
                                   y[step * 32:(step + 1) * 32])
            loss.backward()
            opt.step()
            monitor.step(loss)


def test_a_crashing_rank_is_named_with_its_message(tmp_path):
    log = tmp_path / "crash.sqlite"
    context = _start(_crash, (2, _free_port(), str(log)), join=False)
    assert context is not None
    for process in context.processes:  # join=True would kill rank 0 as soon as rank 1 died
        process.join(timeout=60)
        assert process.exitcode is not None, "a rank hung"
    run = open_run(log)
    assert run.status is RunStatus.CRASHED  # rank 0 failed in the all-reduce rank 1 left
    [failed] = [d for d in run_rules(run) if d.rule == "rank_failed"]
    assert failed.evidence["rank"] == 1 and failed.evidence["status"] == "crashed"
    assert failed.evidence["message"] == "ValueError: labels out of range in shard 1"
    assert failed.message.startswith("rank 1 (")
    assert "crashed at step 6 with ValueError: labels out of range in shard 1" in failed.message


# ---- torchrun ------------------------------------------------------------------------------
# Gradients averaged by hand, as DDP does: DDP's constructor imports torch._dynamo, which costs
# each fresh worker seconds; what is tested here is watch() under torchrun's launcher and store.
TORCHRUN_SCRIPT = """
import sys, torch, torch.distributed as dist, torch.nn.functional as F
from torch import nn
import netdoctor

torch.set_num_threads(1)
dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
torch.manual_seed(0)
model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 1))
opt = torch.optim.SGD(model.parameters(), lr=0.05)
monitor = netdoctor.watch(model, opt, log=sys.argv[1])
torch.manual_seed(rank)
for step in range(20):
    opt.zero_grad()
    loss = F.mse_loss(model(torch.randn(8, 4)), torch.randn(8, 1))
    loss.backward()
    for p in model.parameters():
        dist.all_reduce(p.grad)
        p.grad /= world
    opt.step()
    monitor.step(loss)
found = monitor.close()
print(f"rank {rank}: {len(found)} diagnoses", flush=True)
dist.destroy_process_group()
"""


def test_torchrun_script_writes_one_log_from_rank_0(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(TORCHRUN_SCRIPT))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
         "--master-port", str(_free_port()), str(script), "runs/ddp.sqlite"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["ddp.sqlite"]
    run = open_run(tmp_path / "runs" / "ddp.sqlite")
    assert run.status is RunStatus.FINISHED and run.n_steps == 20
    assert sorted(run.ranks) == [0, 1] and all(len(r) == 20 for r in run.ranks.values())
    assert run.meta["distributed"]["global_batch"] == 16
    assert "rank 1: 0 diagnoses" in out.stdout  # only rank 0 diagnoses the run
    assert [e.data["status"] for e in run.rank_events("end")] == ["finished"]
    assert "replicas_out_of_sync" not in {d.rule for d in run_rules(run)}
