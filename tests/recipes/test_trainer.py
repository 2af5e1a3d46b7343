"""The recipe trainer, with real (tiny) training: determinism, early stopping, clipping,
budgets, controls from another thread, divergence, interrupts, crashes, user data, schedules."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from netdoctor.errors import ConfigError
from netdoctor.recipes.spec import Recipe, recipe_from_tables
from netdoctor.recipes.trainer import (
    Controls,
    Progress,
    TrainingError,
    resolve_device,
    train,
)
from netdoctor.runlog import open_run
from netdoctor.runlog.schema import RunStatus, StepField


def tiny(**changes: dict[str, Any]) -> Recipe:
    """Blobs and a one-layer MLP: a run of a few dozen steps, well under a second."""
    tables: dict[str, dict[str, Any]] = {
        "data": {"kind": "blobs", "samples": 160},
        "model": {"kind": "mlp", "depth": 1, "width": 8},
        "optimizer": {"kind": "adam", "lr": 0.01},
        "train": {"epochs": 2, "batch_size": 16, "device": "cpu"},
    }
    for section, values in changes.items():
        tables.setdefault(section, {}).update(values)
    return recipe_from_tables(tables, "tiny", "recipes/tiny.toml")


def python_recipe(build: Callable[[int], Any], **sections: dict[str, Any]) -> Recipe:
    tables = {"train": {"epochs": 2, "batch_size": 16, "device": "cpu"}}
    for section, values in sections.items():
        tables.setdefault(section, {}).update(values)
    return recipe_from_tables(tables, "hand", "hand.py", builder=build)


def same(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.array_equal(a, b, equal_nan=True))


# ---- determinism ---------------------------------------------------------------------------------
def test_a_seed_gives_the_same_run_loss_for_loss(tmp_path: Path) -> None:
    recipe = tiny(model={"dropout": 0.2}, data={"augment": True}, train={"seed": 3})
    first = train(recipe, tmp_path / "a.sqlite")
    second = train(recipe, tmp_path / "b.sqlite")
    other = train(recipe.with_values({"train.seed": 4}), tmp_path / "c.sqlite")
    losses = [open_run(r.log).loss for r in (first, second, other)]
    assert len(losses[0]) == first.steps == 14  # 112 training samples / 16, two epochs
    assert same(losses[0], losses[1]) and first.metrics == second.metrics
    assert not same(losses[0], losses[2])


def test_result_metrics_and_log_meta(tmp_path: Path) -> None:
    result = train(tiny(), tmp_path / "run.sqlite")
    assert result.stopped == "finished" and result.message is None
    assert result.epochs == 2 and result.checkpoint is None
    assert set(result.metrics) == {"train_loss", "val_loss", "test_loss", "train_acc",
                                   "val_acc", "test_acc"}
    assert all(0 <= result.metrics[k] <= 1 for k in ("train_acc", "val_acc", "test_acc"))
    run = open_run(result.log)
    assert run.status is RunStatus.FINISHED
    assert run.meta["source"] == "recipe" and run.meta["stopped"] == "finished"
    assert run.meta["recipe"]["name"] == "tiny" and run.meta["recipe"]["seed"] == 0
    assert run.meta["final_metrics"] == pytest.approx(result.metrics)
    assert run.task["num_classes"] == 3
    _, _, val = run.epoch_series("val_loss")
    assert len(val) == 2 and np.isfinite(val).all()


# ---- early stopping ------------------------------------------------------------------------------
def test_early_stopping_stops_and_restores_the_best_weights(tmp_path: Path) -> None:
    # 56 noisy training points, a wide net and a high learning rate: it overfits within a few
    # epochs, so the validation loss turns up and early stopping (patience 2) ends the run.
    recipe = tiny(data={"kind": "spirals", "samples": 80, "noise": 0.3},
                  model={"depth": 2, "width": 128}, optimizer={"lr": 0.02},
                  train={"epochs": 40, "early_stopping": 2})
    result = train(recipe, tmp_path / "es.sqlite")
    assert result.stopped == "early_stopping"
    _, _, val = open_run(result.log).epoch_series("val_loss")
    best = int(np.argmin(val))
    assert best == len(val) - 3 and val[-1] > val[best]  # two epochs without improvement
    # the final evaluation ran on the restored weights: it reproduces the best epoch's loss
    assert result.metrics["val_loss"] == pytest.approx(val[best], rel=1e-5)
    assert result.checkpoint == tmp_path / "es.best.pt"
    state = torch.load(result.checkpoint, weights_only=True)
    assert "head.weight" in state
    assert f"the weights of epoch {best + 1} were restored" in (result.message or "")


# ---- clipping ------------------------------------------------------------------------------------
def _one_step_change(tmp_path: Path, **train_options: Any) -> torch.Tensor:
    """How far one SGD step (lr 1) moves the weights of a linear model with huge gradients."""
    model = nn.Linear(4, 2)

    def build(seed: int) -> Any:
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(64, 4, generator=g) * 10
        return model, (x, x[:, :2] * 100), torch.optim.SGD(model.parameters(), lr=1.0)

    before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
    train(python_recipe(build, train=train_options), tmp_path / "clip.sqlite", max_steps=1)
    after = torch.cat([p.detach().flatten() for p in model.parameters()])
    return after - before


def test_gradient_clipping_by_norm_and_by_value(tmp_path: Path) -> None:
    assert _one_step_change(tmp_path).norm() > 1.0  # unclipped, the step is large
    assert _one_step_change(tmp_path, clip_grad_norm=1e-3).norm() <= 1e-3 * (1 + 1e-4)
    by_value = _one_step_change(tmp_path, clip_grad_value=1e-4)
    assert by_value.abs().max() <= 1e-4 * (1 + 1e-4) and by_value.abs().max() > 0


# ---- budgets, controls, divergence, interrupts ---------------------------------------------------
def test_max_steps_ends_the_run_and_says_so(tmp_path: Path) -> None:
    result = train(tiny(train={"epochs": 50}), tmp_path / "s.sqlite", max_steps=9)
    # 7 steps an epoch: the second epoch is recorded as far as it went
    assert result.stopped == "max_steps" and result.steps == 9 and result.epochs == 2
    run = open_run(result.log)
    assert run.n_steps == 9 and run.meta["stopped"] == "max_steps"
    assert run.meta["end_message"] == ("stopped by the max_steps budget (9 steps), after 9 "
                                       "steps, in epoch 2 of 50")
    assert run.meta["budget"] == {"max_steps": 9, "max_time": None}
    assert "test_acc" in result.metrics  # still evaluated at the end


def test_max_time_ends_the_run(tmp_path: Path) -> None:
    started = time.perf_counter()
    result = train(tiny(train={"epochs": 10_000}), tmp_path / "t.sqlite", max_time=0.5)
    assert result.stopped == "max_time"
    assert 0.5 <= result.elapsed_s < 5 and time.perf_counter() - started < 30
    assert "max_time budget (0.5 s)" in open_run(result.log).meta["end_message"]


@pytest.mark.parametrize(("steps", "seconds"), [(0, None), (None, 0.0), (None, math.inf)])
def test_bad_budgets_are_config_errors(steps: int | None, seconds: float | None,
                                       tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        train(tiny(), tmp_path / "x.sqlite", max_steps=steps, max_time=seconds)
    assert not (tmp_path / "x.sqlite").exists()


def test_stop_from_another_thread(tmp_path: Path) -> None:
    controls = Controls()
    reached = threading.Event()

    def on_progress(p: Progress) -> None:
        if p.step >= 3:
            reached.set()
        time.sleep(0.02)  # slow enough that the stop lands mid-run

    stopper = threading.Thread(target=lambda: (reached.wait(10), controls.stop()))
    stopper.start()
    result = train(tiny(train={"epochs": 500}), tmp_path / "c.sqlite", on_progress=on_progress,
                   controls=controls)
    stopper.join()
    assert result.stopped == "stopped" and 3 <= result.steps < 500 * 7
    assert controls.stopped and not controls.paused
    assert open_run(result.log).meta["end_message"].startswith("stopped on request")


def test_pause_holds_training_until_resumed(tmp_path: Path) -> None:
    controls = Controls()
    controls.pause()
    seen: list[Progress] = []
    results: list[Any] = []
    worker = threading.Thread(target=lambda: results.append(
        train(tiny(), tmp_path / "p.sqlite", on_progress=seen.append, controls=controls)))
    worker.start()
    time.sleep(0.8)
    assert controls.paused and not seen and worker.is_alive()
    controls.resume()
    worker.join(30)
    assert results and results[0].stopped == "finished" and results[0].steps == 14
    assert results[0].elapsed_s < 0.8 + 30  # paused time is not training time
    assert seen[-1].step == 14


def test_progress_reports(tmp_path: Path) -> None:
    seen: list[Progress] = []
    train(tiny(train={"epochs": 3}), tmp_path / "p.sqlite", on_progress=seen.append)
    ends = [p for p in seen if p.epoch_end]
    assert [p.epoch for p in ends] == [1, 2, 3]
    assert all(p.val_loss is not None and p.val_acc is not None for p in ends)
    assert ends[-1].step == ends[-1].total_steps == 21 and ends[-1].eta_s == 0
    assert [p.step for p in seen] == sorted(p.step for p in seen)
    assert all(p.epochs == 3 and p.samples_per_s > 0 for p in seen)


def test_a_diverging_run_stops_a_few_steps_after_the_loss_goes_non_finite(
        tmp_path: Path) -> None:
    recipe = tiny(data={"kind": "regression", "samples": 200}, optimizer={"kind": "sgd",
                  "lr": 10.0}, train={"epochs": 5})
    result = train(recipe, tmp_path / "d.sqlite")
    assert result.stopped == "diverged"
    loss = open_run(result.log).loss
    first_bad = int(np.flatnonzero(~np.isfinite(loss))[0])
    assert result.steps <= first_bad + 1 + 3 < 5 * 9
    assert "non-finite" in (result.message or "")


def test_ctrl_c_closes_the_log_as_interrupted(tmp_path: Path) -> None:
    def on_progress(p: Progress) -> None:
        if p.step >= 5:
            raise KeyboardInterrupt

    result = train(tiny(train={"epochs": 100}), tmp_path / "i.sqlite", on_progress=on_progress)
    assert result.stopped == "interrupted" and result.steps >= 5
    run = open_run(result.log)
    assert run.status is RunStatus.INTERRUPTED and run.n_steps == result.steps
    assert run.meta["stopped"] == "interrupted"


def test_a_crash_in_the_users_model_is_one_line_and_the_log_is_kept(tmp_path: Path) -> None:
    class Fragile(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layer = nn.Linear(2, 2)
            self.calls = 0

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.calls += 1
            if self.calls == 4:
                raise ValueError("the fourth batch is cursed")
            return self.layer(x)

    def build(seed: int) -> Any:
        x = torch.randn(64, 2)
        return Fragile(), (x, (x[:, 0] > 0).long()), None

    with pytest.raises(TrainingError) as caught:
        train(python_recipe(build), tmp_path / "crash.sqlite")
    message = str(caught.value)
    assert "\n" not in message and message.startswith("hand.py: training failed at step 3: ")
    assert "ValueError: the fourth batch is cursed" in message and "test_trainer.py:" in message
    run = open_run(tmp_path / "crash.sqlite")
    assert run.status is RunStatus.CRASHED and run.n_steps == 3
    assert "cursed" in run.meta["end_message"]


# ---- Python recipes: the user's data -------------------------------------------------------------
class CountingBatches:
    """An iterable of (x, y) batches that counts how often it is iterated."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch: int = 16) -> None:
        self.x, self.y, self.batch, self.passes = x, y, batch, 0

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        self.passes += 1
        for i in range(0, len(self.x), self.batch):
            yield self.x[i:i + self.batch], self.y[i:i + self.batch]


def test_user_loaders_and_the_test_split_is_used_once(tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(120, 3, generator=g)
    y = (x.sum(1) > 0).long()
    splits = {"train": CountingBatches(x[:80], y[:80]), "val": CountingBatches(x[80:100],
              y[80:100]), "test": CountingBatches(x[100:], y[100:])}

    def build(seed: int) -> Any:
        model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2))
        return model, splits, torch.optim.Adam(model.parameters(), lr=0.01)

    result = train(python_recipe(build, train={"epochs": 3}), tmp_path / "u.sqlite")
    assert result.stopped == "finished" and result.steps == 3 * 5
    assert splits["test"].passes == 1  # only at the end
    assert splits["val"].passes == 3 + 1  # every epoch, and the final metrics
    assert {"test_acc", "val_acc", "train_acc"} <= set(result.metrics)


def test_user_regression_from_a_dataloader(tmp_path: Path) -> None:
    x = torch.randn(96, 4)
    y = x[:, :1] * 2 + 1
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32)

    def build(seed: int) -> Any:
        return nn.Linear(4, 1), (loader, [(x[:16], y[:16])]), None

    recipe = python_recipe(build, optimizer={"lr": 0.05})
    result = train(recipe, tmp_path / "r.sqlite")
    assert result.steps == 2 * 3 and set(result.metrics) == {"train_loss", "val_loss"}
    first = open_run(result.log).loss[0]
    assert result.metrics["train_loss"] < first  # it learned (SGD from [optimizer])


@pytest.mark.parametrize(
    ("returned", "needle"),
    [
        ("model only", "must return (model, data, optimizer)"),
        ((1, 2, None), "returned a int as the model"),
        ((nn.Linear(2, 2), {"val": 1}), "needs 'train'"),
        ((nn.Linear(2, 2), "data"), "returned data of type str"),
        ((nn.Linear(2, 2), {"train": 3}), "the train split must be an (x, y) pair"),
        ((nn.Linear(2, 2), (torch.zeros(4, 2), torch.zeros(3))), "4 inputs and 3 targets"),
        ((nn.Linear(2, 2), (torch.zeros(4, 2), torch.zeros(4)), "adam"), "as the optimizer"),
    ],
)
def test_a_python_build_that_returns_the_wrong_thing(returned: Any, needle: str,
                                                     tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        train(python_recipe(lambda seed: returned), tmp_path / "w.sqlite")
    assert needle in str(caught.value) and str(caught.value).startswith("hand.py: ")


def test_a_python_build_that_raises(tmp_path: Path) -> None:
    def build(seed: int) -> Any:
        raise FileNotFoundError("data/train.npz")

    with pytest.raises(ConfigError, match=r"hand\.py: build\(0\) failed: FileNotFoundError"):
        train(python_recipe(build), tmp_path / "w.sqlite")


# ---- schedules, losses, devices ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ({"kind": "exponential", "gamma": 0.5}, [0.1, 0.05, 0.025]),
        ({"kind": "step", "step_size": 2, "gamma": 0.1}, [0.1, 0.1, 0.01]),
        ({"kind": "none"}, [0.1, 0.1, 0.1]),
    ],
)
def test_schedules_change_the_learning_rate_per_epoch(schedule: dict[str, Any],
                                                      expected: list[float],
                                                      tmp_path: Path) -> None:
    recipe = tiny(optimizer={"kind": "sgd", "lr": 0.1}, schedule=schedule,
                  train={"epochs": 3})
    run = open_run(train(recipe, tmp_path / "lr.sqlite").log)
    lrs = run.series(StepField.LR).reshape(3, 7)[:, 0]
    assert lrs == pytest.approx(expected)


@pytest.mark.parametrize("kind", ["cosine", "plateau"])
def test_cosine_and_plateau_run(kind: str, tmp_path: Path) -> None:
    recipe = tiny(schedule={"kind": kind, "patience": 0}, train={"epochs": 3})
    run = open_run(train(recipe, tmp_path / "lr.sqlite").log)
    lrs = run.series(StepField.LR)
    assert lrs[-1] <= lrs[0]
    if kind == "cosine":
        assert lrs[-1] < lrs[0]


def test_manual_log_softmax_and_output_softmax_train(tmp_path: Path) -> None:
    recipe = tiny(loss={"kind": "manual_log_softmax"}, model={"output_softmax": True})
    assert train(recipe, tmp_path / "m.sqlite").stopped in ("finished", "diverged")


def test_a_class_loss_on_a_regression_is_a_config_error(tmp_path: Path) -> None:
    recipe = tiny(data={"kind": "regression"}, loss={"kind": "cross_entropy"})
    with pytest.raises(ConfigError, match=r"loss\.kind = 'cross_entropy' needs class labels"):
        train(recipe, tmp_path / "x.sqlite")


def test_regression_records_its_chance_level(tmp_path: Path) -> None:
    result = train(tiny(data={"kind": "regression"}), tmp_path / "r.sqlite")
    assert "train_acc" not in result.metrics
    assert open_run(result.log).task["chance_loss"] > 0


def test_amp_is_a_note_off_cuda(tmp_path: Path) -> None:
    result = train(tiny(train={"amp": True, "epochs": 1}), tmp_path / "a.sqlite")
    assert result.notes == ("train.amp ignored: mixed precision runs on CUDA only (device cpu)",)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="CUDA is not available"):
        resolve_device("cuda:0")
    assert resolve_device("auto").type in ("cpu", "mps")
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="this machine has MPS")
def test_mps_without_mps_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="MPS backend is not available"):
        resolve_device("mps")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_run_with_amp(tmp_path: Path) -> None:  # pragma: no cover - GPU machines only
    with pytest.raises(ConfigError, match="this machine has"):
        resolve_device(f"cuda:{torch.cuda.device_count()}")
    result = train(tiny(train={"device": "cuda", "amp": True, "clip_grad_norm": 1.0}),
                   tmp_path / "g.sqlite")
    assert result.stopped == "finished" and not result.notes
    assert open_run(result.log).meta["device"].startswith("cuda")
