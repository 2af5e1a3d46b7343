"""watch() on a torch.compile'd model: probes traced into the graph, no graph breaks."""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import netdoctor
from netdoctor.runlog import open_run
from netdoctor.runlog.schema import ActStat

dynamo = pytest.importorskip("torch._dynamo")
pytest.importorskip("torch._dynamo.testing")


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def test_compiled_model_is_watched_without_graph_breaks(tmp_path):
    from torch._dynamo.testing import CompileCounterWithBackend
    from torch._dynamo.utils import counters

    counters.clear()
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 32), nn.Tanh(),
                          nn.Linear(32, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    backend = CompileCounterWithBackend("aot_eager")
    monitor = netdoctor.watch(model, opt, log=tmp_path / "c.sqlite")  # before the first call
    compiled = torch.compile(model, backend=backend)
    for _ in range(40):
        x, y = torch.randn(16, 8), torch.randint(0, 2, (16,))
        opt.zero_grad()
        loss = F.cross_entropy(compiled(x), y)
        loss.backward()
        opt.step()
        monitor.step(loss)
    monitor.close()
    assert dict(counters["graph_break"]) == {}
    assert backend.frame_count <= 3  # first step, full statistics, cheap check: no recompiles
    run = open_run(tmp_path / "c.sqlite")
    assert run.n_steps == 40
    calls = run.act_stat(ActStat.CALLS)
    assert (calls[:, [s.idx for s in run.sites if s.role == "output"]] == 1).all()
    order = [s.name for s in run.sites_in_forward_order(role="output")]
    assert order == ["0", "1", "2", "3", "4"]  # registration order stands in for discovery


def _train(model: nn.Module, call: nn.Module, log, steps: int = 24) -> None:
    """``steps`` SGD steps of ``call`` (the model, or a compiled wrapper of it) on fixed data."""
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    g = torch.Generator().manual_seed(1)
    monitor = netdoctor.watch(call, opt, log=log)
    for _ in range(steps):
        x, y = torch.randn(16, 8, generator=g), torch.randint(0, 2, (16,), generator=g)
        opt.zero_grad()
        loss = F.cross_entropy(call(x), y)
        loss.backward()
        opt.step()
        monitor.step(loss)
    monitor.close()


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 32), nn.Tanh(),
                         nn.Linear(32, 2))


def test_watch_after_torch_compile_gives_the_eager_statistics(tmp_path):
    """watch(compiled) before its first call: hooks traced, no graph break, values as eager."""
    from torch._dynamo.testing import CompileCounterWithBackend
    from torch._dynamo.utils import counters

    eager_model = _mlp()
    _train(eager_model, eager_model, tmp_path / "eager.sqlite")
    counters.clear()
    backend = CompileCounterWithBackend("aot_eager")
    model = _mlp()
    _train(model, torch.compile(model, backend=backend), tmp_path / "compiled.sqlite", steps=40)
    assert dict(counters["graph_break"]) == {}
    assert backend.frame_count <= 3
    eager, compiled = open_run(tmp_path / "eager.sqlite"), open_run(tmp_path / "compiled.sqlite")
    n = eager.n_steps
    np.testing.assert_allclose(compiled.loss[:n], eager.loss, rtol=1e-5)
    np.testing.assert_allclose(compiled.grad_norm[:n], eager.grad_norm, rtol=1e-5)
    k = len(eager.sample_steps)
    assert list(compiled.sample_steps[:k]) == list(eager.sample_steps)
    # compiled, an input site that repeats the previous layer's output is logged too (telling
    # duplicates apart needs object identity, which eager discovery has): compare by name
    by_name = {s.name: s.idx for s in compiled.sites}
    same = [by_name[s.name] for s in eager.sites]
    np.testing.assert_allclose(compiled.act[:k, same], eager.act, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(compiled.param[:k], eager.param, rtol=1e-4, atol=1e-7)


def test_a_model_that_already_ran_compiled_gets_a_warning(tmp_path):
    model = _mlp()
    compiled = torch.compile(model, backend="aot_eager")
    compiled(torch.randn(16, 8))  # the shape training uses: no recompile would trace the hooks
    with pytest.warns(RuntimeWarning, match="already ran under torch.compile"):
        _train(model, compiled, tmp_path / "late.sqlite", steps=3)
    calls = open_run(tmp_path / "late.sqlite").act_stat(ActStat.CALLS)
    assert (calls == 0).all()  # what the warning is about: the probes never ran
    torch._dynamo.reset()  # the advice in the warning: the next call traces the hooks
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        _train(model, compiled, tmp_path / "reset.sqlite", steps=3)
    assert (open_run(tmp_path / "reset.sqlite").act_stat(ActStat.CALLS) > 0).any()


def test_a_new_model_is_not_warned_about_another_class(tmp_path):
    other = torch.compile(nn.Linear(8, 2), backend="aot_eager")
    other(torch.randn(4, 8))

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(8, 2)

        def forward(self, x):
            return self.fc(x).relu()

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        _train(Net(), Net(), tmp_path / "other.sqlite", steps=2)


@pytest.mark.skipif(shutil.which("c++") is None and shutil.which("g++") is None,
                    reason="inductor on CPU needs a C++ compiler")
def test_inductor_no_graph_break_and_eager_values(tmp_path):
    from torch._dynamo.utils import counters

    counters.clear()
    model = _mlp()
    _train(model, torch.compile(model), tmp_path / "inductor.sqlite", steps=20)
    assert dict(counters["graph_break"]) == {}
    assert counters["stats"]["unique_graphs"] <= 3
    eager_model = _mlp()
    _train(eager_model, eager_model, tmp_path / "eager.sqlite", steps=20)
    got, want = open_run(tmp_path / "inductor.sqlite"), open_run(tmp_path / "eager.sqlite")
    np.testing.assert_allclose(got.loss, want.loss, rtol=1e-4)
    np.testing.assert_allclose(got.grad_norm, want.grad_norm, rtol=1e-4)
    outputs = [s.idx for s in want.sites if s.role == "output"]
    np.testing.assert_allclose(got.act_stat(ActStat.STD)[:, outputs],
                               want.act_stat(ActStat.STD)[:, outputs], rtol=1e-3)
