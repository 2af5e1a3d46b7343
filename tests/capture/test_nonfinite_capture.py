"""The first non-finite value is located: the input data, a layer, the loss, or a gradient."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from netdoctor.capture import watch
from netdoctor.runlog import open_run
from netdoctor.runlog.schema import RunStatus, StepFlag


def _train(tmp_path, model, batches, loss_fn=F.mse_loss, lr=0.01):
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    with watch(model, opt, log=tmp_path / "r.sqlite") as monitor:
        for x, y in batches:
            opt.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            monitor.step(loss)
    return open_run(tmp_path / "r.sqlite")


def test_nan_in_the_data_is_traced_to_the_input(tmp_path):
    batches = [(torch.randn(8, 4), torch.randn(8, 1)) for _ in range(40)]
    batches[37][0][3, 2] = float("nan")  # late, after the dense sampling phase
    run = _train(tmp_path, nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1)), batches)
    (event,) = run.events_of("nonfinite")
    assert event.step == 37
    assert event.data["source"] == "input"
    assert event.layer == "0 (input)"
    assert run.flags[37] & StepFlag.ACT_NONFINITE
    assert run.n_steps == 40  # nothing lost after the NaN


class Overflow(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.b = nn.Linear(4, 1)

    def forward(self, x):
        return self.b(torch.exp(self.a(x) * 200))  # exp overflows to inf inside the model


def test_overflow_inside_the_model_names_the_first_bad_layer(tmp_path):
    batches = [(torch.randn(8, 4) * (1 if i < 5 else 10), torch.randn(8, 1)) for i in range(8)]
    run = _train(tmp_path, Overflow(), batches, lr=0.0)
    (event,) = run.events_of("nonfinite")
    assert event.data["source"] == "activation"
    assert event.layer == "b (input)"  # a is finite; the functional exp's output, b's input, is not
    assert event.step == min(s for s in range(8) if run.flags[s] & StepFlag.ACT_NONFINITE)


def test_nan_made_by_the_loss_is_traced_to_the_loss(tmp_path):
    def bad_loss(out, y):
        return torch.log(out - 100).mean()  # log of a negative number

    batches = [(torch.randn(8, 4), torch.randn(8, 1)) for _ in range(3)]
    run = _train(tmp_path, nn.Linear(4, 1), batches, loss_fn=bad_loss)
    (event,) = run.events_of("nonfinite")
    assert event.step == 0 and event.data["source"] == "loss" and event.layer is None


def test_user_exception_in_forward_keeps_the_log_and_records_the_crash(tmp_path):
    model = nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    with pytest.raises(RuntimeError, match="boom"), \
            watch(model, opt, log=tmp_path / "r.sqlite") as monitor:
        for i in range(10):
            if i == 7:
                raise RuntimeError("boom in forward\nsecond line")
            opt.zero_grad()
            loss = F.mse_loss(model(torch.randn(8, 4)), torch.randn(8, 1))
            loss.backward()
            opt.step()
            monitor.step(loss)
    run = open_run(tmp_path / "r.sqlite")
    assert run.n_steps == 7
    assert run.status is RunStatus.CRASHED
    assert run.meta["end_message"] == "RuntimeError: boom in forward"


class HomeMadeNorm(nn.Module):
    """A user's own parameter-free module, dividing by a std that can be 0 (no eps)."""

    def forward(self, h):
        return (h - h.mean(0)) / h.std(0)


def test_parameter_free_user_modules_are_probed_and_named(tmp_path):
    model = nn.Sequential(nn.Linear(3, 4), HomeMadeNorm(), nn.Linear(4, 1))
    batches = [(torch.randn(4, 3), torch.randn(4, 1)) for _ in range(3)]
    batches.append((torch.ones(4, 3), torch.randn(4, 1)))  # identical rows: std 0, 0/0 = NaN
    run = _train(tmp_path, model, batches)
    (event,) = run.events_of("nonfinite")
    assert event.step == 3 and event.layer == "1" and event.data["source"] == "activation"


def test_large_but_finite_gradients_are_not_called_non_finite(tmp_path):
    model = nn.Linear(4, 1)
    x = torch.full((8, 4), 3e9)  # gradient entries ~1e20: finite in float32, its norm too
    run = _train(tmp_path, model, [(x, torch.zeros(8, 1))], lr=0.0)
    assert run.events_of("nonfinite") == []
    assert np.isfinite(run.grad_norm[0]) and run.grad_norm[0] > 1e19


def test_a_bare_module_gets_its_class_name(tmp_path):
    run = _train(tmp_path, nn.Linear(4, 1), [(torch.randn(8, 4), torch.randn(8, 1))])
    assert {p.module for p in run.params} == {"Linear"}
    assert [s.name for s in run.sites] == ["Linear", "Linear (input)"]
