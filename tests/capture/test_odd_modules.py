"""Modules that return odd things never break the user's training step.

A probe that cannot measure an output (complex, integer, dict of tuples with None inside, an
empty batch, sparse embedding gradients) either measures what it can or disables itself with
one warning naming the layer; training goes on and the log stays readable.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

import netdoctor
from netdoctor.runlog import open_run


class Branches(nn.Module):
    """Returns a dict holding a tuple with a None and an int inside."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> dict[str, object]:
        h = self.fc(x)
        return {"h": h, "extra": (h, None, 3)}


class ComplexOut(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.complex(x, x)


class IntOut(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x > 0).long()


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.branches = Branches()
        self.spectrum = ComplexOut()
        self.mask = IntOut()
        self.emb = nn.Embedding(10, 4, sparse=True)
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        h = self.branches(x)["h"]
        self.spectrum(x)
        self.mask(x)
        return self.head(h + self.emb(idx))


def test_odd_outputs_disable_only_their_probe_and_training_goes_on(tmp_path):
    torch.manual_seed(0)
    model = Net()
    dense = [p for n, p in model.named_parameters() if not n.startswith("emb")]
    opt = torch.optim.SGD(dense, lr=0.05)
    sparse_opt = torch.optim.SparseAdam(list(model.emb.parameters()))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        monitor = netdoctor.watch(model, opt, log=tmp_path / "odd.sqlite")
        for step in range(6):
            n = 0 if step == 3 else 8  # one empty batch
            x, idx = torch.randn(n, 4), torch.randint(0, 10, (n,))
            opt.zero_grad()
            sparse_opt.zero_grad()
            loss = model(x, idx).square().sum() / max(n, 1)
            loss.backward()
            opt.step()
            sparse_opt.step()
            monitor.step(loss)
        monitor.close()
    messages = [str(w.message) for w in caught if "netdoctor" in str(w.message)]
    assert any("spectrum" in m and "complex" in m for m in messages), messages
    assert any("mask" in m and "int64" in m for m in messages), messages
    assert len(messages) == 2, messages  # one warning per disabled probe, no more
    run = open_run(tmp_path / "odd.sqlite")
    assert run.n_steps == 6
    assert {e.layer for e in run.events_of("warning")} == {"spectrum", "mask"}
    fc = next(s for s in run.sites if s.module == "branches.fc")
    assert fc.forward_order is not None  # the dict-returning parent did not hide its children
