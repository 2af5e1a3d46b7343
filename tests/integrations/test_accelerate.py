"""A plain accelerate loop under watch(): real optimizer steps inside accelerator.accumulate()."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
accelerate = pytest.importorskip("accelerate")

import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

import netdoctor  # noqa: E402
from netdoctor.runlog import open_run  # noqa: E402
from netdoctor.runlog.schema import StepField  # noqa: E402


def test_steps_inside_accumulate_are_real_optimizer_steps(tmp_path: Path) -> None:
    accelerator = accelerate.Accelerator(gradient_accumulation_steps=4, cpu=True)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    x = torch.randn(96, 8)
    data = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, x[:, :1] - x[:, 1:2]), batch_size=8)
    model, optimizer, data = accelerator.prepare(model, optimizer, data)
    assert not hasattr(optimizer, "_optimizer_step_pre_hooks")  # accelerate's wrapper
    monitor = netdoctor.watch(model, optimizer, log=tmp_path / "run.sqlite")
    losses = []
    for _ in range(2):
        for xb, yb in data:
            with accelerator.accumulate(model):
                loss = F.mse_loss(model(xb), yb)
                accelerator.backward(loss)
                optimizer.step()  # called every micro-batch; steps every 4th
                optimizer.zero_grad()
                monitor.step(loss)
                losses.append(float(loss.detach()))
    diagnoses = monitor.close()
    run = open_run(tmp_path / "run.sqlite")
    assert run.n_steps == 2 * 12 // 4
    assert (run.series(StepField.MICRO_BATCHES) == 4).all()
    np.testing.assert_allclose(run.loss, np.array(losses).reshape(-1, 4).mean(axis=1), rtol=1e-5)
    assert np.isfinite(run.grad_norm).all() and (run.grad_norm > 0).all()
    assert [d for d in diagnoses if d.severity.value == "error"] == []
