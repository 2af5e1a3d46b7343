"""watch() on a torch.compile'd model: probes traced into the graph, no graph breaks."""

from __future__ import annotations

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
