"""Every recorded number checked against a direct computation on the same tensors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from netdoctor.capture import SamplingSchedule, watch
from netdoctor.runlog import open_run
from netdoctor.runlog.schema import ActStat, ParamStat, StepField


class Net(nn.Module):
    """In-place ReLU module, a functional ReLU, and a sigmoid: the three ways activations come."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(5, 16)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Linear(16, 16)
        self.fc3 = nn.Linear(16, 8)
        self.gate = nn.Sigmoid()
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.head(self.gate(self.fc3(x) * 4))


def _site(run, name):
    return next(s for s in run.sites if s.name == name)


def test_activation_stats_match_the_tensors(tmp_path):
    model = Net()
    captured: dict[str, torch.Tensor] = {}
    model.fc1.register_forward_hook(lambda m, a, o: captured.__setitem__("fc1", o.detach().clone()))
    model.act.register_forward_hook(lambda m, a, o: captured.__setitem__("act", o.detach().clone()))
    model.head.register_forward_pre_hook(
        lambda m, a: captured.__setitem__("head_in", a[0].detach().clone()))
    model.fc3.register_forward_pre_hook(
        lambda m, a: captured.__setitem__("fc3_in", a[0].detach().clone()))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(32, 5), torch.randint(0, 3, (32,))
    monitor = watch(model, opt, log=tmp_path / "run.sqlite")
    opt.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    monitor.step(loss)
    monitor.close()
    run = open_run(tmp_path / "run.sqlite")

    act = run.act[0]
    # fc1's output is measured before the in-place ReLU overwrites it.
    fc1 = captured["fc1"]
    row = act[_site(run, "fc1").idx]
    assert row[ActStat.MEAN] == pytest.approx(fc1.mean().item(), rel=1e-4, abs=1e-6)
    assert row[ActStat.STD] == pytest.approx(fc1.std(unbiased=False).item(), rel=1e-3)
    assert row[ActStat.MIN] == pytest.approx(fc1.min().item(), rel=1e-5)
    assert row[ActStat.MAX] == pytest.approx(fc1.max().item(), rel=1e-5)
    assert row[ActStat.NONFINITE] == 0
    assert row[ActStat.CALLS] == 1 and row[ActStat.NUMEL] == fc1.numel()

    relu = captured["act"]
    row = act[_site(run, "act").idx]
    assert row[ActStat.ZERO_FRAC] == pytest.approx((relu == 0).float().mean().item())
    dead = (relu.amax(dim=0) <= 0).float().mean().item()
    assert row[ActStat.DEAD_FRAC] == pytest.approx(dead)

    # F.relu inside forward: seen as the input of fc3, with its zeros.
    fc3_in = captured["fc3_in"]
    row = act[_site(run, "fc3 (input)").idx]
    assert row[ActStat.ZERO_FRAC] == pytest.approx((fc3_in == 0).float().mean().item())
    assert row[ActStat.MIN] >= 0

    # The sigmoid's saturation: fraction within 0.5 % of the half-range from 0 or 1.
    gate = captured["head_in"]
    row = act[_site(run, "gate").idx]
    sat = ((gate - 0.5).abs() >= 0.5 * 0.995).float().mean().item()
    assert row[ActStat.SAT_FRAC] == pytest.approx(sat)
    # fc2's input is the in-place ReLU's output: measured once, not twice.
    assert "fc2 (input)" not in {s.name for s in run.sites}
    assert "head (input)" not in {s.name for s in run.sites}


def test_gradient_weight_and_update_norms_match(tmp_path):
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    x, y = torch.randn(16, 4), torch.randn(16, 2)
    grads, updates, weights, losses = [], [], [], []
    with watch(model, opt, log=tmp_path / "run.sqlite", schedule=SamplingSchedule.every(1)) as mon:
        for _ in range(3):
            opt.zero_grad()
            loss = F.mse_loss(model(x), y)
            loss.backward()
            grads.append([torch.linalg.vector_norm(p.grad).item() for p in model.parameters()])
            before = [p.detach().clone() for p in model.parameters()]
            opt.step()
            updates.append([torch.linalg.vector_norm(p.detach() - b).item()
                            for p, b in zip(model.parameters(), before, strict=True)])
            weights.append([torch.linalg.vector_norm(p.detach()).item()
                            for p in model.parameters()])
            losses.append(loss.item())
            mon.step(loss)
    run = open_run(tmp_path / "run.sqlite")
    assert run.n_steps == 3 and list(run.sample_steps) == [0, 1, 2]
    np.testing.assert_allclose(run.param_stat(ParamStat.GRAD_NORM), grads, rtol=1e-5)
    np.testing.assert_allclose(run.param_stat(ParamStat.UPDATE_NORM), updates, rtol=1e-4)
    np.testing.assert_allclose(run.param_stat(ParamStat.WEIGHT_NORM), weights, rtol=1e-5)
    np.testing.assert_allclose(run.loss, losses, rtol=1e-6)
    total = np.sqrt((np.array(grads) ** 2).sum(axis=1))
    np.testing.assert_allclose(run.series(StepField.GRAD_NORM), total, rtol=1e-5)
    assert math.isclose(run.series(StepField.LR)[0], 0.05)
    assert [p.name for p in run.params] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert all(p.in_optimizer and p.trainable for p in run.params)


def test_unit_spread_is_zero_for_identical_units_and_near_one_for_random_init(tmp_path):
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    with torch.no_grad():
        model[2].weight.fill_(0.3)  # constant init: every unit the same
        model[4].weight.zero_()
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    monitor = watch(model, opt, log=tmp_path / "run.sqlite")
    opt.zero_grad()
    loss = model(torch.randn(16, 4)).square().mean()
    loss.backward()
    opt.step()
    monitor.step(loss)
    monitor.close()
    run = open_run(tmp_path / "run.sqlite")
    spread = {p.name: float(run.param_stat(ParamStat.UNIT_SPREAD)[0, p.idx]) for p in run.params}
    w = model[0].weight.detach().double()
    expected = ((w - w.mean(0)).square().mean().sqrt() / w.square().mean().sqrt()).item()
    assert spread["0.weight"] == pytest.approx(expected, rel=1e-5)
    assert 0.5 < spread["0.weight"] < 1.5
    assert spread["2.weight"] == pytest.approx(0.0, abs=1e-6)
    assert spread["4.weight"] == 0.0
    assert math.isnan(spread["0.bias"])


def test_unit_spread_of_non_finite_weights_is_unknown_not_symmetric():
    from netdoctor.capture.param_probe import _unit_spread

    weights = torch.randn(6, 4)
    weights[2, 1] = float("nan")
    assert math.isnan(float(_unit_spread(weights, torch.float64)))
    weights[2, 1] = float("inf")
    assert math.isnan(float(_unit_spread(weights, torch.float64)))
