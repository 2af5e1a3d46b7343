"""Each built-in demo trains for real under watch() and gets exactly the diagnosis it shows."""

from __future__ import annotations

from netdoctor.capture.demos import run_demo
from netdoctor.diagnosis import Severity
from netdoctor.rules import run_rules
from netdoctor.runlog import open_run

LOUD = (Severity.ERROR, Severity.WARNING)


def _diagnose(name, tmp_path):
    log = tmp_path / f"{name}.sqlite"
    run_demo(name, log)
    run = open_run(log)
    return run, [d for d in run_rules(run) if d.severity in LOUD]


def test_healthy_demo_is_quiet(tmp_path):
    _, found = _diagnose("healthy", tmp_path)
    assert found == []


def test_exploding_demo(tmp_path):
    run, found = _diagnose("exploding", tmp_path)
    # its bug is an SGD learning rate past the stability limit: lr_too_high is the root cause
    assert [d.rule for d in found[:2]] == ["lr_too_high", "exploding_gradients"]
    boom = found[1]
    assert boom.severity is Severity.ERROR and boom.evidence["caused_by"] == "lr_too_high"
    first_bad = run.events_of("nonfinite")[0].step
    assert found[0].step < first_bad and boom.step < first_bad  # found while still finite
    assert found[0].fixes[0].id == "lower_lr"
    assert boom.fixes and boom.fixes[0].id in {"grad_clipping", "lower_lr"}
    rules = [d.rule for d in found]
    assert "nan_loss" in rules and rules.index("nan_loss") > 1  # the consequence comes after


def test_vanishing_demo(tmp_path):
    _, found = _diagnose("vanishing", tmp_path)
    assert found[0].rule == "vanishing_gradients"
    assert found[0].layer == "0"  # the first Linear, where gradients are smallest
    assert found[0].fixes[0].id == "relu_activation"  # sigmoid is the cause here


def test_nan_demo(tmp_path):
    _, found = _diagnose("nan", tmp_path)
    assert found[0].rule == "nan_loss"
    assert found[0].step == 1
    assert found[0].fixes[0].id == "stable_loss"


def test_overfitting_demo(tmp_path):
    run, found = _diagnose("overfitting", tmp_path)
    assert [d.rule for d in found] == ["overfitting"]
    epochs, _, val = run.epoch_series("val_loss")
    best = int(epochs[val.argmin()])
    assert found[0].evidence["best_epoch"] == best
    assert found[0].fixes[0].id == "early_stopping"


def test_underfitting_demo(tmp_path):
    _, found = _diagnose("underfitting", tmp_path)
    assert [d.rule for d in found] == ["underfitting"]
