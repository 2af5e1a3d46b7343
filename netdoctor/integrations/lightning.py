"""Lightning: ``Trainer(callbacks=[NetdoctorCallback(log="runs/x.sqlite")])``.

Where each thing is read, and why there:

* ``watch()`` starts in ``on_fit_start``: the strategy has moved the model to its device,
  wrapped it (DDP) and built the optimizers by then.
* Gradients are read in ``on_before_optimizer_step``. Lightning runs the training step and the
  backward pass inside ``optimizer.step(closure)``, after the optimizer's pre-hook, so the
  pre-hook would see the previous step's gradients; this hook comes after the backward pass,
  after gradient accumulation and AMP unscaling, and before gradient clipping.
* Steps are optimizer steps (the optimizer's post-hook). The loss comes from
  ``on_train_batch_end``, which under ``accumulate_grad_batches=k`` holds the loss divided by
  k: multiplied back, and the micro-batches of one step averaged.
* Epoch metrics come from ``trainer.callback_metrics`` in ``on_train_epoch_end``; validation
  ones only when validation ran since the last epoch (never the sanity check's). The probes
  ignore forward passes in eval mode or without grad, so validation batches are not counted.
* The log is closed in ``on_fit_end`` (``.diagnoses`` holds the result) and in
  ``on_exception``.

One class serves both packages: it derives from the ``Callback`` of ``lightning.pytorch`` and
of ``pytorch_lightning``, whichever are installed, so either Trainer accepts it (a callback of
the other package alone is refused with "Expected a parent").

With ``NETDOCTOR_LOG=path`` set, a Lightning run gets the callback with no code change, through
the ``callbacks_factory`` entry points (see ``netdoctor.integrations.lightning_env``).
"""

from __future__ import annotations

import importlib
import os
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch

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

PACKAGES = ("lightning.pytorch", "pytorch_lightning")

#: netdoctor's epoch metric -> keys looked up in ``trainer.callback_metrics``, first found wins.
#: Training metrics only under their epoch-level names: a metric logged per step only holds the
#: last batch's value (then the rules average the step losses themselves).
DEFAULT_METRICS: dict[str, tuple[str, ...]] = {
    "train_loss": ("train_loss_epoch", "train/loss_epoch", "loss_epoch"),
    "val_loss": ("val_loss", "val/loss", "val_loss_epoch", "valid_loss", "validation_loss"),
    "train_acc": ("train_acc_epoch", "train/acc_epoch", "train_accuracy_epoch"),
    "val_acc": ("val_acc", "val/acc", "val_accuracy", "valid_acc", "val_acc_epoch"),
}
_VALIDATION = ("val_loss", "val_acc")


def _callback_bases() -> tuple[type, ...]:
    bases = []
    for name in PACKAGES:
        try:
            bases.append(importlib.import_module(name).Callback)
        except ImportError:
            continue
    if not bases:
        raise ImportError("netdoctor.integrations.lightning needs Lightning: "
                          "pip install 'netdoctor[lightning]' (or pytorch-lightning)")
    return tuple(bases)


class NetdoctorCallback(*_callback_bases()):  # type: ignore[misc]
    """Watch a Lightning run: ``NetdoctorCallback(log=PATH, ...)`` takes ``watch()``'s options.

    Args:
        log, num_classes, chance_loss, schedule, flush_every, flush_seconds: as for
            :func:`netdoctor.watch`.
        rules: a ``netdoctor.rules.RuleConfig`` for the diagnoses (default: every rule).
        stop_on: ``"error"`` (or ``"warning"``) stops training, agreed by every process, at
            the first diagnosis of that severity or worse; checked every ``check_every``
            optimizer steps (default ``flush_every``) and at each epoch's end.
        metrics: where the epoch metrics are in ``trainer.callback_metrics``:
            ``{"val_loss": "my_val_loss", "train_acc": ("acc_epoch", "acc")}``; ``()`` skips one.
            Defaults: see ``DEFAULT_METRICS``.

    After ``trainer.fit()``: ``.diagnoses`` (rank 0), ``.log_path``, ``.stopped_by``.
    """

    def __init__(
        self,
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
    ) -> None:
        self.options = WatchOptions(log, num_classes, chance_loss, schedule, flush_every,
                                    flush_seconds, rules, stop_on, check_every)
        self.metrics = metric_keys(DEFAULT_METRICS, metrics)
        self.diagnoses: list[Diagnosis] = []
        self.stopped_by: Diagnosis | None = None
        self.monitor: Monitor | QuietMonitor | None = None
        self.from_env = False  # made by NETDOCTOR_LOG: gives way to one the user passed
        self._optimizer: torch.optim.Optimizer | None = None
        self._stepping = False  # on_before_optimizer_step ran in this batch
        self._steps_before = 0
        self._skipped: list[int] = []
        self._validated = False
        self._last_check = 0
        self._stopping = False  # decided on every rank at once: no rank checks (reduces) again

    @property
    def log_path(self) -> os.PathLike[str] | None:
        return None if self.monitor is None else self.monitor.log_path

    @property
    def state_key(self) -> str:
        # Lightning refuses two stateful callbacks with one key; the user's and NETDOCTOR_LOG's
        # may both be there (the second then stays idle)
        return self._generate_state_key(log=str(self.options.log), env=self.from_env)

    # ---- fit -----------------------------------------------------------------------------------
    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        if self.from_env and any(isinstance(cb, NetdoctorCallback) and not cb.from_env
                                 for cb in trainer.callbacks):
            return
        if self.monitor is not None and not self.monitor.closed:  # a fit that never ended
            self.monitor.close()
        optimizers = list(trainer.optimizers)
        if len(optimizers) > 1:
            warnings.warn(f"netdoctor: this LightningModule has {len(optimizers)} optimizers; "
                          "netdoctor follows the first one", RuntimeWarning, stacklevel=2)
        self._optimizer = optimizers[0] if optimizers else None
        self._skipped, self._validated, self._last_check = [], False, trainer.global_step
        self.diagnoses, self.stopped_by, self._stopping = [], None, False
        self.monitor = self.options.watch(pl_module, self._optimizer)
        self.monitor.annotate({"integration": {
            "name": "lightning",
            "package": type(trainer).__module__.split(".")[0],
            "accumulate_grad_batches": trainer.accumulate_grad_batches,
            "precision": str(trainer.precision),
            "gradient_clip_val": trainer.gradient_clip_val,
            "strategy": type(trainer.strategy).__name__,
        }})

    def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
        monitor = self._open()
        if (not isinstance(monitor, Monitor)  # a QuietMonitor (another rank) reads nothing
                or getattr(optimizer, "_optimizer", optimizer) is not self._optimizer):
            return
        monitor.read_gradients(self._scale_left(trainer, optimizer))
        self._stepping, self._steps_before = True, monitor.steps

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        monitor = self._open()
        if monitor is None:
            return
        monitor.step(self._loss(outputs, trainer, pl_module))
        if self._stepping and monitor.steps == self._steps_before:
            self._skipped.append(monitor.steps)  # a GradScaler found inf and skipped the step
        self._stepping = False
        if (self.options.stop_on is not None
                and trainer.global_step - self._last_check >= self.options.check_interval):
            self._last_check = trainer.global_step
            self._check_stop(trainer)

    def on_validation_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if not trainer.sanity_checking:
            self._validated = True

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        monitor = self._open()
        if monitor is None:
            return
        names = tuple(n for n in self.metrics if self._validated or n not in _VALIDATION)
        found = pick_metrics(trainer.callback_metrics, self.metrics, names)
        monitor.epoch(**{k: v for k, v in found.items() if _scalar(v)})
        self._validated = False
        if self.options.stop_on is not None:
            self._check_stop(trainer)

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        monitor = self._open()
        if monitor is None:
            return
        note_skipped_steps(monitor, self._skipped)
        message = None if self.stopped_by is None else stop_message(self.stopped_by)
        self.diagnoses = monitor.close(self.options.rules, message)

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        monitor = self._open()
        if monitor is None:
            return
        note_skipped_steps(monitor, self._skipped)
        monitor.__exit__(type(exception), exception, exception.__traceback__)
        self.diagnoses = monitor.close()

    # ---- helpers -------------------------------------------------------------------------------
    def _open(self) -> Monitor | QuietMonitor | None:
        monitor = self.monitor
        return None if monitor is None or monitor.closed else monitor

    def _loss(self, outputs: Any, trainer: Any, pl_module: Any) -> Any:
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            return None
        if pl_module.automatic_optimization:  # Lightning divided it by accumulate_grad_batches
            loss = loss.detach() * trainer.accumulate_grad_batches
        return loss

    @staticmethod
    def _scale_left(trainer: Any, optimizer: Any) -> float | None:
        """The loss scale still on the gradients: Lightning does not unscale for optimizers
        that unscale inside their own step (fused Adam under fp16 AMP)."""
        scaler = getattr(trainer.precision_plugin, "scaler", None)
        inner = getattr(optimizer, "_optimizer", optimizer)
        if (scaler is None or not scaler.is_enabled()
                or not getattr(inner, "_step_supports_amp_scaling", False)):
            return None
        return float(scaler.get_scale())

    def _check_stop(self, trainer: Any) -> None:
        monitor = self._open()
        if monitor is None or self._stopping:
            return
        reason = self.options.stop_reason(monitor)
        stop = reason is not None
        if trainer.world_size > 1:  # every rank calls this on the same steps: no hang
            stop = trainer.strategy.reduce_boolean_decision(stop, all=False)
        if stop:
            self._stopping = True
            self.stopped_by = reason  # on the rank that diagnosed; None on the others
            trainer.should_stop = True
            if reason is not None:
                monitor.annotate({"stopped_by": {"rule": reason.rule, "step": reason.step}})


def _scalar(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return value.numel() == 1
    return isinstance(value, (int, float)) and not isinstance(value, bool)


__all__ = ["DEFAULT_METRICS", "NetdoctorCallback"]
