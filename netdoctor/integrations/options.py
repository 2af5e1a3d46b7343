"""What the integrations share: ``watch()``'s options, plus when to stop a run early.

A trainer integration starts ``watch()`` itself once the trainer has built the model and the
optimizer, so it has to keep the user's ``watch()`` options until then. Stopping early runs the
rules on the log so far (``Monitor.diagnose``) every ``check_every`` optimizer steps: the same
schedule on every process, because the decision is then agreed by a collective that every rank
must join (the trainer's own: Lightning's ``reduce_boolean_decision``, accelerate's ``reduce``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from netdoctor.capture import Monitor, SamplingSchedule, watch
from netdoctor.diagnosis import Diagnosis, Severity

if TYPE_CHECKING:
    from torch import nn
    from torch.optim import Optimizer

    from netdoctor.capture.ranks import QuietMonitor
    from netdoctor.rules.config import RuleConfig

STOP_ON = ("error", "warning")


@dataclass(frozen=True)
class WatchOptions:
    """``watch()``'s arguments, kept until the trainer has a model and an optimizer, plus
    ``rules`` (for the diagnoses at the end and for stopping), ``stop_on`` (stop training at
    the first diagnosis of that severity or worse) and ``check_every`` (optimizer steps between
    two such checks; default ``flush_every``, since the log only moves at a flush)."""

    log: str | os.PathLike[str] | None = None
    num_classes: int | None = None
    chance_loss: float | None = None
    schedule: SamplingSchedule | None = None
    flush_every: int = 64
    flush_seconds: float = 2.0
    rules: RuleConfig | None = None
    stop_on: str | None = None
    check_every: int | None = None

    def __post_init__(self) -> None:
        if self.stop_on is not None and self.stop_on not in STOP_ON:
            raise ValueError(f"netdoctor: stop_on must be one of {STOP_ON} or None, "
                             f"got {self.stop_on!r}")
        if self.check_every is not None and self.check_every < 1:
            raise ValueError(f"netdoctor: check_every must be >= 1, got {self.check_every}")
        if self.flush_every < 1:  # watch() checks it too, but only once training has started
            raise ValueError(f"netdoctor: flush_every must be >= 1, got {self.flush_every}")

    @property
    def check_interval(self) -> int:
        return self.check_every or self.flush_every

    def watch(self, model: nn.Module, optimizer: Optimizer | None) -> Monitor | QuietMonitor:
        return watch(model, optimizer, self.log, num_classes=self.num_classes,
                     chance_loss=self.chance_loss, schedule=self.schedule,
                     flush_every=self.flush_every, flush_seconds=self.flush_seconds)

    def stop_reason(self, monitor: Monitor | QuietMonitor) -> Diagnosis | None:
        """The first diagnosis so far at or above ``stop_on`` (None: go on). Only the process
        that writes the log diagnoses; the others answer None and learn the decision from it."""
        if self.stop_on is None or not isinstance(monitor, Monitor) or monitor.closed:
            return None
        worst = Severity(self.stop_on).rank
        found = [d for d in monitor.diagnose(self.rules) if d.severity.rank >= worst]
        return min(found, key=lambda d: (d.step if d.step is not None else 1 << 62)) if found \
            else None


def metric_keys(
    defaults: Mapping[str, tuple[str, ...]], given: Mapping[str, str | tuple[str, ...]] | None
) -> dict[str, tuple[str, ...]]:
    """netdoctor's epoch metric -> the trainer's keys to look for, first found wins. ``given``
    overrides per metric (one key or several); a metric mapped to () is not recorded."""
    keys = dict(defaults)
    for name, value in (given or {}).items():
        if name not in defaults:
            raise ValueError(f"netdoctor: metrics keys are {sorted(defaults)}; got {name!r}")
        keys[name] = (value,) if isinstance(value, str) else tuple(value)
    return keys


def pick_metrics(
    source: Mapping[str, Any], keys: Mapping[str, tuple[str, ...]], names: tuple[str, ...]
) -> dict[str, Any]:
    """The first present key of each of ``names`` in ``source`` (a trainer's metrics)."""
    found: dict[str, Any] = {}
    for name in names:
        for key in keys.get(name, ()):
            value = source.get(key)
            if value is not None:
                found[name] = value
                break
    return found


def stop_message(reason: Diagnosis) -> str:
    step = "" if reason.step is None else f" at step {reason.step}"
    return f"stopped by netdoctor (stop_on): {reason.rule}{step}"


#: Step numbers of skipped optimizer steps kept in the log's meta.
SKIPPED_KEPT = 100


def note_skipped_steps(monitor: Monitor | QuietMonitor, skipped: list[int]) -> None:
    """Record in the log the steps whose ``optimizer.step()`` a GradScaler skipped: the trainers
    detect them differently (Lightning: no optimizer step hook fired; accelerate:
    ``optimizer_step_was_skipped``) but the rules read one meta entry."""
    if skipped:
        monitor.annotate({"skipped_optimizer_steps": {
            "count": len(skipped), "before_steps": skipped[:SKIPPED_KEPT],
            "why": "the GradScaler found inf/NaN gradients and skipped optimizer.step()"}})
