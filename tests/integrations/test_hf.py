"""attach() on a real Hugging Face Trainer: a tiny random-init GPT-2 (no downloads), CPU."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("accelerate")

from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainingArguments  # noqa: E402

from netdoctor.integrations.hf import attach  # noqa: E402
from netdoctor.runlog import open_run  # noqa: E402
from netdoctor.runlog.schema import RunStatus, StepField  # noqa: E402

VOCAB = 64


class Counting(torch.utils.data.Dataset):
    """Sequences that count up modulo VOCAB from a random start: learnable in a few steps."""

    def __init__(self, n: int = 64, length: int = 16, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.ids = (torch.randint(0, VOCAB, (n, 1), generator=g) + torch.arange(length)) % VOCAB

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[i], "labels": self.ids[i]}


def _trainer(tmp_path: Path, *, lr: float, clip: float, steps: int = 40, accumulate: int = 1,
             evaluate: bool = False, **args: Any) -> Trainer:
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=VOCAB,
                                       n_positions=32))
    settings: dict[str, Any] = dict(
        output_dir=str(tmp_path / "out"), max_steps=steps, per_device_train_batch_size=8,
        learning_rate=lr, max_grad_norm=clip, gradient_accumulation_steps=accumulate,
        lr_scheduler_type="constant", logging_steps=5, save_strategy="no", report_to=[],
        use_cpu=True, disable_tqdm=True, dataloader_num_workers=0, seed=0)
    if evaluate:
        settings.update(eval_strategy="steps", eval_steps=10, per_device_eval_batch_size=16)
    settings.update(args)
    return Trainer(model=model, args=TrainingArguments(**settings), train_dataset=Counting(),
                   eval_dataset=Counting(32, seed=1) if evaluate else None)


def _train(trainer: Trainer) -> list[warnings.WarningMessage]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.train()
    return [w for w in caught if "netdoctor" in str(w.message)]


class LossSpy(transformers.TrainerCallback):
    """The loss values the Trainer itself logs (every ``logging_steps``)."""

    def __init__(self) -> None:
        self.shown: list[float] = []

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None,
               **kwargs: Any) -> None:
        if logs and "loss" in logs:
            self.shown.append(float(logs["loss"]))


def test_tiny_gpt2_at_a_sane_lr_is_quiet(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path, lr=5e-4, clip=1.0, accumulate=2, evaluate=True)
    spy = LossSpy()
    trainer.add_callback(spy)
    handle = attach(trainer, log=tmp_path / "run.sqlite")
    assert _train(trainer) == []
    assert [d for d in handle.diagnoses if d.severity.value in ("error", "warning")] == []
    run = open_run(tmp_path / "run.sqlite")
    assert run.status is RunStatus.FINISHED
    assert run.n_steps == 40
    assert (run.series(StepField.MICRO_BATCHES) == 1).all()  # one summed loss per step
    # each step's loss as the Trainer means it (not divided by the accumulation steps): its
    # logged loss is the mean over the 5 steps since the last log, rounded to 4 decimals
    np.testing.assert_allclose(run.loss.reshape(-1, 5).mean(axis=1), spy.shown, atol=2e-4)
    assert [e.step for e in run.epochs] == [9, 19, 29, 39]
    assert all(np.isfinite(e.metrics["val_loss"]) for e in run.epochs)
    assert run.meta["integration"]["gradient_accumulation_steps"] == 2


def test_lr_3_without_clipping_is_flagged_with_pre_clip_gradients(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path, lr=3.0, clip=0.0)
    handle = attach(trainer, log=tmp_path / "run.sqlite")
    _train(trainer)
    flagged = {d.rule for d in handle.diagnoses}
    assert flagged & {"lr_too_high", "exploding_gradients", "nan_loss"}, handle.diagnoses
    run = open_run(tmp_path / "run.sqlite")
    assert run.loss[-5:].mean() > 2 * run.loss[0] or not np.isfinite(run.loss[-5:]).all()


def test_gradient_norms_are_read_before_clipping(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path, lr=5e-4, clip=0.1, steps=10)
    logged: list[float] = []
    original = trainer.accelerator.clip_grad_norm_

    def clip(*args: Any, **kwargs: Any) -> Any:  # returns the total norm before clipping
        norm = original(*args, **kwargs)
        logged.append(float(norm))
        return norm

    trainer.accelerator.clip_grad_norm_ = clip  # type: ignore[method-assign]
    attach(trainer, log=tmp_path / "run.sqlite")
    _train(trainer)
    run = open_run(tmp_path / "run.sqlite")
    np.testing.assert_allclose(run.grad_norm, logged, rtol=1e-4)
    assert run.grad_norm.min() > 0.1  # what the optimizer got was clipped to 0.1


def _nan_in_steps(model: torch.nn.Module, micro_batches: set[int]) -> None:
    calls = {"n": 0}

    def hook(module: torch.nn.Module, inputs: Any, output: torch.Tensor) -> Any:
        if module.training and torch.is_grad_enabled():
            calls["n"] += 1
            if calls["n"] in micro_batches:
                return output * float("nan")
        return None

    model.transformer.h[0].mlp.register_forward_hook(hook)


def test_a_nan_hidden_by_logging_nan_inf_filter_is_reported(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path, lr=5e-4, clip=1.0)
    assert trainer.args.logging_nan_inf_filter  # the default
    _nan_in_steps(trainer.model, {13})  # step 12: its NaN gradients poison every later step
    spy = LossSpy()
    trainer.add_callback(spy)
    handle = attach(trainer, log=tmp_path / "run.sqlite")
    caught = _train(trainer)
    assert np.isfinite(spy.shown).all()  # the Trainer's own log looks healthy...
    nan = [d for d in handle.diagnoses if d.rule == "nan_loss"]
    assert len(nan) == 1 and nan[0].step == 12  # ...netdoctor saw the real losses
    assert nan[0].evidence["hidden_by_trainer_log"] is True
    assert handle.hidden_nonfinite_steps[0] == 12
    assert any("logging_nan_inf_filter" in str(w.message) for w in caught)
    run = open_run(tmp_path / "run.sqlite")
    assert run.meta["hidden_nonfinite_loss"]["steps"][0] == 12


def test_without_the_filter_nothing_is_said_to_be_hidden(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path, lr=5e-4, clip=1.0, steps=20, logging_nan_inf_filter=False)
    _nan_in_steps(trainer.model, {13})
    handle = attach(trainer, log=tmp_path / "run.sqlite")
    assert _train(trainer) == []
    assert handle.hidden_nonfinite_steps == []
    assert [d.rule for d in handle.diagnoses if d.severity.value == "error"] == ["nan_loss"]


def test_stop_on_error_and_an_exception_closes_the_log(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path, lr=5e-4, clip=1.0, steps=200)
    _nan_in_steps(trainer.model, {6})
    handle = attach(trainer, log=tmp_path / "run.sqlite", stop_on="error", check_every=2)
    _train(trainer)
    assert handle.stopped_by is not None and handle.stopped_by.rule == "nan_loss"
    assert trainer.state.global_step < 20

    trainer = _trainer(tmp_path, lr=5e-4, clip=1.0, steps=20)
    original = trainer.compute_loss
    calls = {"n": 0}

    def failing(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 8:
            raise RuntimeError("boom in compute_loss")
        return original(*args, **kwargs)

    trainer.compute_loss = failing  # type: ignore[method-assign]
    handle = attach(trainer, log=tmp_path / "crash.sqlite")
    with pytest.raises(RuntimeError, match="boom"):
        trainer.train()
    run = open_run(tmp_path / "crash.sqlite")
    assert run.status is RunStatus.CRASHED and run.n_steps == 7
    assert "unscale_gradients" not in trainer.accelerator.__dict__  # unwrapped again
