"""The gate's verdict: the failure threshold, the final loss, and the baseline comparison."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest

from netdoctor.diagnosis import Diagnosis, Severity
from netdoctor.gate import (
    CheckResult,
    FailOn,
    FinalLoss,
    LossComparison,
    compare_baseline,
    final_loss,
)
from netdoctor.runlog import EpochRecord, RunData, open_run


def diag(rule: str, severity: Severity) -> Diagnosis:
    return Diagnosis(rule, severity, 1, None, f"{rule} found", {}, ())


def loss(value: float, metric: str = "val_loss") -> FinalLoss:
    return FinalLoss(metric, value, 3, 30)


def only_train_loss(run: RunData) -> RunData:
    epochs = tuple(EpochRecord(e.epoch, e.step, {"train_loss": e.metrics["train_loss"]})
                   for e in run.epochs)
    return dataclasses.replace(run, epochs=epochs)


def test_fail_on_catches_at_or_above() -> None:
    assert FailOn.ERROR.catches(diag("a", Severity.ERROR))
    assert not FailOn.ERROR.catches(diag("a", Severity.WARNING))
    assert FailOn.WARNING.catches(diag("a", Severity.WARNING))
    assert not FailOn.WARNING.catches(diag("a", Severity.INFO))


def test_final_loss_metrics(small_log: Path, make_log) -> None:
    run = open_run(small_log)
    val = final_loss(run, "val_loss")
    assert val is not None and val.metric == "val_loss" and val.epoch == 3 and val.step == 39
    assert val.value == pytest.approx(run.epochs[-1].metrics["val_loss"])
    step = final_loss(run, "loss")
    assert step is not None and step.epoch is None and step.step == 39
    assert final_loss(open_run(make_log("no-epochs.sqlite", epochs=0)), "val_loss") is None


@pytest.mark.parametrize(
    ("current", "base", "change"),
    [(1.1, 1.0, 0.1), (0.9, 1.0, -0.1), (0.0, 0.0, 0.0), (0.5, 0.0, math.inf),
     (math.nan, 1.0, math.inf), (math.inf, 1.0, math.inf)],
)
def test_relative_change(current: float, base: float, change: float) -> None:
    assert LossComparison(loss(current), loss(base), 0.1).change == pytest.approx(change)


def test_regression_threshold_is_exclusive() -> None:
    assert not LossComparison(loss(1.05), loss(1.0), 0.10).regressed
    assert LossComparison(loss(1.2), loss(1.0), 0.10).regressed
    assert not LossComparison(loss(1.2), loss(1.0), 0.25).regressed
    assert "+20.0%" in LossComparison(loss(1.2), loss(1.0), 0.10).describe()


def test_baseline_rules_new_known_resolved(small_log: Path) -> None:
    run = open_run(small_log)
    now = [diag("nan_loss", Severity.ERROR), diag("overfitting", Severity.ERROR),
           diag("underfitting", Severity.WARNING)]
    before = [diag("overfitting", Severity.ERROR), diag("vanishing_gradients", Severity.ERROR)]
    b = compare_baseline(run, now, run, before, FailOn.ERROR, 0.1)
    assert b.new_rules == ("nan_loss",)
    assert b.known_rules == ("overfitting",)
    assert b.resolved_rules == ("vanishing_gradients",)
    assert b.failed
    result = CheckResult(run, tuple(now), FailOn.ERROR, (), (), b)
    assert [d.rule for d in result.failing] == ["nan_loss"]
    assert not result.passed
    assert result.summary() == "failed: 1 new finding at or above error (nan_loss)"


def test_a_rule_the_baseline_had_below_the_threshold_is_new(small_log: Path) -> None:
    run = open_run(small_log)
    b = compare_baseline(run, [diag("overfitting", Severity.ERROR)], run,
                         [diag("overfitting", Severity.WARNING)], FailOn.ERROR, 0.1)
    assert b.new_rules == ("overfitting",)


def test_losses_fall_back_to_what_both_runs_have(small_log: Path) -> None:
    run = open_run(small_log)
    b = compare_baseline(run, [], only_train_loss(run), [], FailOn.ERROR, 0.1)
    assert b.loss is not None and b.loss.current.metric == "train_loss"
    assert b.loss.change == pytest.approx(0.0)
    no_epochs = dataclasses.replace(run, epochs=())
    b = compare_baseline(run, [], no_epochs, [], FailOn.ERROR, 0.1)
    assert b.loss is not None and b.loss.current.metric == "loss"


def test_a_diverged_baseline_is_not_compared(small_log: Path, make_log) -> None:
    run = open_run(small_log)
    diverged = open_run(make_log("diverged.sqlite", losses=[math.nan] * 40))
    b = compare_baseline(run, [], diverged, [], FailOn.ERROR, 0.1)
    assert b.loss is None and b.loss_note is not None and "not compared" in b.loss_note
    assert not b.failed


def test_passing_summary_counts_the_rest(small_log: Path) -> None:
    run = open_run(small_log)
    found = (diag("overfitting", Severity.WARNING), diag("underfitting", Severity.INFO))
    result = CheckResult(run, found, FailOn.ERROR, (), ())
    assert result.passed
    assert result.summary() == "passed: nothing at or above error; also found 1 warning, 1 info"
