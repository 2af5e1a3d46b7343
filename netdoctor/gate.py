"""The CI gate's verdict: which diagnoses fail a check, and how a run compares with a baseline.

Kept apart from the command line and from every output format: ``netdoctor check`` builds a
``CheckResult`` once and each emitter (text, JSON, JUnit, Markdown, GitHub annotations) only
reads it, so that all of them agree on what failed. Torch-free and rich-free.

With a baseline (a known-good run of the same training), the gate asks "did it get worse?"
rather than "is anything wrong?": a finding fails only when the baseline did not have its rule
at or above the threshold too, and the final loss fails when it regressed by more than
``max_regression``. This is the usual meaning of a linter's baseline: known findings are
accepted, new ones are not.
"""

from __future__ import annotations

import enum
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from netdoctor.diagnosis import Diagnosis, Severity

if TYPE_CHECKING:  # pragma: no cover - the CLI imports FailOn for its options: keep it light
    from netdoctor.runlog import RunData


class FailOn(str, enum.Enum):
    """The lowest severity that fails a check (``--fail-on``, ``fail_on`` in the settings)."""

    ERROR = "error"
    WARNING = "warning"

    @property
    def severity(self) -> Severity:
        return Severity(self.value)

    def catches(self, d: Diagnosis) -> bool:
        """Whether ``d`` is at or above this threshold."""
        return d.severity.rank >= self.severity.rank


@dataclass(frozen=True, slots=True)
class FinalLoss:
    """The loss a run ended with, and where it comes from (a report must say which)."""

    metric: str  # "val_loss" or "train_loss" (epoch metrics), or "loss" (the last step's)
    value: float  # may be NaN or Inf: a diverged run
    epoch: int | None  # the epoch that reported it; None for a step loss
    step: int | None

    def describe(self) -> str:
        where = f"epoch {self.epoch}" if self.epoch is not None else f"step {self.step}"
        return f"{self.metric} {self.value:.4g} at {where}"

    def to_json(self) -> dict[str, Any]:
        value = self.value if math.isfinite(self.value) else None
        return {"metric": self.metric, "value": value, "epoch": self.epoch, "step": self.step}


#: Which loss counts as "final", best first: the last epoch's validation loss says the most
#: about the model; the epoch train loss is smoother than a single step's.
LOSS_METRICS = ("val_loss", "train_loss", "loss")


def final_loss(run: RunData, metric: str) -> FinalLoss | None:
    """The run's last value of ``metric`` (one of LOSS_METRICS), or None when it has none."""
    if metric == "loss":
        given = run.has_loss
        if not given.any():
            return None
        last = int(given.nonzero()[0][-1])
        return FinalLoss("loss", float(run.loss[last]), None, int(run.step_numbers[last]))
    epochs, steps, values = run.epoch_series(metric)
    if not len(values):
        return None
    return FinalLoss(metric, float(values[-1]), int(epochs[-1]), int(steps[-1]))


@dataclass(frozen=True, slots=True)
class LossComparison:
    """The final loss of the checked run against the baseline's, on the same metric."""

    current: FinalLoss
    baseline: FinalLoss
    max_regression: float  # allowed relative increase: 0.10 = 10 %

    @property
    def change(self) -> float:
        """Relative change (current - baseline) / |baseline|; +inf for a diverged current run."""
        cur, base = self.current.value, self.baseline.value
        if not math.isfinite(cur):
            return math.inf
        if base == 0.0:
            return 0.0 if cur <= 0.0 else math.inf
        return (cur - base) / abs(base)

    @property
    def regressed(self) -> bool:
        return self.change > self.max_regression

    def describe(self) -> str:
        change = self.change
        shown = "diverged" if math.isinf(change) else f"{change:+.1%}"
        verdict = "more than" if self.regressed else "within"
        return (f"final {self.current.metric} {self.current.value:.4g} vs baseline "
                f"{self.baseline.value:.4g}: {shown} ({verdict} the allowed "
                f"+{self.max_regression:.0%})")

    def to_json(self) -> dict[str, Any]:
        change = self.change
        return {
            "metric": self.current.metric,
            "current": self.current.to_json(),
            "baseline": self.baseline.to_json(),
            "change": change if math.isfinite(change) else None,
            "max_regression": self.max_regression,
            "regressed": self.regressed,
        }


@dataclass(frozen=True, slots=True)
class BaselineComparison:
    """What changed against the baseline run."""

    path: str
    new_rules: tuple[str, ...]  # at/above the threshold now, not in the baseline: these fail
    known_rules: tuple[str, ...]  # at/above the threshold in both runs: accepted
    resolved_rules: tuple[str, ...]  # at/above the threshold in the baseline only
    loss: LossComparison | None
    loss_note: str | None  # why the losses were not compared, when they were not

    @property
    def failed(self) -> bool:
        return bool(self.new_rules) or (self.loss is not None and self.loss.regressed)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "new_rules": list(self.new_rules),
            "known_rules": list(self.known_rules),
            "resolved_rules": list(self.resolved_rules),
            "loss": None if self.loss is None else self.loss.to_json(),
            "loss_note": self.loss_note,
            "failed": self.failed,
        }


def compare_baseline(
    run: RunData,
    diagnoses: Sequence[Diagnosis],
    baseline: RunData,
    baseline_diagnoses: Sequence[Diagnosis],
    fail_on: FailOn,
    max_regression: float,
) -> BaselineComparison:
    """Compare a run with a known-good one (same rules, same threshold)."""
    now = _rule_ids(d for d in diagnoses if fail_on.catches(d))
    before = _rule_ids(d for d in baseline_diagnoses if fail_on.catches(d))
    loss, note = _compare_losses(run, baseline, max_regression)
    return BaselineComparison(
        path=baseline.path,
        new_rules=tuple(r for r in now if r not in before),
        known_rules=tuple(r for r in now if r in before),
        resolved_rules=tuple(r for r in before if r not in now),
        loss=loss,
        loss_note=note,
    )


def _compare_losses(
    run: RunData, baseline: RunData, max_regression: float
) -> tuple[LossComparison | None, str | None]:
    for metric in LOSS_METRICS:  # the best metric both runs have
        current, base = final_loss(run, metric), final_loss(baseline, metric)
        if current is None or base is None:
            continue
        if not math.isfinite(base.value):
            return None, (f"the baseline's final {metric} is {base.value}: not a known-good "
                          "run, losses not compared")
        return LossComparison(current, base, max_regression), None
    return None, "no loss that both runs recorded: losses not compared"


def _rule_ids(diagnoses: Iterable[Diagnosis]) -> tuple[str, ...]:
    """Rule ids in first-seen order (the engine's order: causes first), without repeats."""
    return tuple(dict.fromkeys(d.rule for d in diagnoses))


@dataclass(frozen=True)
class CheckResult:
    """Everything a check found, for every emitter to read."""

    run: RunData
    diagnoses: tuple[Diagnosis, ...]
    fail_on: FailOn
    ran: tuple[str, ...]  # rule ids that ran, in documented order
    skipped: tuple[str, ...]  # rule ids not selected
    baseline: BaselineComparison | None = None
    elapsed_s: float = 0.0  # reading the log(s) and running the rules

    def is_failing(self, d: Diagnosis) -> bool:
        """Whether ``d`` fails the check: at/above the threshold and, with a baseline, new."""
        if not self.fail_on.catches(d):
            return False
        return self.baseline is None or d.rule in self.baseline.new_rules

    @property
    def failing(self) -> tuple[Diagnosis, ...]:
        return tuple(d for d in self.diagnoses if self.is_failing(d))

    @property
    def loss_regressed(self) -> bool:
        return (self.baseline is not None and self.baseline.loss is not None
                and self.baseline.loss.regressed)

    @property
    def passed(self) -> bool:
        return not self.failing and not self.loss_regressed

    def summary(self) -> str:
        """One line: the verdict and why, for people (text, Markdown) and test UIs."""
        failing = self.failing
        threshold = self.fail_on.value
        new = " new" if self.baseline is not None else ""
        if self.passed:
            others = Counter(d.severity for d in self.diagnoses)
            tally = ", ".join(_count(others[sev], sev.value)
                              for sev in sorted(others, key=lambda s: -s.rank))
            return f"passed: nothing{new} at or above {threshold}" + (
                f"; also found {tally}" if tally else "")
        reasons = []
        if failing:
            rules = ", ".join(_rule_ids(failing))
            noun = "new finding" if self.baseline is not None else "finding"
            reasons.append(f"{_count(len(failing), noun)} at or above {threshold} ({rules})")
        if self.loss_regressed:
            assert self.baseline is not None and self.baseline.loss is not None
            reasons.append(f"final {self.baseline.loss.current.metric} regressed")
        return "failed: " + "; ".join(reasons)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
