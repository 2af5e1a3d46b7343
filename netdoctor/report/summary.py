"""The facts about a run that every report shows, read once from a ``RunData``.

The capture side writes these into ``run.meta``; any key may be missing (an old log, a run killed
before it wrote them, a log written by hand), so every field here may be None.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np

from netdoctor.runlog import RunData
from netdoctor.runlog.schema import RunStatus, StepField


class Outcome(str, enum.Enum):
    """How the run ended, as reports state it."""

    FINISHED = "finished"
    CRASHED = "crashed"
    INTERRUPTED = "interrupted"
    RUNNING = "running"  # the writer is still alive: the log grows
    DID_NOT_FINISH = "did_not_finish"  # status says running, but the writer is gone (killed)

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")


@dataclass(frozen=True, slots=True)
class RunSummary:
    """One run in a few numbers. Floats may be NaN or Inf (a diverged loss); None means unknown."""

    path: str
    outcome: Outcome
    end_message: str | None
    steps: int  # optimizer steps recorded
    last_step: int | None
    epochs: int
    started_at: datetime | None  # UTC
    ended_at: datetime | None
    duration_s: float | None
    device: str | None
    model: str | None
    n_parameters: int | None
    optimizer: str | None
    lr: float | None  # group 0 as the optimizer was configured
    final_lr: float | None  # group 0 at the last recorded step (differs under a schedule)
    final_loss: float | None  # loss of the last step that had one
    best_val_loss: float | None
    best_val_epoch: int | None
    netdoctor_version: str | None  # the version that recorded the log
    torch_version: str | None
    python_version: str | None


def summarize(run: RunData) -> RunSummary:
    meta = run.meta
    started = _number(meta.get("created_at"))
    ended = _number(meta.get("ended_at"))
    optimizer = _table(meta.get("optimizer"))
    groups = optimizer.get("groups")
    first_group = _table(groups[0]) if isinstance(groups, list) and groups else {}
    best_val_loss, best_val_epoch = _best("val_loss", run)
    return RunSummary(
        path=run.path,
        outcome=_outcome(run),
        end_message=_text(meta.get("end_message")),
        steps=run.n_steps,
        last_step=int(run.step_numbers[-1]) if run.n_steps else _integer(meta.get("last_step")),
        epochs=len(run.epochs),
        started_at=_utc(started),
        ended_at=_utc(ended),
        duration_s=_duration(run, started, ended),
        device=_text(meta.get("device")),
        model=_text(meta.get("model_class")),
        n_parameters=_integer(meta.get("n_parameters")),
        optimizer=_text(optimizer.get("class")),
        lr=_number(first_group.get("lr")),
        final_lr=_last_finite(run.series(StepField.LR)),
        final_loss=_final_loss(run),
        best_val_loss=best_val_loss,
        best_val_epoch=best_val_epoch,
        netdoctor_version=_text(meta.get("netdoctor_version")),
        torch_version=_text(meta.get("torch_version")),
        python_version=_text(meta.get("python_version")),
    )


def _outcome(run: RunData) -> Outcome:
    if run.status is RunStatus.RUNNING:
        return Outcome.RUNNING if run.writer_alive else Outcome.DID_NOT_FINISH
    return Outcome(run.status.value)


def _duration(run: RunData, started: float | None, ended: float | None) -> float | None:
    if started is not None and ended is not None and ended >= started:
        return ended - started
    # No end time (killed, or still running): the last step's clock is the best we know.
    return _last_finite(run.series(StepField.TIME))


def _final_loss(run: RunData) -> float | None:
    given = run.loss[run.has_loss]
    return float(given[-1]) if given.size else None


def _best(key: str, run: RunData) -> tuple[float | None, int | None]:
    epochs, _, values = run.epoch_series(key)
    finite = np.isfinite(values)
    if not finite.any():
        return None, None
    i = int(np.argmin(np.where(finite, values, np.inf)))
    return float(values[i]), int(epochs[i])


def _last_finite(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(finite[-1]) if finite.size else None


def _table(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _integer(value: Any) -> int | None:
    number = _number(value)
    return int(number) if number is not None and math.isfinite(number) else None


def _utc(unix_seconds: float | None) -> datetime | None:
    if unix_seconds is None:
        return None
    try:
        return datetime.fromtimestamp(unix_seconds, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):  # garbage in meta: not a time we can show
        return None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
