"""run_rules: selection, thresholds, a failing rule, and the cause-first order."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from netdoctor.diagnosis import Diagnosis, Severity
from netdoctor.errors import ConfigError
from netdoctor.rules import RuleConfig, all_rules, registry, run_rules
from netdoctor.rules.engine import sort_diagnoses

from .factory import make_run, mlp, noisy_decay
from .test_nonfinite import exploded_run
from .test_underfitting import flat


def test_select_and_ignore():
    run = exploded_run()
    assert [d.rule for d in run_rules(run, RuleConfig(select=frozenset({"nan_loss"})))] == [
        "nan_loss"
    ]
    assert [d.rule for d in run_rules(run, RuleConfig(ignore=frozenset({"nan_loss"})))] == [
        "exploding_gradients"
    ]
    assert run_rules(run, RuleConfig(select=frozenset())) == []


def test_unknown_ids_and_threshold_names_in_a_config_object_are_errors():
    with pytest.raises(ConfigError, match="unknown rule id 'nope'"):
        run_rules(make_run([1.0]), RuleConfig(ignore=frozenset({"nope"})))
    bad = RuleConfig(thresholds={"overfitting": {"patiense": 2}})
    with pytest.raises(ConfigError, match="unknown threshold 'patiense' for rule overfitting"):
        run_rules(make_run([1.0]), bad)


def test_threshold_override_reaches_the_rule():
    run = make_run(flat(level=0.7 * math.log(10)), task={"num_classes": 10})
    only = frozenset({"underfitting"})  # flat from step 0 is loss_not_decreasing's finding too
    assert run_rules(run, RuleConfig(select=only)) == []  # 70 % of chance: below the default 0.8
    config = RuleConfig(select=only, thresholds={"underfitting": {"near_chance": 0.6}})
    assert [d.rule for d in run_rules(run, config)] == ["underfitting"]


def test_a_failing_rule_becomes_an_info_diagnosis(monkeypatch):
    def boom(run, th):
        raise ValueError("bad shape (3,)")

    broken = dataclasses.replace(registry.all_rules()[2], check=boom)
    rules = tuple(broken if r.id == broken.id else r for r in registry.all_rules())
    monkeypatch.setattr(registry, "_RULES", rules)
    found = run_rules(exploded_run())
    assert [d.rule for d in found] == ["exploding_gradients", "nan_loss", broken.id]
    info = found[-1]
    assert info.severity is Severity.INFO and info.step is None
    assert "ValueError: bad shape (3,)" in info.message
    assert info.evidence == {"exception": "ValueError", "detail": "bad shape (3,)"}


def _d(rule: str, severity: Severity, step: int | None) -> Diagnosis:
    return Diagnosis(rule, severity, step, None, rule)


def test_sort_puts_causes_first_then_severity_then_step():
    found = [
        _d("underfitting", Severity.WARNING, 0),
        _d("nan_loss", Severity.ERROR, 170),
        _d("overfitting", Severity.WARNING, 5),
        _d("vanishing_gradients", Severity.WARNING, 40),
        _d("exploding_gradients", Severity.ERROR, 150),
    ]
    assert [d.rule for d in sort_diagnoses(found)] == [
        "exploding_gradients",
        "nan_loss",
        "vanishing_gradients",
        "underfitting",
        "overfitting",
    ]


def test_consequence_without_its_cause_sorts_on_its_own():
    found = [_d("overfitting", Severity.WARNING, 5), _d("nan_loss", Severity.ERROR, 170)]
    assert [d.rule for d in sort_diagnoses(found)] == ["nan_loss", "overfitting"]


def test_healthy_run_gets_nothing_from_any_rule():
    run = make_run(noisy_decay(300), epochs=[{"val_loss": v} for v in (2.0, 1.5, 1.2, 1.0, 0.9)])
    assert run_rules(run) == []
    for rule in all_rules():  # each rule on its own, whatever the registry holds
        assert rule.check(run, rule.defaults()) == [], rule.id


def test_empty_run_is_quiet():
    assert run_rules(make_run(None, n_steps=0)) == []


def test_a_failed_rule_note_is_not_treated_as_a_cause():
    found = [_d("nan_loss", Severity.ERROR, 170), _d("exploding_gradients", Severity.INFO, None)]
    assert [d.rule for d in sort_diagnoses(found)] == ["nan_loss", "exploding_gradients"]


def test_an_early_explosion_is_listed_before_what_it_left_behind():
    # IRNN without clipping: the step-1 update throws the weights, the units die, the loss
    # stays far above where it started; vanishing and underfitting follow, with its advice
    n, m = 128, 20
    grad = np.exp(np.random.default_rng(0).normal(0, 0.2, n)) * 50
    grad[1] = 6e9
    loss = np.concatenate(([1.415, 3.5e7], np.geomspace(1.4e4, 93, n - 2)))
    he = np.sqrt(2 / 64)
    weight, update = np.full((m, 3), he), np.full((m, 3), 1e-3 * he)
    weight[1:, 0], update[1, 0], update[2:, 0] = 5e6 * he, 5e6 * he, 0.0
    rms = np.tile([0.0, 1e-1, 1.0], (m, 1))
    rms[:2, 0] = 1e4
    run = make_run(
        loss,
        grad_norm=grad,
        lr=0.01,
        layers=mlp(3),
        layer_rms=rms,
        weight_rms=weight,
        update_rms=update,
        sample_steps=range(m),
        task={"chance_loss": 0.164},
    )
    found = run_rules(run)
    # the loss never got back below its first value: loss_not_decreasing follows too
    assert [d.rule for d in found] == [
        "exploding_gradients",
        "vanishing_gradients",
        "loss_not_decreasing",
        "underfitting",
    ]
    boom, *after = found
    assert boom.step == 1 and boom.layer == "layers.0" and "spike" in boom.evidence["criteria"]
    for d in after:
        assert d.evidence["caused_by"] in (
            "exploding_gradients",
            "vanishing_gradients",
            "loss_not_decreasing",
        )
        ids = [f.id for f in d.fixes]
        assert ids[0] == "lower_lr" and "raise_lr" not in ids and "train_longer" not in ids
