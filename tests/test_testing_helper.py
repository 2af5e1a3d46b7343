"""``netdoctor.testing.assert_healthy``: passes a healthy tiny loop, fails a diverging one."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402 - after the importorskip: these tests need torch

from netdoctor.errors import ConfigError  # noqa: E402
from netdoctor.runlog import open_run  # noqa: E402
from netdoctor.testing import assert_healthy  # noqa: E402


def batches(n: int = 8) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """A separable 2-class problem in n batches of 32."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(32 * n, 8, generator=gen)
    y = (x[:, 0] + x[:, 1] > 0).long()
    return [(x[i:i + 32], y[i:i + 32]) for i in range(0, 32 * n, 32)]


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 2))


def sgd(model: nn.Module, lr: float) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=lr)


def test_healthy_loop_passes_and_keeps_the_model_mode(tmp_path: Path) -> None:
    model = mlp().eval()
    log = tmp_path / "healthy.sqlite"
    found = assert_healthy(model, batches(), nn.CrossEntropyLoss(), sgd(model, 0.1), log=log)
    assert all(d.severity.value != "error" for d in found)
    assert not model.training  # put back as it came
    assert open_run(log).n_steps == 100  # the loader (8 batches) was cycled


def test_diverging_loop_fails_with_the_diagnoses() -> None:
    model = mlp()
    with pytest.raises(AssertionError) as info:
        assert_healthy(model, batches(), nn.CrossEntropyLoss(), sgd(model, 1e4))
    message = str(info.value)
    assert "exploding_gradients" in message and "nan_loss" in message
    assert message.splitlines()[0].startswith("netdoctor: 2 of 2 diagnoses at or above error")
    assert "  error nan_loss at step" in message
    assert "    fix: " in message  # the most promising fix of each


def test_a_failure_says_what_the_checkup_finds_before_training() -> None:
    """A bug in the model (zero init) shows in the checkup; a training setting (lr 1e4) not."""
    broken = mlp()
    for layer in broken:
        if isinstance(layer, nn.Linear):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
    with pytest.raises(AssertionError) as info:
        assert_healthy(broken, batches(), nn.CrossEntropyLoss(), sgd(broken, 0.1), steps=30,
                       fail_on="warning")
    tail = str(info.value).split("checkup before training")[1]
    assert "warning symmetric_weights" in tail and "fix: break_symmetry" in tail
    model = mlp()
    with pytest.raises(AssertionError) as info:
        assert_healthy(model, batches(), nn.CrossEntropyLoss(), sgd(model, 1e4), steps=30)
    assert "checkup before training (the first batch, a copy of the model): nothing found" in (
        str(info.value))


def test_rule_selection_applies() -> None:
    model = mlp()
    found = assert_healthy(model, batches(), nn.CrossEntropyLoss(), sgd(model, 1e4), steps=20,
                           ignore=["exploding_gradients", "nan_loss"])
    assert {d.rule for d in found}.isdisjoint({"exploding_gradients", "nan_loss"})


def test_steps_and_generator_loader(tmp_path: Path) -> None:
    model = mlp()
    data = batches(3)
    log = tmp_path / "run.sqlite"
    assert_healthy(model, (b for b in data), nn.CrossEntropyLoss(), sgd(model, 0.1), steps=3,
                   log=log)
    assert open_run(log).n_steps == 3


@pytest.mark.parametrize(
    ("kwargs", "error", "needle"),
    [
        ({"fail_on": "info"}, ValueError, "fail_on"),
        ({"steps": 0}, ValueError, "steps"),
        ({"select": ["no_such_rule"]}, ConfigError, "no_such_rule"),
        ({"loader": [torch.zeros(4, 8)]}, TypeError, "(x, y) pairs"),
        ({"loader": []}, ValueError, "no batches"),
    ],
)
def test_bad_arguments(kwargs: dict, error: type[Exception], needle: str) -> None:
    model = mlp()
    options = {"steps": 2, **kwargs}
    loader = options.pop("loader", batches(1))
    with pytest.raises(error) as info:
        assert_healthy(model, loader, nn.CrossEntropyLoss(), sgd(model, 0.1), **options)
    assert needle in str(info.value)
