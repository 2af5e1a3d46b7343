"""Autocast and GradScaler: statistics reduced in float32, skipped steps not counted."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from netdoctor.capture import SamplingSchedule, watch
from netdoctor.runlog import open_run
from netdoctor.runlog.schema import ActStat


def test_bf16_autocast_statistics_are_finite_and_close_to_float32(tmp_path):
    model = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 4))
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    x, y = torch.randn(64, 16) * 30, torch.randint(0, 4, (64,))
    with watch(model, opt, log=tmp_path / "r.sqlite", schedule=SamplingSchedule.every(1)) as mon:
        for autocast in (False, True):
            opt.zero_grad()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            mon.step(loss)
    run = open_run(tmp_path / "r.sqlite")
    fc = next(s.idx for s in run.sites if s.name == "0")
    exact, half = run.act[0, fc], run.act[1, fc]
    assert np.isfinite(half).all() or np.isnan(half[ActStat.SAT_FRAC])
    assert half[ActStat.STD] == np.float32(half[ActStat.STD])
    np.testing.assert_allclose(half[ActStat.STD], exact[ActStat.STD], rtol=2e-2)
    np.testing.assert_allclose(half[ActStat.MEAN], exact[ActStat.MEAN], rtol=5e-2, atol=0.05)


def test_steps_skipped_by_a_grad_scaler_are_not_counted(tmp_path):
    model = nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**4)
    with watch(model, opt, log=tmp_path / "r.sqlite") as monitor:
        for i in range(6):
            opt.zero_grad()
            x = torch.randn(8, 4)
            if i == 2:
                x[0, 0] = float("inf")  # inf gradients: the scaler skips this optimizer step
            loss = F.mse_loss(model(x), torch.randn(8, 1))
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            monitor.step(loss)
    run = open_run(tmp_path / "r.sqlite")
    assert run.n_steps == 5
    assert list(run.step_numbers) == [0, 1, 2, 3, 4]
    assert (run.grad_norm < 1e3).all()  # gradients read after unscaling, not scaled by 16


def _blobs(steps: int, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(3, 8, generator=g) * 2
    batches = []
    for _ in range(steps):
        y = torch.randint(0, 3, (32,), generator=g)
        batches.append((centers[y] + torch.randn(32, 8, generator=g), y))
    return batches


def _classifier() -> nn.Module:
    return nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                         nn.Linear(64, 3))


def _serious(diagnoses) -> list[str]:
    return [d.rule for d in diagnoses if d.severity.value in ("error", "warning")]


def test_a_healthy_bf16_autocast_run_is_quiet(tmp_path):
    model = _classifier()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    with watch(model, opt, log=tmp_path / "r.sqlite", num_classes=3) as monitor:
        for x, y in _blobs(120):
            opt.zero_grad()
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            monitor.step(loss)
    assert _serious(monitor.close()) == []
    run = open_run(tmp_path / "r.sqlite")
    assert np.isfinite(run.loss).all() and np.isfinite(run.grad_norm).all()
    assert run.loss[-10:].mean() < 0.5 * run.loss[:10].mean()


def _scaled_run(tmp_path, fused: bool, inf_at: set[int], steps: int = 120):
    """AdamW under torch.amp.GradScaler('cpu'); inf written into one gradient (what an fp16
    overflow does) at the steps in ``inf_at``: the loss itself stays finite."""
    model = _classifier()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, fused=fused)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    with watch(model, opt, log=tmp_path / f"fused{fused}.sqlite", num_classes=3) as monitor:
        for i, (x, y) in enumerate(_blobs(steps)):
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            scaler.scale(loss).backward()
            if i in inf_at:
                model[2].weight.grad[0, 0] = float("inf")
            scaler.step(opt)
            scaler.update()
            monitor.step(loss)
    return monitor.close(), open_run(tmp_path / f"fused{fused}.sqlite")


@pytest.mark.parametrize("fused", [False, True], ids=["foreach", "fused"])
def test_steps_a_grad_scaler_skips_are_not_a_diagnosis(tmp_path, fused):
    diagnoses, run = _scaled_run(tmp_path, fused, inf_at={20, 21, 70})
    assert _serious(diagnoses) == []
    assert np.isfinite(run.loss).all()
    finite = np.isfinite(run.grad_norm)
    assert np.median(run.grad_norm[finite]) < 5  # unscaled: the scale is 1024
    if fused:  # the step runs (and skips its update inside the kernel): counted, inf grads
        assert run.n_steps == 120 and (~finite).sum() == 3
    else:  # the scaler never calls optimizer.step(): not a step
        assert run.n_steps == 117 and finite.all()


def test_persistent_inf_gradients_under_a_fused_scaler_are_diagnosed(tmp_path):
    diagnoses, _ = _scaled_run(tmp_path, True, inf_at=set(range(60, 120)))
    nan = [d for d in diagnoses if d.rule == "nan_loss"]
    assert len(nan) == 1 and nan[0].step == 60
