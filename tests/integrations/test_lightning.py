"""NetdoctorCallback in real Lightning runs (CPU, tiny models, a few seconds each)."""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from netdoctor.runlog import open_run  # noqa: E402
from netdoctor.runlog.schema import RunStatus, StepField  # noqa: E402


def _installed(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


FLAVOURS = [name for name in ("lightning.pytorch", "pytorch_lightning") if _installed(name)]
if not FLAVOURS:
    pytest.skip("neither lightning nor pytorch_lightning is installed", allow_module_level=True)

from netdoctor.integrations.lightning import NetdoctorCallback  # noqa: E402

BATCHES = 8  # per epoch, batch 8: 64 samples


def _data(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(BATCHES * 8, 8, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()
    return x, y


def _loader(x: torch.Tensor, y: torch.Tensor) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8)


def _module(pl: ModuleType, nan_from_epoch: int | None = None, fail_at_step: int | None = None,
            lr: float = 1e-2, fused: bool = False) -> Any:
    """A 3-class MLP; records each micro-batch's raw loss and the gradient norm that the
    LightningModule's own ``on_before_optimizer_step`` sees (before clipping)."""

    class Classifier(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 3))
            self.raw_losses: list[float] = []
            self.grad_norms: list[float] = []

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            x, y = batch
            if nan_from_epoch is not None and self.current_epoch >= nan_from_epoch:
                x = x * float("nan")  # the data turns NaN
            if fail_at_step is not None and self.global_step == fail_at_step:
                raise RuntimeError("boom in training_step")
            loss = F.cross_entropy(self.net(x), y)
            self.raw_losses.append(float(loss))
            self.log("train_loss", loss, on_step=True, on_epoch=True)
            return loss

        def validation_step(self, batch: Any, batch_idx: int) -> None:
            x, y = batch
            self.log("val_loss", F.cross_entropy(self.net(x), y))

        def on_before_optimizer_step(self, optimizer: Any) -> None:
            norms = [p.grad.norm() for p in self.parameters() if p.grad is not None]
            self.grad_norms.append(float(torch.linalg.vector_norm(torch.stack(norms))))

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.Adam(self.parameters(), lr=lr, fused=fused)

    return Classifier()


def _trainer(pl: ModuleType, callbacks: list[Any], **options: Any) -> Any:
    settings = dict(max_epochs=4, logger=False, enable_checkpointing=False,
                    enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
                    devices=1, num_sanity_val_steps=2)
    settings.update(options)
    return pl.Trainer(callbacks=callbacks, **settings)


def _fit(pl: ModuleType, module: Any, trainer: Any) -> None:
    x, y = _data()
    vx, vy = _data(seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Lightning's hints about workers and loggers
        trainer.fit(module, _loader(x, y), _loader(vx, vy))


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_healthy_module_is_quiet_and_steps_are_optimizer_steps(flavour: str,
                                                               tmp_path: Path) -> None:
    pl = importlib.import_module(flavour)
    callback = NetdoctorCallback(log=tmp_path / "run.sqlite")
    module = _module(pl)
    _fit(pl, module, _trainer(pl, [callback], max_epochs=6, accumulate_grad_batches=2,
                              gradient_clip_val=0.05))
    assert [d for d in callback.diagnoses if d.severity.value in ("error", "warning")] == []
    run = open_run(tmp_path / "run.sqlite")
    assert run.status is RunStatus.FINISHED
    assert run.n_steps == 6 * BATCHES // 2
    assert (run.series(StepField.MICRO_BATCHES) == 2).all()
    # the loss un-divided by accumulate_grad_batches: the mean of the step's two micro-batches
    raw = np.array(module.raw_losses).reshape(-1, 2).mean(axis=1)
    np.testing.assert_allclose(run.loss, raw, rtol=1e-5)
    # gradients as the optimizer gets them after accumulation and before clipping at 0.05
    np.testing.assert_allclose(run.grad_norm, module.grad_norms, rtol=1e-4)
    assert run.grad_norm.min() > 0.05
    # epoch metrics from callback_metrics; the sanity check's validation left no epoch behind
    assert [e.epoch for e in run.epochs] == list(range(6))
    assert all({"train_loss", "val_loss"} <= set(e.metrics) for e in run.epochs)
    assert run.meta["integration"]["package"] == flavour.split(".")[0]


def test_nan_data_at_epoch_2_is_nan_loss_at_the_right_step(tmp_path: Path) -> None:
    pl = importlib.import_module(FLAVOURS[0])
    callback = NetdoctorCallback(log=tmp_path / "run.sqlite")
    _fit(pl, _module(pl, nan_from_epoch=2), _trainer(pl, [callback], accumulate_grad_batches=2))
    nan = [d for d in callback.diagnoses if d.rule == "nan_loss"]
    assert len(nan) == 1
    assert nan[0].step == 2 * BATCHES // 2  # epochs 0-1 took 4 optimizer steps each
    assert nan[0].evidence["source"] == "input"


def test_stop_on_error_stops_the_run(tmp_path: Path) -> None:
    pl = importlib.import_module(FLAVOURS[0])
    callback = NetdoctorCallback(log=tmp_path / "run.sqlite", stop_on="error", check_every=1)
    trainer = _trainer(pl, [callback], max_epochs=10)
    _fit(pl, _module(pl, nan_from_epoch=1), trainer)
    assert callback.stopped_by is not None and callback.stopped_by.rule == "nan_loss"
    assert trainer.current_epoch < 3  # not the 10 epochs asked for
    run = open_run(tmp_path / "run.sqlite")
    assert run.meta["end_message"].startswith("stopped by netdoctor")
    assert run.n_steps <= BATCHES + 2


def test_an_exception_closes_the_log_as_crashed(tmp_path: Path) -> None:
    pl = importlib.import_module(FLAVOURS[0])
    callback = NetdoctorCallback(log=tmp_path / "run.sqlite")
    with pytest.raises(RuntimeError, match="boom"):
        _fit(pl, _module(pl, fail_at_step=5), _trainer(pl, [callback]))
    run = open_run(tmp_path / "run.sqlite")
    assert run.status is RunStatus.CRASHED
    assert "boom" in run.meta["end_message"]
    assert run.n_steps == 5
    assert callback.monitor is not None and callback.monitor.closed


def test_bf16_mixed_precision(tmp_path: Path) -> None:
    pl = importlib.import_module(FLAVOURS[0])
    callback = NetdoctorCallback(log=tmp_path / "run.sqlite")
    module = _module(pl)
    _fit(pl, module, _trainer(pl, [callback], precision="bf16-mixed", max_epochs=3))
    run = open_run(tmp_path / "run.sqlite")
    assert run.n_steps == 3 * BATCHES
    assert np.isfinite(run.grad_norm).all()
    np.testing.assert_allclose(run.grad_norm, module.grad_norms, rtol=1e-4)
    assert [d for d in callback.diagnoses if d.severity.value == "error"] == []


@pytest.mark.parametrize("fused", [False, True], ids=["foreach", "fused"])
def test_fp16_grad_scaler_skipped_steps_are_recorded_not_diagnosed(tmp_path: Path,
                                                                   fused: bool) -> None:
    """16-mixed with a CPU GradScaler (Lightning makes none on CPU: passed as a plugin) and inf
    written into two gradients, as an fp16 overflow does: the scaler skips those steps."""
    pl = importlib.import_module(FLAVOURS[0])
    amp = importlib.import_module(f"{FLAVOURS[0]}.plugins.precision")
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    callback = NetdoctorCallback(log=tmp_path / "run.sqlite")
    module = _module(pl, fused=fused)
    backward = {"calls": 0}

    def overflow(grad: torch.Tensor) -> torch.Tensor:
        backward["calls"] += 1
        return grad * float("inf") if backward["calls"] in (5, 6) else grad

    module.net[2].weight.register_hook(overflow)
    plugin = amp.MixedPrecision("16-mixed", "cpu", scaler=scaler)
    _fit(pl, module, _trainer(pl, [callback], plugins=[plugin], max_epochs=3))
    assert [d for d in callback.diagnoses if d.severity.value in ("error", "warning")] == []
    run = open_run(tmp_path / "run.sqlite")
    finite = np.isfinite(run.grad_norm)
    assert np.median(run.grad_norm[finite]) < 10  # unscaled: the loss scale is 1024
    if fused:  # the optimizer's step runs and skips inside: counted, with its inf gradients
        assert run.n_steps == 3 * BATCHES and (~finite).sum() == 2
    else:  # the scaler does not call optimizer.step(): not a step, but recorded
        assert run.n_steps == 3 * BATCHES - 2 and finite.all()
        assert run.meta["skipped_optimizer_steps"]["count"] == 2


@pytest.mark.skipif(len(FLAVOURS) < 2, reason="needs both lightning and pytorch_lightning")
def test_one_callback_class_is_accepted_by_both_packages() -> None:
    for flavour in FLAVOURS:
        pl = importlib.import_module(flavour)
        helpers = importlib.import_module(f"{flavour}.utilities.model_helpers")
        callback = NetdoctorCallback()
        assert isinstance(callback, pl.Callback)
        assert helpers.is_overridden("on_fit_start", instance=callback)  # no "Expected a parent"
        _trainer(pl, [callback])  # the Trainer validates its callbacks


def _entry_point_installed() -> bool:
    groups = [f"{flavour.split('.')[0]}{'.pytorch' if flavour.startswith('lightning') else ''}"
              ".callbacks_factory" for flavour in FLAVOURS]
    found = [ep for g in groups for ep in importlib.metadata.entry_points(group=g)]
    return any(ep.value.startswith("netdoctor.integrations.lightning_env") for ep in found)


ENV_SCRIPT = """
import sys, warnings
import torch
import torch.nn.functional as F
from torch import nn
import {flavour} as pl
torch.set_num_threads(1)

class Model(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 1))
    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.mse_loss(self.net(x), y)
    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05)

x = torch.randn(32, 4)
data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, x.sum(1, keepdim=True)),
                                   batch_size=8)
trainer = pl.Trainer(max_epochs=2, logger=False, enable_checkpointing=False, accelerator="cpu",
                     enable_progress_bar=False, enable_model_summary=False)
names = [type(cb).__name__ for cb in trainer.callbacks]
assert names.count("NetdoctorCallback") == 1, names
warnings.simplefilter("ignore")
trainer.fit(Model(), data)
"""


@pytest.mark.skipif(not _entry_point_installed(),
                    reason="netdoctor's callbacks_factory entry point is not installed")
def test_netdoctor_log_alone_attaches_the_callback(tmp_path: Path, child_env: dict[str, str]
                                                   ) -> None:
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(ENV_SCRIPT.format(flavour=FLAVOURS[0])))
    log = tmp_path / "env.sqlite"
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            cwd=tmp_path, env={**child_env, "NETDOCTOR_LOG": str(log)},
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    run = open_run(log)
    assert run.status is RunStatus.FINISHED
    assert run.n_steps == 2 * 4
    assert run.meta["integration"]["name"] == "lightning"


@pytest.mark.skipif(FLAVOURS[0] != "lightning.pytorch" or not torch.distributed.is_available(),
                    reason="needs lightning.pytorch and torch.distributed")
def test_stop_on_is_agreed_by_every_rank(tmp_path: Path, child_env: dict[str, str]) -> None:
    """Only rank 1's data goes NaN; rank 0 (which diagnoses) decides, and both ranks stop at
    the same step instead of one leaving the other waiting in an all-reduce."""
    script = Path(__file__).with_name("lightning_ddp_script.py")
    log, out = tmp_path / "ddp.sqlite", tmp_path / "out"
    result = subprocess.run([sys.executable, str(script), str(log), str(out)],
                            capture_output=True, text=True, cwd=tmp_path, env=child_env,
                            timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [json.loads(Path(f"{out}.{rank}.json").read_text()) for rank in (0, 1)]
    assert ranks[0]["stopped_by"] == "nan_loss" and ranks[1]["stopped_by"] is None
    assert ranks[0]["global_step"] == ranks[1]["global_step"] < 20  # of 50 epochs x 4 steps
    run = open_run(log)
    assert run.meta["end_message"] == "stopped by netdoctor (stop_on): nan_loss at step 6"
    assert "rank_nonfinite" in ranks[0]["diagnoses"]
