"""FSDP2 (``fully_shard``, DTensor parameters) under watch() with 2 gloo ranks on CPU: per-layer
norms read from local shards must equal a single-process run on the same global batches.

FSDP1 (``FullyShardedDataParallel``, CPU with gloo runs in torch 2.13) too: with
``use_orig_params=True`` per layer (a rank may hold an empty shard and no ``.grad``), with
``False`` only the flat parameters exist, so only whole-model norms can match.
"""

from __future__ import annotations

import os
import socket
import sys
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn

from netdoctor.capture.sharded import user_name
from netdoctor.recipes.data import spirals
from netdoctor.rules import run_rules
from netdoctor.runlog import open_run
from netdoctor.runlog.schema import ParamStat

pytestmark = pytest.mark.skipif(
    sys.platform == "win32" or not dist.is_available(), reason="needs torch.distributed (gloo)")

STEPS = 12
START = "fork" if sys.platform.startswith("linux") else "spawn"
BATCH = 32


class Net(nn.Module):
    """Named layers, so that the log must show 'encoder'/'head', not FSDP's names."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Linear(2, 16)
        self.head = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(self.encoder(x)))


def _train(log: Path, rank: int, world: int, nan_rank: int | None = None,
           wrap: str = "fsdp2", hsdp: bool = False) -> None:
    """Global batch 32 split in halves over the ranks; FSDP2 averages the gradients, so each
    step sees the gradient of the whole batch, as the single-process reference does."""
    import netdoctor

    torch.manual_seed(0)
    model = Net()
    if world > 1 and wrap != "fsdp2":  # FSDP1, each Linear its own unit
        from torch.distributed.fsdp import FullyShardedDataParallel
        from torch.distributed.fsdp.wrap import ModuleWrapPolicy

        model = FullyShardedDataParallel(
            model, auto_wrap_policy=ModuleWrapPolicy({nn.Linear}), device_id=torch.device("cpu"),
            use_orig_params=wrap == "fsdp1_orig")
    elif world > 1:
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        # HSDP: 2 replicas of 1 shard each; a world-wide reduce would count each layer twice
        mesh = init_device_mesh("cpu", (2, 1), mesh_dim_names=("replicate", "shard")) if (
            hsdp) else None
        fully_shard(model.encoder, mesh=mesh)
        fully_shard(model.head, mesh=mesh)
        fully_shard(model, mesh=mesh)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, y = spirals(BATCH * STEPS, seed=0)
    with netdoctor.watch(model, opt, log=log, flush_every=4) as monitor:
        for step in range(STEPS):
            xb = x[step * BATCH:(step + 1) * BATCH][rank::world].clone()
            yb = y[step * BATCH:(step + 1) * BATCH][rank::world]
            if nan_rank == rank and step == 7:
                xb[0, 0] = float("nan")
            opt.zero_grad()
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            monitor.step(loss)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, port: int, root: Path) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=2, timeout=timedelta(seconds=60))
    try:
        _train(root / "fsdp.sqlite", rank, 2)
        _train(root / "nan.sqlite", rank, 2, nan_rank=1)
        _train(root / "fsdp1_orig.sqlite", rank, 2, wrap="fsdp1_orig")
        _train(root / "hsdp.sqlite", rank, 2, hsdp=True)
        _train(root / "fsdp1_flat.sqlite", rank, 2, wrap="fsdp1_flat")
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def fsdp_logs(tmp_path_factory):
    root = tmp_path_factory.mktemp("fsdp")
    mp.start_processes(_worker, args=(_free_port(), root), nprocs=2, start_method=START)
    torch.manual_seed(0)
    _train(root / "reference.sqlite", 0, 1)
    return root


def _stats(path: Path):
    run = open_run(path)
    return run, [p.name for p in run.params]


def test_layer_names_are_the_users(fsdp_logs):
    _, names = _stats(fsdp_logs / "fsdp.sqlite")
    assert names == ["encoder.weight", "encoder.bias", "head.weight", "head.bias"]


def test_grad_norms_per_layer_equal_the_unsharded_run(fsdp_logs):
    run, _ = _stats(fsdp_logs / "fsdp.sqlite")
    ref, _ = _stats(fsdp_logs / "reference.sqlite")
    assert run.grad_norm.shape == ref.grad_norm.shape == (STEPS,)
    np.testing.assert_allclose(run.grad_norm, ref.grad_norm, rtol=1e-4)  # every step's total
    np.testing.assert_array_equal(run.sample_steps, ref.sample_steps)
    layers = run.param[:, :, ParamStat.GRAD_NORM]
    assert layers.shape == (len(run.sample_steps), 4) and (layers > 0).all()
    np.testing.assert_allclose(layers, ref.param[:, :, ParamStat.GRAD_NORM], rtol=1e-4)


def test_weight_and_update_norms_equal_the_unsharded_run(fsdp_logs):
    run, _ = _stats(fsdp_logs / "fsdp.sqlite")
    ref, _ = _stats(fsdp_logs / "reference.sqlite")
    for stat in (ParamStat.WEIGHT_NORM, ParamStat.UPDATE_NORM):
        np.testing.assert_allclose(run.param[:, :, stat], ref.param[:, :, stat], rtol=1e-4)
    assert (run.param[:, :, ParamStat.UPDATE_NORM] > 0).all()


def test_log_written_by_rank_0_holds_both_ranks(fsdp_logs):
    assert sorted(f.name for f in fsdp_logs.glob("*.sqlite")) == [
        "fsdp.sqlite", "fsdp1_flat.sqlite", "fsdp1_orig.sqlite", "hsdp.sqlite", "nan.sqlite",
        "reference.sqlite"]
    run = open_run(fsdp_logs / "fsdp.sqlite")
    assert run.world_size == 2 and sorted(run.ranks) == [0, 1]


def test_nan_on_one_rank_is_diagnosed(fsdp_logs):
    diagnoses = run_rules(open_run(fsdp_logs / "nan.sqlite"))
    first = diagnoses[0]
    assert first.rule == "rank_nonfinite" and first.step == 7, [d.rule for d in diagnoses]
    assert first.evidence["bad_ranks"] == [1]


def test_fsdp1_with_orig_params_matches_per_layer(fsdp_logs):
    run, names = _stats(fsdp_logs / "fsdp1_orig.sqlite")
    ref, _ = _stats(fsdp_logs / "reference.sqlite")
    assert names == ["encoder.weight", "encoder.bias", "head.weight", "head.bias"]
    assert [s.name for s in run.sites] == [s.name for s in ref.sites]
    np.testing.assert_allclose(run.grad_norm, ref.grad_norm, rtol=1e-4)
    for stat in (ParamStat.GRAD_NORM, ParamStat.WEIGHT_NORM, ParamStat.UPDATE_NORM):
        np.testing.assert_allclose(run.param[:, :, stat], ref.param[:, :, stat], rtol=1e-4)


def test_fsdp1_flat_params_match_the_whole_model_norm(fsdp_logs):
    run, names = _stats(fsdp_logs / "fsdp1_flat.sqlite")
    ref, _ = _stats(fsdp_logs / "reference.sqlite")
    assert all(name.endswith("_flat_param") for name in names)
    np.testing.assert_allclose(run.grad_norm, ref.grad_norm, rtol=1e-4)


def test_hsdp_reduces_over_the_shard_group_only(fsdp_logs):
    run, names = _stats(fsdp_logs / "hsdp.sqlite")
    ref, _ = _stats(fsdp_logs / "reference.sqlite")
    assert names == ["encoder.weight", "encoder.bias", "head.weight", "head.bias"]
    for stat in (ParamStat.GRAD_NORM, ParamStat.WEIGHT_NORM, ParamStat.UPDATE_NORM):
        np.testing.assert_allclose(run.param[:, :, stat], ref.param[:, :, stat], rtol=1e-4)


def test_wrapper_parts_are_stripped_from_names():
    assert user_name("_fsdp_wrapped_module.blocks.0._checkpoint_wrapped_module.fc.weight") == (
        "blocks.0.fc.weight")
    assert user_name("encoder._fsdp_wrapped_module") == "encoder"
    assert user_name("my_fsdp_wrapped_module_x.weight") == "my_fsdp_wrapped_module_x.weight"
