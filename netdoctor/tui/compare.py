"""Before and after a fix: two runs side by side, as plain records (the screen only lays out)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from netdoctor.diagnosis import Diagnosis, Severity
from netdoctor.tui.live import LiveResult

#: Metrics shown, in this order, when a run reports them (the trainer's TrainResult.metrics).
METRICS = ("train_loss", "val_loss", "test_loss", "train_acc", "val_acc", "test_acc")


@dataclass(frozen=True)
class RunRecord:
    """How one run ended. ``error`` is set when training raised instead of returning."""

    label: str
    log: Path
    stopped: str
    steps: int | None
    metrics: Mapping[str, float] = field(default_factory=dict)
    diagnoses: tuple[Diagnosis, ...] = ()
    error: str | None = None

    @classmethod
    def from_result(cls, label: str, result: LiveResult) -> RunRecord:
        return cls(label, Path(result.log), result.stopped, result.steps,
                   dict(result.metrics), tuple(result.diagnoses))

    @classmethod
    def from_error(
        cls, label: str, log: Path, error: str, steps: int | None,
        diagnoses: Sequence[Diagnosis],
    ) -> RunRecord:
        return cls(label, log, "crashed", steps, {}, tuple(diagnoses), error)

    def count(self, severity: Severity) -> int:
        return sum(d.severity is severity for d in self.diagnoses)


@dataclass(frozen=True, slots=True)
class MetricRow:
    name: str
    before: float | None
    after: float | None

    @property
    def better(self) -> bool | None:
        """Lower loss or higher accuracy after the fix; None when not comparable."""
        if self.before is None or self.after is None:
            return None
        if not (math.isfinite(self.before) and math.isfinite(self.after)):
            return math.isfinite(self.after) if not math.isfinite(self.before) else False
        if self.after == self.before:
            return None
        return self.after > self.before if self.name.endswith("acc") else self.after < self.before


def metric_rows(before: RunRecord, after: RunRecord) -> list[MetricRow]:
    names = [m for m in METRICS if m in before.metrics or m in after.metrics]
    names += sorted((set(before.metrics) | set(after.metrics)) - set(names))
    return [MetricRow(n, before.metrics.get(n), after.metrics.get(n)) for n in names]


def verdict(before: RunRecord, after: RunRecord, fix_id: str) -> str:
    """One line: what the fix did to the findings and to the validation metrics."""
    items = []
    for severity in (Severity.ERROR, Severity.WARNING):
        b, a = before.count(severity), after.count(severity)
        if a or b:
            items.append(f"{severity.value}s {b} → {a}")
    if before.diagnoses and not after.diagnoses:
        items.append("no findings left")
    elif not before.diagnoses and not after.diagnoses:
        items.append("no findings before or after")
    for name in ("val_loss", "val_acc"):
        b_value, a_value = before.metrics.get(name), after.metrics.get(name)
        if b_value is not None and a_value is not None:
            items.append(f"{name} {b_value:.4g} → {a_value:.4g}")
    return f"{fix_id}: " + " · ".join(items)
