"""The public interface: rule records, documentation, the fix catalogue, import hygiene."""

from __future__ import annotations

import subprocess
import sys

import pytest

import netdoctor.rules as rules
from netdoctor.diagnosis import Fix, Severity
from netdoctor.errors import ConfigError

DESIGN_FIX_IDS = {
    "he_init",
    "xavier_init",
    "batchnorm",
    "grad_clipping",
    "lr_decay",
    "lower_lr",
    "raise_lr",
    "early_stopping",
    "dropout",
    "weight_decay",
    "relu_activation",
    "leaky_relu",
    "residual_connections",
    "normalize_inputs",
    "stable_loss",
    "adam",
    "more_capacity",
    "train_longer",
    "data_augmentation",
    "unfreeze_parameters",
    "break_symmetry",
}


def test_public_names():
    for name in (
        "Rule",
        "Threshold",
        "RuleDoc",
        "all_rules",
        "get_rule",
        "RuleConfig",
        "load_config",
        "run_rules",
        "FIXES",
        "fix",
    ):
        assert hasattr(rules, name), name


def test_rules_in_documented_order_with_their_severities():
    assert [(r.id, r.severity) for r in rules.all_rules()] == [
        ("nan_loss", Severity.ERROR),
        ("exploding_gradients", Severity.ERROR),
        ("vanishing_gradients", Severity.WARNING),
        ("dead_relu", Severity.WARNING),
        ("saturated_activations", Severity.WARNING),
        ("overfitting", Severity.WARNING),
        ("underfitting", Severity.WARNING),
        ("lr_too_high", Severity.WARNING),
        ("lr_too_low", Severity.WARNING),
        ("loss_not_decreasing", Severity.WARNING),
        ("frozen_parameters", Severity.WARNING),
        ("symmetric_weights", Severity.WARNING),
        ("poor_init", Severity.WARNING),
        ("unnormalized_inputs", Severity.WARNING),
        ("double_softmax", Severity.ERROR),
        ("rank_nonfinite", Severity.ERROR),
        ("straggler_rank", Severity.WARNING),
        ("replicas_out_of_sync", Severity.ERROR),
        ("rank_failed", Severity.ERROR),
    ]


@pytest.mark.parametrize("rule", rules.all_rules(), ids=lambda r: r.id)
def test_every_rule_is_documented_and_cites_its_thresholds(rule):
    assert rule.title and rule.check
    for section in (rule.doc.what, rule.doc.why, rule.doc.how_to_fix, rule.doc.example):
        assert len(section) > 40
    assert rule.thresholds and len({t.name for t in rule.thresholds}) == len(rule.thresholds)
    for t in rule.thresholds:
        assert isinstance(t.default, float) and t.description and t.source
    assert set(rule.fixes) <= set(rules.FIXES)


def test_get_rule_names_the_known_ids():
    assert rules.get_rule("overfitting").id == "overfitting"
    with pytest.raises(ConfigError, match=r"unknown rule id 'x' \(known: nan_loss, exploding"):
        rules.get_rule("x")


#: Fix ids added after design.md for the rules of distributed runs (issue 7).
DISTRIBUTED_FIX_IDS = {"balance_ranks", "sync_replicas"}
#: Fix ids added after design.md for netdoctor.checkup (issue 3).
CHECKUP_FIX_IDS = {"check_targets"}


def test_fix_catalogue_covers_design_and_shows_code():
    assert set(rules.FIXES) == DESIGN_FIX_IDS | DISTRIBUTED_FIX_IDS | CHECKUP_FIX_IDS
    for fix_id, text in rules.FIXES.items():
        assert "(" in text and ")" in text, fix_id  # a one-line snippet
    assert rules.fix("he_init") == Fix("he_init", rules.FIXES["he_init"])
    assert "kaiming_normal_" in rules.fix("he_init").text
    assert rules.fix("dropout", "p=0.5 here").text == "p=0.5 here"
    with pytest.raises(KeyError, match="unknown fix id"):
        rules.fix("magic")


def test_rules_import_neither_torch_nor_textual():
    code = (
        "import sys, netdoctor.rules; "
        "print(sorted(m for m in ('torch', 'textual') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
