"""Autocast and GradScaler: statistics reduced in float32, skipped steps not counted."""

from __future__ import annotations

import numpy as np
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
