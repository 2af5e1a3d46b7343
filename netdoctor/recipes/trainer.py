"""The training loop that runs a recipe under ``netdoctor.watch``.

It is a plain PyTorch loop, written the way the textbooks write one (shuffle, forward, loss,
backward, clip, step; evaluate on the validation split after every epoch; the test split only
once, at the end), because the doctor must see what a user's own loop would show. What it adds
is what a tool needs and a script rarely has:

- budgets (``max_steps``, ``max_time``) and ``Controls`` (pause/stop from another thread, for the
  TUI), each recorded in the log as the reason the run ended;
- divergence: once the loss is non-finite the run stops a few steps later (the log then holds
  the blow-up and what followed it; training further only writes NaN);
- a log that is always closed: on Ctrl-C (status "interrupted"), on a crash in a Python
  recipe's own code ("crashed", and a one-line error), on every budget;
- determinism: the data, the initial weights, the shuffling and the augmentation each come from
  the recipe's seed, so on the CPU one seed gives the same run, loss for loss.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from netdoctor.capture.watch import watch
from netdoctor.errors import ConfigError, NetdoctorError, TrainingError
from netdoctor.recipes.batches import Batches, TrainingData, recipe_data, user_data
from netdoctor.recipes.components import (
    LossFn,
    correct_count,
    make_loss,
    make_optimizer,
    make_scheduler,
    resolve_device,
)
from netdoctor.recipes.spec import Recipe

if TYPE_CHECKING:  # pragma: no cover
    from netdoctor.capture.monitor import Monitor
    from netdoctor.diagnosis import Diagnosis
    from netdoctor.rules import RuleConfig

#: How often (at most) ``on_progress`` is called, besides once at every epoch's end.
PROGRESS_INTERVAL_S = 0.1
#: Steps trained after the loss first went non-finite, before stopping: enough for the log to show
#: the blow-up spreading, not so many that the run only writes NaN.
DIVERGED_GRACE_STEPS = 3
#: On an accelerator, how many steps between reads of the loss (each read waits for the device).
SYNC_EVERY = 10
#: Evaluation batches are at least this large (no gradients are kept, so they are cheap).
EVAL_BATCH = 256

#: Why a run ended (``TrainResult.stopped`` and the log's meta["stopped"]).
STOP_REASONS = ("finished", "stopped", "max_steps", "max_time", "early_stopping", "diverged",
                "interrupted")


@dataclass(frozen=True)
class Progress:
    """How far the run is. ``epoch`` is the epoch under way, counted from 1; ``step`` the
    optimizer steps done; ``total_steps`` the steps the run will take (0 when a data loader has
    no length); ``loss`` the mean training loss of this epoch so far; ``val_loss``/``val_acc``
    those of the last finished epoch; ``epoch_end`` is true for the report at an epoch's end."""

    epoch: int
    epochs: int
    step: int
    total_steps: int
    loss: float
    val_loss: float | None
    train_acc: float | None
    val_acc: float | None
    samples_per_s: float
    elapsed_s: float
    eta_s: float | None
    epoch_end: bool = False


@dataclass(frozen=True)
class TrainResult:
    """How a run ended. ``metrics`` are measured once at the end with the model in eval mode
    (after restoring the best weights under early stopping): ``train_loss``, ``val_loss``,
    ``test_loss`` and, for classification, ``train_acc``, ``val_acc``, ``test_acc`` (a split that
    is empty or absent has none; an interrupted run has the last epoch's instead)."""

    log: Path
    diagnoses: list[Diagnosis]
    metrics: dict[str, float]
    stopped: str  # one of STOP_REASONS
    steps: int
    epochs: int  # epochs recorded (the last one partly, when a budget or a stop ended it)
    elapsed_s: float
    message: str | None = None  # one line on why it stopped early; None when it finished
    checkpoint: Path | None = None  # best weights (state_dict) under early stopping
    notes: tuple[str, ...] = ()  # settings that were ignored, and why


class Controls:
    """Pause, resume and stop a run from another thread (the TUI's keys, a test). Thread-safe:
    the training thread only reads two events between steps."""

    def __init__(self) -> None:
        self._running = threading.Event()
        self._running.set()
        self._stop = threading.Event()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def stop(self) -> None:
        self._stop.set()
        self._running.set()  # a paused run wakes up to stop

    @property
    def paused(self) -> bool:
        return not self._running.is_set() and not self._stop.is_set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def wait_while_paused(self) -> float:
        """Block while paused; the seconds spent waiting (not counted as training time)."""
        if self._running.is_set():
            return 0.0
        started = time.perf_counter()
        while not self._running.wait(timeout=0.1):
            pass
        return time.perf_counter() - started


# ---- the run -----------------------------------------------------------------------------------
@dataclass
class _Setup:
    model: nn.Module
    optimizer: torch.optim.Optimizer
    data: TrainingData
    device: torch.device
    notes: list[str]


def _build(recipe: Recipe) -> _Setup:
    """Data, model and optimizer, seeded: the same recipe and seed give the same weights."""
    device = resolve_device(recipe.train.device, f"{recipe.source}: train.device")
    seed = recipe.train.seed
    notes: list[str] = []
    if recipe.builder is not None:
        torch.manual_seed(seed)
        model, raw_data, optimizer = _call_builder(recipe, seed)
        data = user_data(raw_data, device, recipe.source)
        model.to(device)
        if optimizer is None:
            optimizer = make_optimizer(recipe.optimizer, model)
    else:
        from netdoctor.recipes.models import build_model

        assert recipe.model is not None
        dataset, data = recipe_data(recipe, device)
        torch.manual_seed(seed)
        model = build_model(recipe.model, dataset, source=recipe.source)
        model.to(device)
        optimizer = make_optimizer(recipe.optimizer, model)
    if recipe.train.amp and device.type != "cuda":
        notes.append(f"train.amp ignored: mixed precision runs on CUDA only (device {device})")
    return _Setup(model, optimizer, data, device, notes)


def _call_builder(recipe: Recipe, seed: int) -> tuple[nn.Module, Any, torch.optim.Optimizer | None]:
    where = recipe.source
    try:
        built = recipe.builder(seed)  # type: ignore[misc]
    except NetdoctorError:
        raise
    except Exception as exc:
        raise ConfigError(f"{where}{_line_in(where, exc)}: build({seed}) failed: "
                          f"{type(exc).__name__}: {_first_line(exc)}") from None
    if not isinstance(built, (tuple, list)) or len(built) not in (2, 3):
        raise ConfigError(f"{where}: build(seed) must return (model, data, optimizer); got "
                          f"{type(built).__name__}")
    model, data = built[0], built[1]
    optimizer = built[2] if len(built) == 3 else None
    if not isinstance(model, nn.Module):
        raise ConfigError(f"{where}: build(seed) returned a {type(model).__name__} as the model; "
                          "expected a torch.nn.Module")
    if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
        raise ConfigError(f"{where}: build(seed) returned a {type(optimizer).__name__} as the "
                          "optimizer; expected a torch.optim.Optimizer or None")
    return model, data, optimizer


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else ""


def _line_in(source: str, exc: BaseException) -> str:
    """``":LINE"`` of the deepest frame of ``exc`` in the file ``source``, or ``""``."""
    target = Path(source).resolve()
    line = ""
    for frame in traceback.extract_tb(exc.__traceback__):
        with contextlib.suppress(OSError):
            if frame.filename and Path(frame.filename).resolve() == target:
                line = f":{frame.lineno}"
    return line


def _where_failed(exc: BaseException) -> str:
    """file:line of the deepest frame outside torch and netdoctor (the user's code)."""
    import netdoctor

    ours = str(Path(netdoctor.__file__).resolve().parent)
    theirs = str(Path(torch.__file__).resolve().parent)
    found = ""
    for frame in traceback.extract_tb(exc.__traceback__):
        path = str(Path(frame.filename).resolve()) if frame.filename else ""
        if path and not path.startswith((ours, theirs)) and not frame.filename.startswith("<"):
            found = f" ({frame.filename}:{frame.lineno})"
    return found


class _Clock:
    """Training time: wall time since the first step, less the time spent paused."""

    def __init__(self) -> None:
        self._start = time.perf_counter()
        self._paused = 0.0

    def pause_for(self, seconds: float) -> None:
        self._paused += seconds

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self._start - self._paused


@dataclass
class _EpochTally:
    """The running training loss and accuracy of one epoch, kept on the device."""

    loss_sum: torch.Tensor
    correct: torch.Tensor
    bad_steps: torch.Tensor  # steps whose loss was non-finite
    samples: int = 0
    judged: int = 0

    @classmethod
    def zeros(cls, device: torch.device) -> _EpochTally:
        dtype = torch.float32 if device.type == "mps" else torch.float64
        return cls(torch.zeros((), device=device, dtype=dtype),
                   torch.zeros((), device=device, dtype=torch.int64),
                   torch.zeros((), device=device, dtype=torch.int64))

    def add(self, loss: torch.Tensor, n: int, correct: tuple[torch.Tensor, int] | None) -> None:
        loss = loss.detach()
        self.loss_sum += loss.to(self.loss_sum.dtype) * n
        self.bad_steps += (~torch.isfinite(loss)).to(torch.int64)
        self.samples += n
        if correct is not None:
            self.correct += correct[0]
            self.judged += correct[1]

    def mean_loss(self) -> float:
        return float(self.loss_sum) / self.samples if self.samples else math.nan

    def accuracy(self) -> float | None:
        return int(self.correct) / self.judged if self.judged else None


class _Run:
    """One training run: the state the loop, the evaluation and the closing share."""

    def __init__(self, recipe: Recipe, setup: _Setup, log: Path,
                 on_progress: Callable[[Progress], None] | None, controls: Controls,
                 max_steps: int | None, max_time: float | None) -> None:
        self.recipe = recipe
        self.model = setup.model
        self.optimizer = setup.optimizer
        self.data = setup.data
        self.device = setup.device
        self.notes = setup.notes
        self.log = log
        self.on_progress = on_progress
        self.controls = controls
        self.max_steps = max_steps
        self.max_time = max_time
        spec = recipe.train
        self.epochs = spec.epochs
        self.batch_size = spec.batch_size
        self.amp = spec.amp and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda") if self.amp else None
        self.scheduler = make_scheduler(recipe.schedule, self.optimizer, spec.epochs)
        self.loss_fn: LossFn | None = None
        if self.data.classification is not None:
            self.loss_fn = make_loss(recipe.loss, self.data.classification, recipe.source)
        self.shuffle = torch.Generator().manual_seed(spec.seed + 1)
        self.augment_gen = torch.Generator().manual_seed(spec.seed + 2)
        self.clock = _Clock()
        self.steps = 0
        self.epochs_done = 0
        self.first_bad_step: int | None = None
        self.sync_every = 1 if self.device.type == "cpu" else SYNC_EVERY
        self.last_progress = -math.inf
        self.last_val: dict[str, float] = {}
        self.last_epoch_metrics: dict[str, float] = {}
        self.best: tuple[float, int] | None = None  # (monitored loss, epoch) of the checkpoint
        self.checkpoint: Path | None = None
        per_epoch = self.data.train.n_batches(self.batch_size)
        self.batches_per_epoch = per_epoch
        total = per_epoch * self.epochs if per_epoch is not None else 0
        if max_steps is not None and total:
            total = min(total, max_steps)
        self.total_steps = total or (max_steps or 0)

    # -- the loop ------------------------------------------------------------------------------
    def loop(self, monitor: Monitor) -> str:
        self.model.train()
        for epoch in range(self.epochs):
            tally = _EpochTally.zeros(self.device)
            reason = self._train_epoch(monitor, epoch, tally)
            if reason is not None and tally.samples == 0:
                return reason
            metrics = {"train_loss": tally.mean_loss()}
            if tally.accuracy() is not None:
                metrics["train_acc"] = tally.accuracy()  # type: ignore[assignment]
            if self.data.val is not None:
                metrics.update(self.evaluate(self.data.val, "val"))
            monitor.epoch(**metrics)
            self.epochs_done = epoch + 1
            self.last_epoch_metrics = metrics
            self.last_val = {k: v for k, v in metrics.items() if k.startswith("val_")}
            self._report(epoch, tally, force=True)
            if reason is not None:
                return reason
            if self._early_stop(epoch, metrics):
                return "early_stopping"
            self._step_schedule(metrics)
        return "finished"

    def _train_epoch(self, monitor: Monitor, epoch: int, tally: _EpochTally) -> str | None:
        autocast = (torch.autocast("cuda", dtype=torch.float16) if self.amp
                    else contextlib.nullcontext())
        for xb, yb in self.data.train.batches(self.batch_size, self.device, self.recipe.source,
                                              self.shuffle):
            reason = self._should_stop()
            if reason is not None:
                return reason
            if self.data.augment is not None:
                from netdoctor.recipes.data import augment_batch

                xb = augment_batch(xb, self.data.augment, self.augment_gen)
            if self.loss_fn is None:  # a loader: the first batch says which task this is
                self._learn_task(yb)
            assert self.loss_fn is not None
            self.optimizer.zero_grad(set_to_none=True)
            with autocast:
                out = self.model(xb)
                loss = self.loss_fn(out, yb)
            self._backward_and_step(loss)
            monitor.step(loss)
            self.steps += 1
            n = int(yb.shape[0]) if isinstance(yb, torch.Tensor) and yb.dim() else 1
            tally.add(loss.float(), n, correct_count(out.detach(), yb) if self.data.classification
                      else None)
            if self.steps % self.sync_every == 0 and self._diverged(tally):
                return "diverged"
            if self.max_steps is not None and self.steps >= self.max_steps:
                return "max_steps"
            self._report(epoch, tally)
        if self._diverged(tally):
            return "diverged"
        return None

    def _learn_task(self, y: Any) -> None:
        if not isinstance(y, torch.Tensor):
            raise TrainingError(f"{self.recipe.source}: the targets (y) of a batch must be a "
                                f"tensor, got {type(y).__name__}")
        self.data.classification = not (y.is_floating_point() or y.is_complex())
        self.loss_fn = make_loss(self.recipe.loss, self.data.classification, self.recipe.source)

    def _backward_and_step(self, loss: torch.Tensor) -> None:
        spec = self.recipe.train
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            if spec.clip_grad_norm or spec.clip_grad_value:
                self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        if spec.clip_grad_value:
            nn.utils.clip_grad_value_(self.model.parameters(), spec.clip_grad_value)
        if spec.clip_grad_norm:
            nn.utils.clip_grad_norm_(self.model.parameters(), spec.clip_grad_norm)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()

    def _should_stop(self) -> str | None:
        if self.controls.stopped:
            return "stopped"
        self.clock.pause_for(self.controls.wait_while_paused())
        if self.controls.stopped:
            return "stopped"
        if self.max_time is not None and self.clock.elapsed >= self.max_time:
            return "max_time"
        return None

    def _diverged(self, tally: _EpochTally) -> bool:
        if self.first_bad_step is None:
            if int(tally.bad_steps) == 0:
                return False
            self.first_bad_step = self.steps
        return self.steps - self.first_bad_step >= DIVERGED_GRACE_STEPS

    def _report(self, epoch: int, tally: _EpochTally, force: bool = False) -> None:
        if self.on_progress is None:
            return
        now = time.perf_counter()
        if not force and now - self.last_progress < PROGRESS_INTERVAL_S:
            return
        self.last_progress = now
        elapsed = self.clock.elapsed
        seen = (self.epochs_done if force else epoch) * (self.data.train.samples or 0) \
            + (0 if force else tally.samples)
        if self.data.train.samples is None:
            seen = self.steps * self.batch_size
        eta = None
        if self.total_steps and self.steps:
            eta = max(self.total_steps - self.steps, 0) * elapsed / self.steps
            if self.max_time is not None:
                eta = min(eta, max(self.max_time - elapsed, 0.0))
        self.on_progress(Progress(
            epoch=min(epoch + 1, self.epochs), epochs=self.epochs, step=self.steps,
            total_steps=self.total_steps, loss=tally.mean_loss(),
            val_loss=self.last_val.get("val_loss"), train_acc=tally.accuracy(),
            val_acc=self.last_val.get("val_acc"),
            samples_per_s=seen / elapsed if elapsed > 0 else 0.0, elapsed_s=elapsed, eta_s=eta,
            epoch_end=force))

    # -- evaluation, schedule, early stopping ------------------------------------------------
    def evaluate(self, split: Batches, prefix: str) -> dict[str, float]:
        """Mean loss (and accuracy) over a split, in eval mode and without gradients."""
        assert self.loss_fn is not None
        was_training = self.model.training
        self.model.eval()
        total = torch.zeros((), device=self.device, dtype=torch.float64
                            if self.device.type != "mps" else torch.float32)
        right = torch.zeros((), device=self.device, dtype=torch.int64)
        seen = judged = 0
        autocast = (torch.autocast("cuda", dtype=torch.float16) if self.amp
                    else contextlib.nullcontext())
        try:
            with torch.no_grad(), autocast:
                for xb, yb in split.batches(max(self.batch_size, EVAL_BATCH), self.device,
                                            self.recipe.source):
                    out = self.model(xb)
                    n = int(yb.shape[0]) if yb.dim() else 1
                    total += self.loss_fn(out, yb).float().to(total.dtype) * n
                    seen += n
                    counted = correct_count(out, yb) if self.data.classification else None
                    if counted is not None:
                        right += counted[0]
                        judged += counted[1]
        finally:
            self.model.train(was_training)
        if not seen:
            return {}
        metrics = {f"{prefix}_loss": float(total) / seen}
        if judged:
            metrics[f"{prefix}_acc"] = int(right) / judged
        return metrics

    def _monitored(self, metrics: Mapping[str, float]) -> float:
        value = metrics.get("val_loss", metrics.get("train_loss", math.nan))
        return value if math.isfinite(value) else math.inf

    def _step_schedule(self, metrics: Mapping[str, float]) -> None:
        if self.scheduler is None:
            return
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(self._monitored(metrics))
        else:
            self.scheduler.step()

    def _early_stop(self, epoch: int, metrics: Mapping[str, float]) -> bool:
        patience = self.recipe.train.early_stopping
        if not patience:
            return False
        value = self._monitored(metrics)
        if self.best is None or value < self.best[0]:
            self.best = (value, epoch)
            self.checkpoint = self.log.with_name(self.log.stem + ".best.pt")
            torch.save(self.model.state_dict(), self.checkpoint)
            return False
        return epoch - self.best[1] >= patience

    def restore_best(self) -> None:
        if self.checkpoint is not None and self.checkpoint.is_file():
            state = torch.load(self.checkpoint, map_location=self.device, weights_only=True)
            self.model.load_state_dict(state)

    def final_metrics(self) -> dict[str, float]:
        if self.loss_fn is None:  # not one batch was trained
            return {}
        metrics: dict[str, float] = {}
        for name, split in (("train", self.data.train), ("val", self.data.val),
                            ("test", self.data.test)):
            if split is not None:
                metrics.update(self.evaluate(split, name))
        return metrics

    def message(self, stopped: str) -> str | None:
        where = f"after {self.steps} steps, in epoch {max(self.epochs_done, 1)} of {self.epochs}"
        if stopped == "max_steps":
            return f"stopped by the max_steps budget ({self.max_steps} steps), {where}"
        if stopped == "max_time":
            return f"stopped by the max_time budget ({self.max_time:g} s), {where}"
        if stopped == "stopped":
            return f"stopped on request, {where}"
        if stopped == "diverged":
            return (f"stopped: the training loss became non-finite by step {self.first_bad_step}"
                    f"; {where}")
        if stopped == "early_stopping" and self.best is not None:
            key = "val_loss" if self.data.val is not None else "train_loss"
            return (f"early stopping: {key} did not improve for "
                    f"{self.recipe.train.early_stopping} epochs; the weights of epoch "
                    f"{self.best[1] + 1} were restored")
        return None


@contextlib.contextmanager
def _sigint_held() -> Iterator[None]:
    """While the log is being closed, a second Ctrl-C must not leave it half-written: hold
    SIGINT off (main thread only; elsewhere Python delivers no signals anyway)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)


def train(
    recipe: Recipe,
    log: Path | str,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    controls: Controls | None = None,
    max_steps: int | None = None,
    max_time: float | None = None,
    rules: RuleConfig | None = None,
) -> TrainResult:
    """Train ``recipe`` under ``netdoctor.watch``, writing ``log``; return how it ended.

    ``max_steps``/``max_time`` (seconds of training, pauses excluded) end the run early;
    ``controls`` pause or stop it from another thread; ``rules`` selects the rules that
    diagnose it. Ctrl-C ends it with the log closed as "interrupted" and returns the result
    (``stopped == "interrupted"``). Raises ConfigError for a recipe that cannot be built and
    TrainingError when the training code itself fails (the log is kept, status "crashed").
    """
    if max_steps is not None and max_steps < 1:
        raise ConfigError(f"--max-steps must be at least 1, got {max_steps}")
    if max_time is not None and not (math.isfinite(max_time) and max_time > 0):
        raise ConfigError(f"--max-time must be a positive number of seconds, got {max_time}")
    log = Path(log)
    setup = _build(recipe)
    run = _Run(recipe, setup, log, on_progress, controls or Controls(), max_steps, max_time)
    data = setup.data
    monitor = watch(setup.model, setup.optimizer, log=log, num_classes=data.num_classes,
                    chance_loss=data.chance_loss)
    monitor.annotate({"source": "recipe", "recipe": _describe(recipe),
                      "budget": {"max_steps": max_steps, "max_time": max_time}})
    try:
        stopped = run.loop(monitor)  # type: ignore[arg-type]
    except KeyboardInterrupt:
        return _close_interrupted(run, monitor, rules)
    except Exception as exc:
        with _sigint_held():  # the log records the crash and its one-line reason
            monitor.__exit__(type(exc), exc, exc.__traceback__)
        if isinstance(exc, NetdoctorError):
            raise
        raise TrainingError(f"{recipe.source}: training failed at step {run.steps}: "
                            f"{type(exc).__name__}: {_first_line(exc)}{_where_failed(exc)}; "
                            f"the run log {log} keeps what was recorded") from exc
    with _sigint_held():
        run.restore_best()
        metrics = run.final_metrics()
        message = run.message(stopped)
        monitor.annotate({"stopped": stopped, "final_metrics": metrics, "notes": run.notes})
        diagnoses = monitor.close(rules, message)
    return TrainResult(log, list(diagnoses), metrics, stopped, run.steps, run.epochs_done,
                       run.clock.elapsed, message, run.checkpoint, tuple(run.notes))


def _close_interrupted(run: _Run, monitor: Any, rules: RuleConfig | None) -> TrainResult:
    from netdoctor.rules import run_rules
    from netdoctor.runlog import open_run

    with _sigint_held():
        monitor.annotate({"stopped": "interrupted", "final_metrics": run.last_epoch_metrics})
        monitor.__exit__(KeyboardInterrupt, KeyboardInterrupt(), None)  # status "interrupted"
        diagnoses = run_rules(open_run(run.log), rules)
    return TrainResult(run.log, list(diagnoses), dict(run.last_epoch_metrics), "interrupted",
                       run.steps, run.epochs_done, run.clock.elapsed,
                       f"interrupted (Ctrl-C) after {run.steps} steps", run.checkpoint,
                       tuple(run.notes))


def _describe(recipe: Recipe) -> dict[str, Any]:
    """What the log records about the recipe: enough to re-run it."""
    described: dict[str, Any] = {"name": recipe.name, "path": recipe.source,
                                 "description": recipe.description,
                                 "expect": list(recipe.expect), "seed": recipe.train.seed,
                                 "python": recipe.is_python}
    described["settings"] = recipe.to_tables()
    return described


__all__ = ["STOP_REASONS", "Controls", "Progress", "TrainResult", "TrainingError",
           "make_loss", "make_optimizer", "make_scheduler", "resolve_device", "train"]
