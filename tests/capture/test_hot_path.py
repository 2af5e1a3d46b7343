"""The cheap paths of the hot loop give the numbers of the exact ones.

On the CPU, norms and unit spreads are taken in float32 and the doubtful values again in float64;
the weights' snapshot is one buffer reused across sampled steps and freed between them.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from netdoctor.capture import SamplingSchedule, watch
from netdoctor.capture.param_probe import _norms, _unit_spread, _unit_spreads
from netdoctor.runlog import open_run
from netdoctor.runlog.schema import ParamStat

F64 = torch.float64


def _exact_norms(tensors: list[torch.Tensor]) -> list[float]:
    return [float(torch.linalg.vector_norm(t.double())) for t in tensors]


@pytest.mark.parametrize("scale", [1.0, 1e-25, 1e-30, 1e20, 3e30, 0.0])
def test_float32_norms_equal_float64_ones_at_any_scale(scale):
    torch.manual_seed(0)
    tensors = [torch.randn(300, 40) * scale, torch.randn(7) * scale, torch.randn(5, 3)]
    got = _norms(tensors, F64, host_checked=True)
    assert got.dtype == F64
    np.testing.assert_allclose(got.tolist(), _exact_norms(tensors), rtol=1e-6)


def test_float32_norms_keep_non_finite_values():
    tensors = [torch.tensor([1.0, float("nan")]), torch.tensor([float("inf"), 1.0]),
               torch.ones(3)]
    got = _norms(tensors, F64, host_checked=True).tolist()
    assert math.isnan(got[0]) and got[1] == math.inf and got[2] == pytest.approx(math.sqrt(3))


def test_low_precision_tensors_are_summed_in_float32_at_least():
    t = torch.full((10_000,), 0.01, dtype=torch.bfloat16)
    got = float(_norms([t], F64, host_checked=True)[0])
    assert got == pytest.approx(float(torch.linalg.vector_norm(t.double())), rel=1e-6)


def _weights() -> list[torch.Tensor]:
    torch.manual_seed(1)
    near = torch.full((6, 5), 0.3)
    near[2, 1] += 3e-5  # units almost identical: spread ~1e-5, decided in float64
    return [
        torch.randn(64, 30),  # random init: spread ~1
        torch.randn(40, 30) + 0.8,  # a shared mean row: spread ~0.8 (from the mean row alone)
        torch.randn(40, 30) * 0.1 + 1.0,  # spread ~0.1: from W - mean row
        torch.full((8, 8), 0.3),  # identical units
        torch.zeros(8, 4),  # all zero: 0, not 0/0
        near,
        torch.randn(16, 3, 3, 3),  # conv weight: units are output channels
        torch.randn(32, 8) * 1e20,  # large but finite
        torch.randn(32, 8) * 1e-30,  # tiny
        torch.randn(10),  # a bias: NaN
        torch.randn(1, 9),  # one unit: NaN
        torch.tensor([[1.0, float("nan")], [2.0, 3.0]]),  # non-finite: NaN
        torch.randn(12, 6).to(torch.bfloat16),
        torch.randn(12, 6, dtype=F64),
    ]


def test_unit_spreads_equal_the_float64_reference():
    weights = _weights()
    norms = _norms(weights, F64, host_checked=True)
    got = _unit_spreads(weights, norms, F64, host_checked=True).tolist()
    want = [float(_unit_spread(w, F64)) for w in weights]
    for g, w, weight in zip(got, want, weights, strict=True):
        if math.isnan(w):
            assert math.isnan(g), (weight.shape, g)
        else:
            assert g == pytest.approx(w, rel=1e-5, abs=1e-12), (weight.shape, g, w)
    assert got[3] == 0.0 and got[4] == 0.0  # identical units, all-zero weights
    assert 0.5 < got[1] < 1.0 and 0.05 < got[2] < 0.5


def _train(schedule: SamplingSchedule, log, steps: int):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    x, y = torch.randn(32, 6), torch.randint(0, 3, (32,))
    updates, buffers = [], []
    monitor = watch(model, opt, log=log, schedule=schedule)
    for _ in range(steps):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        before = [p.detach().clone() for p in model.parameters()]
        opt.step()
        updates.append([float(torch.linalg.vector_norm(p.detach() - b))
                        for p, b in zip(model.parameters(), before, strict=True)])
        monitor.step(loss)
        buffers.append(monitor._param_probe._before is not None)
    monitor.close()
    return open_run(log), np.array(updates), buffers


def test_update_norms_stay_right_when_the_snapshot_buffer_is_reused_and_freed(tmp_path):
    # sampled: 0-3 (dense), then every 2nd step, then every 4th
    run, updates, buffers = _train(SamplingSchedule(dense=4, max_interval=4), tmp_path / "r.sqlite",
                                   steps=20)
    sampled = [int(s) for s in run.sample_steps]
    assert sampled == [0, 1, 2, 3, 4, 6, 8, 12, 16]
    np.testing.assert_allclose(run.param_stat(ParamStat.UPDATE_NORM), updates[sampled], rtol=1e-5)
    # the buffer is made on a sampled step and outlives it only when the next one is sampled too
    assert buffers == [s in sampled and s + 1 in sampled for s in range(20)]


class Mixed(nn.Module):
    """Every kind of site: ReLU and sigmoid/tanh modules, a module called twice per step, a conv
    (4-D, channel units), an LSTM (a tuple output), and a functional ReLU seen as an input."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.act = nn.ReLU()
        self.fc = nn.Linear(4 * 6 * 6, 12)
        self.shared = nn.Linear(12, 12)
        self.gate = nn.Sigmoid()
        self.squash = nn.Tanh()
        self.lstm = nn.LSTM(12, 8, batch_first=True)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.conv(x)).flatten(1)
        h = F.relu(self.fc(h))
        h = self.squash(self.shared(self.gate(self.shared(h) * 3)))
        out, _ = self.lstm(h[:, None, :].expand(-1, 2, -1))
        return self.head(out[:, -1])


def _sample(host_reads: bool, x: torch.Tensor, tmp_path) -> np.ndarray:
    torch.manual_seed(0)
    model = Mixed()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with watch(model, opt, log=tmp_path / f"{host_reads}.sqlite",
               schedule=SamplingSchedule.every(1)) as monitor:
        monitor._act._host_reads = host_reads
        for _ in range(2):
            opt.zero_grad()
            loss = model(x).square().mean()
            loss.backward()
            opt.step()
            monitor.step(loss)
    return open_run(tmp_path / f"{host_reads}.sqlite").act


@pytest.mark.parametrize("poison", [False, True])
def test_cpu_shortcuts_give_the_statistics_of_the_device_path(tmp_path, poison):
    torch.manual_seed(2)
    x = torch.randn(5, 3, 6, 6)
    x[0, 0] = 0.0  # zeros in the input, dead units after the ReLUs
    if poison:  # a non-finite input: the shortcuts step aside
        x[1, 2, 3, 3] = float("nan")
    fast, exact = _sample(True, x, tmp_path), _sample(False, x, tmp_path)
    np.testing.assert_allclose(fast, exact, rtol=2e-5, atol=1e-6, equal_nan=True)
    assert np.isfinite(exact).any()
