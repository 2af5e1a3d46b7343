"""Hugging Face Trainer: ``handle = attach(trainer, log="runs/x.sqlite")`` before ``train()``.

A ``TrainerCallback`` alone cannot see what netdoctor needs, so ``attach`` also wraps three
methods on this one trainer (instance attributes; the class is untouched):

* ``trainer.training_step``: the loss of every micro-batch, unfiltered. The Trainer's logged
  ``loss`` replaces a NaN/Inf step by the running average (``logging_nan_inf_filter``, on by
  default), so a run that died looks healthy in its own log; callbacks only ever get that log.
  The micro-batch losses of one optimizer step are summed (the Trainer divides each by the
  accumulation steps, or normalises by the step's token count), which is the step's loss.
* ``trainer.accelerator.unscale_gradients`` (while training): gradients are read right after
  it, inside ``clip_grad_norm_``: after accumulation and AMP unscaling, before clipping. The
  optimizer's pre-hook would see clipped gradients, and the evidence for exploding gradients
  must be pre-clip. (Where it is never called, e.g. DeepSpeed, the pre-hook reads them.)
* ``trainer.train``: an exception closes the log as crashed, with what was recorded.

``watch()`` starts in ``on_train_begin`` (the optimizer exists and is prepared by then), steps
are the optimizer's real steps, each evaluation's ``eval_loss`` (and ``eval_accuracy``) goes to
``monitor.epoch(val_loss=...)``, and when the Trainer's log showed a finite loss over steps
that were not finite, netdoctor says so: a warning, the run log's meta
(``hidden_nonfinite_loss``), ``handle.hidden_nonfinite_steps`` and the ``nan_loss``
diagnosis's evidence (``hidden_by_trainer_log``).
"""

from __future__ import annotations

import dataclasses
import math
import os
import warnings
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import torch
from transformers import Trainer, TrainerCallback

from netdoctor.capture import Monitor, SamplingSchedule
from netdoctor.diagnosis import Diagnosis
from netdoctor.integrations.options import (
    WatchOptions,
    metric_keys,
    note_skipped_steps,
    pick_metrics,
    stop_message,
)

if TYPE_CHECKING:
    from netdoctor.capture.ranks import QuietMonitor
    from netdoctor.rules.config import RuleConfig

#: netdoctor's epoch metric -> keys of the Trainer's evaluation metrics, first found wins.
DEFAULT_METRICS: dict[str, tuple[str, ...]] = {
    "val_loss": ("eval_loss",),
    "val_acc": ("eval_accuracy", "eval_acc"),
}
_HANDLE = "_netdoctor_handle"  # on the trainer: a second attach() replaces the first
_HIDDEN_KEPT = 100  # step numbers kept in the log's meta
_UNLOGGED_KEPT = 1024  # step losses kept on the device between two checks


class _Callback(TrainerCallback):
    """The Trainer's events, forwarded to the handle."""

    def __init__(self, handle: Handle) -> None:
        self.handle = handle

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.handle._begin(args)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.handle._step_end(state, control)

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None,
               **kwargs: Any) -> None:
        self.handle._logged(logs or {})

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: Any = None,
                    **kwargs: Any) -> None:
        self.handle._evaluated(metrics or {})

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.handle._epoch_end(args)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.handle._end()


class Handle:
    """What :func:`attach` returns. After ``trainer.train()``: ``diagnoses`` (main process),
    ``log_path``, ``hidden_nonfinite_steps`` (steps whose non-finite loss the Trainer's log
    did not show) and ``stopped_by``. ``detach()`` undoes ``attach``."""

    def __init__(self, trainer: Trainer, options: WatchOptions,
                 metrics: dict[str, tuple[str, ...]]) -> None:
        self.trainer = trainer
        self.options = options
        self.metrics = metrics
        self.monitor: Monitor | QuietMonitor | None = None
        self.diagnoses: list[Diagnosis] = []
        self.hidden_nonfinite_steps: list[int] = []
        self.stopped_by: Diagnosis | None = None
        self._callback = _Callback(self)
        self._micro: list[torch.Tensor] = []  # this optimizer step's micro-batch losses
        self._unlogged: list[tuple[int, torch.Tensor]] = []  # (netdoctor step, loss) since a log
        self._unlogged_bad: list[int] = []  # steps since the last log with a non-finite loss
        self._unlogged_count = 0
        self._skipped: list[int] = []  # steps whose optimizer.step() a GradScaler skipped
        self._stopping = False  # decided on every process at once: none checks (reduces) again
        self._accelerator: Any = None
        self._evaluates = False
        trainer.add_callback(self._callback)
        self._wrap(trainer, "training_step", self._training_step)
        self._wrap(trainer, "train", self._train)

    @property
    def log_path(self) -> os.PathLike[str] | None:
        return None if self.monitor is None else self.monitor.log_path

    def detach(self) -> None:
        """Remove the callback and the wrappers (closing an open log first)."""
        self._close()
        self.trainer.remove_callback(self._callback)
        for name in ("training_step", "train"):
            self.trainer.__dict__.pop(name, None)
        self._unwrap_accelerator()
        if self.trainer.__dict__.get(_HANDLE) is self:
            del self.trainer.__dict__[_HANDLE]

    # ---- wrappers ------------------------------------------------------------------------------
    @staticmethod
    def _wrap(owner: Any, name: str, wrapper: Callable[..., Any]) -> None:
        original = getattr(owner, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            return wrapper(original, *args, **kwargs)

        call.__wrapped__ = original  # type: ignore[attr-defined]
        owner.__dict__[name] = call

    def _training_step(self, original: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        loss = original(*args, **kwargs)
        if self._open() is not None and isinstance(loss, torch.Tensor) and loss.numel() == 1:
            self._micro.append(loss.detach().reshape(()))
        return loss

    def _train(self, original: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return original(*args, **kwargs)
        except BaseException as exc:
            monitor = self._open()
            if monitor is not None:
                self._annotate(monitor)
                monitor.__exit__(type(exc), exc, exc.__traceback__)
                self.diagnoses = self._with_hidden(monitor.close())
            raise
        finally:
            self._unwrap_accelerator()

    def _unscale_gradients(self, original: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        monitor = self._open()
        if isinstance(monitor, Monitor):  # a QuietMonitor (another process) reads nothing
            monitor.read_gradients()
        return result

    def _unwrap_accelerator(self) -> None:
        if self._accelerator is not None:
            self._accelerator.__dict__.pop("unscale_gradients", None)
            self._accelerator = None

    # ---- events --------------------------------------------------------------------------------
    def _begin(self, args: Any) -> None:
        self._close()
        trainer = self.trainer
        self.diagnoses, self.hidden_nonfinite_steps, self.stopped_by = [], [], None
        self._micro, self._unlogged, self._unlogged_bad, self._unlogged_count = [], [], [], 0
        self._skipped, self._stopping = [], False
        strategy = getattr(args, "eval_strategy", "no")
        self._evaluates = str(getattr(strategy, "value", strategy)).lower() != "no"
        self.monitor = self.options.watch(trainer.model, trainer.optimizer)
        self._accelerator = trainer.accelerator
        self._wrap(self._accelerator, "unscale_gradients", self._unscale_gradients)
        self.monitor.annotate({"integration": {
            "name": "transformers.Trainer",
            "gradient_accumulation_steps": args.gradient_accumulation_steps,
            "max_grad_norm": args.max_grad_norm,
            "logging_nan_inf_filter": bool(args.logging_nan_inf_filter),
            "mixed_precision": str(getattr(trainer.accelerator, "mixed_precision", "no")),
        }})

    def _step_end(self, state: Any, control: Any) -> None:
        monitor = self._open()
        if monitor is None:
            return
        loss = torch.stack(self._micro).sum() if self._micro else None
        self._micro = []
        step = monitor.steps  # the step this loss belongs to (still open if the scaler skipped)
        monitor.step(loss)
        if getattr(self.trainer.accelerator, "optimizer_step_was_skipped", False):
            self._skipped.append(step)  # its loss goes into the next real step
        if loss is not None:
            self._unlogged.append((step, loss))
            if len(self._unlogged) >= _UNLOGGED_KEPT:
                self._drain()
        interval = self.options.check_interval
        if self.options.stop_on is not None and state.global_step % interval == 0:
            self._check_stop(control)

    def _logged(self, logs: Mapping[str, Any]) -> None:
        """Compare the Trainer's logged loss with the losses of the steps it covers."""
        key = "loss" if "loss" in logs else "train_loss" if "train_loss" in logs else None
        if key is None:
            return
        self._drain()
        hidden, covered = self._unlogged_bad, self._unlogged_count
        self._unlogged_bad, self._unlogged_count = [], 0
        logged = logs[key]
        if not hidden or not isinstance(logged, (int, float)) or not math.isfinite(logged):
            return
        if not self.hidden_nonfinite_steps:
            warnings.warn(
                f"netdoctor: the Trainer logged {key}={logged:.4g}, but {len(hidden)} of the "
                f"{covered} steps it covers had a NaN/Inf loss (first at step {hidden[0]}; "
                "logging_nan_inf_filter hides them). netdoctor's log has the real values.",
                RuntimeWarning, stacklevel=2)
        self.hidden_nonfinite_steps.extend(hidden)

    def _drain(self) -> None:
        """Move the unlogged step losses to the host (one sync per log or per 1024 steps)."""
        if not self._unlogged:
            return
        losses = torch.stack([loss for _, loss in self._unlogged]).float()
        finite = torch.isfinite(losses).cpu().tolist()
        self._unlogged_bad.extend(s for (s, _), ok in zip(self._unlogged, finite, strict=True)
                                  if not ok)
        self._unlogged_count += len(self._unlogged)
        self._unlogged = []

    def _evaluated(self, metrics: Mapping[str, Any]) -> None:
        monitor = self._open()
        if monitor is None:
            return
        found = pick_metrics(metrics, self.metrics, tuple(self.metrics))
        monitor.epoch(**{k: float(v) for k, v in found.items() if isinstance(v, (int, float))})

    def _epoch_end(self, args: Any) -> None:
        monitor = self._open()
        if monitor is not None and not self._evaluates:  # else each evaluation closes an epoch
            monitor.epoch()

    def _end(self) -> None:
        monitor = self._open()
        if monitor is None:
            return
        self._annotate(monitor)
        message = None if self.stopped_by is None else stop_message(self.stopped_by)
        self.diagnoses = self._with_hidden(monitor.close(self.options.rules, message))
        self._unwrap_accelerator()

    # ---- helpers -------------------------------------------------------------------------------
    def _open(self) -> Monitor | QuietMonitor | None:
        monitor = self.monitor
        return None if monitor is None or monitor.closed else monitor

    def _close(self) -> None:
        monitor = self._open()
        if monitor is not None:
            self.diagnoses = self._with_hidden(monitor.close(self.options.rules))

    def _check_stop(self, control: Any) -> None:
        monitor = self._open()
        if monitor is None or self._stopping:
            return
        reason = self.options.stop_reason(monitor)
        stop = reason is not None
        accelerator = self.trainer.accelerator
        if accelerator.num_processes > 1:  # every process checks on the same steps: no hang
            flag = torch.tensor([float(stop)], device=accelerator.device)
            stop = bool(accelerator.reduce(flag, reduction="sum").item() > 0)
        if stop:
            self._stopping = True
            self.stopped_by = reason  # in the process that diagnosed; None in the others
            control.should_training_stop = True
            if reason is not None:
                monitor.annotate({"stopped_by": {"rule": reason.rule, "step": reason.step}})

    def _annotate(self, monitor: Monitor | QuietMonitor) -> None:
        note_skipped_steps(monitor, self._skipped)
        if self.hidden_nonfinite_steps:
            monitor.annotate({"hidden_nonfinite_loss": {
                "count": len(self.hidden_nonfinite_steps),
                "steps": self.hidden_nonfinite_steps[:_HIDDEN_KEPT],
                "why": "the Trainer's logged loss skips NaN/Inf steps (logging_nan_inf_filter)",
            }})

    def _with_hidden(self, diagnoses: list[Diagnosis]) -> list[Diagnosis]:
        if not self.hidden_nonfinite_steps:
            return diagnoses
        extra = {"hidden_by_trainer_log": True,
                 "hidden_steps": self.hidden_nonfinite_steps[:_HIDDEN_KEPT]}
        return [dataclasses.replace(d, evidence={**d.evidence, **extra})
                if d.rule == "nan_loss" else d for d in diagnoses]


def attach(
    trainer: Trainer,
    log: str | os.PathLike[str] | None = None,
    *,
    num_classes: int | None = None,
    chance_loss: float | None = None,
    schedule: SamplingSchedule | None = None,
    flush_every: int = 64,
    flush_seconds: float = 2.0,
    rules: RuleConfig | None = None,
    stop_on: str | None = None,
    check_every: int | None = None,
    metrics: Mapping[str, str | tuple[str, ...]] | None = None,
) -> Handle:
    """Watch ``trainer``'s next ``train()`` calls; options as for :func:`netdoctor.watch`.

    ``stop_on="error"`` (or ``"warning"``) stops training at the first diagnosis of that
    severity, checked every ``check_every`` optimizer steps (default ``flush_every``) and agreed
    by every process. ``metrics`` maps ``val_loss`` / ``val_acc`` to evaluation metric names
    (defaults: ``eval_loss``, ``eval_accuracy``).
    """
    if not isinstance(trainer, Trainer):
        raise TypeError(f"netdoctor.integrations.hf.attach: expected a transformers.Trainer, "
                        f"got {type(trainer).__name__}")
    previous = trainer.__dict__.get(_HANDLE)
    if isinstance(previous, Handle):
        warnings.warn("netdoctor: this Trainer was already attached; replacing that handle",
                      RuntimeWarning, stacklevel=2)
        previous.detach()
    options = WatchOptions(log, num_classes, chance_loss, schedule, flush_every, flush_seconds,
                           rules, stop_on, check_every)
    handle = Handle(trainer, options, metric_keys(DEFAULT_METRICS, metrics))
    trainer.__dict__[_HANDLE] = handle
    return handle


__all__ = ["DEFAULT_METRICS", "Handle", "attach"]
