"""symmetric_weights: units that start identical and stay so; told first, before what follows."""

from __future__ import annotations

import math

import numpy as np

from netdoctor.rules import get_rule, run_rules

from .factory import Layer, act, make_run, mlp
from .real_loops import HEALTHY, real
from .test_underfitting import flat

RULE = get_rule("symmetric_weights")


def check(run):
    return RULE.check(run, RULE.defaults())


def test_units_identical_from_start_to_end():
    spread = np.tile([0.0, 0.0, 1.0], (20, 1))  # two hidden layers constant, the head random
    (d,) = check(make_run(flat(200), layers=mlp(3), unit_spread=spread))
    assert d.rule == "symmetric_weights" and d.severity.value == "warning" and d.step == 0
    assert d.layer == "layers.0" and d.evidence["symmetric_params"] == [
        "layers.0.weight",
        "layers.2.weight",
    ]
    assert d.evidence["units"] == 64 and d.evidence["zero_init"] is False
    assert [f.id for f in d.fixes] == ["break_symmetry", "he_init", "xavier_init"]
    assert "kaiming_normal_" in d.fixes[0].text and "one constant" in d.message


def test_all_zero_weights_are_named_so():
    spread = np.zeros((20, 3))
    weight = np.zeros((20, 3))
    (d,) = check(make_run(flat(200), layers=mlp(3), unit_spread=spread, weight_rms=weight))
    assert d.evidence["zero_init"] is True and "all zeros" in d.message


def test_tanh_layers_get_xavier_first():
    spread = np.tile([0.0, 1.0, 1.0], (20, 1))
    layers = mlp(3, activation="Tanh", family="bounded")
    (d,) = check(make_run(flat(200), layers=layers, unit_spread=spread))
    assert [f.id for f in d.fixes] == ["break_symmetry", "xavier_init", "he_init"]


def test_symmetry_that_breaks_during_training_is_quiet():
    spread = np.tile(np.linspace(0.0, 0.6, 20)[:, None], (1, 3))  # dropout breaks the tie
    assert check(make_run(flat(200), layers=mlp(3), unit_spread=spread)) == []
    late = np.tile(np.r_[1.0, np.zeros(19)][:, None], (1, 3))  # random at first: not init
    assert check(make_run(flat(200), layers=mlp(3), unit_spread=late)) == []


def test_edges_are_quiet():
    nan = make_run(flat(200), layers=mlp(3), unit_spread=math.nan)  # a schema-1 log
    assert check(nan) == []
    few = make_run(flat(200), layers=mlp(3), unit_spread=0.0, sample_steps=[0, 10])
    assert check(few) == []
    assert check(make_run(flat(200), layers=[act("relu")])) == []  # no weights at all


def test_a_single_layer():
    layers = [Layer("fc", weight=(10, 64))]
    (d,) = check(make_run(flat(200), layers=layers, unit_spread=0.0))
    assert d.layer == "fc"


def test_it_comes_before_what_it_causes():
    found = run_rules(
        make_run(flat(200), layers=mlp(3), unit_spread=np.zeros((20, 3)), task={"num_classes": 10})
    )
    assert found[0].rule == "symmetric_weights"
    assert all(d.evidence.get("caused_by") for d in found[1:])


# ---- real runs ---------------------------------------------------------------------------------
def test_zero_init_everywhere_is_told_first():
    found = run_rules(real("zero_init"))
    d = found[0]
    assert d.rule == "symmetric_weights" and d.layer == "0" and d.evidence["zero_init"] is True
    assert d.evidence["zero_gradient"] is True and "no gradient" in d.message
    rules = [x.rule for x in found]
    assert {"vanishing_gradients", "loss_not_decreasing", "underfitting"} <= set(rules)
    for after in found[1:]:  # the vanishing gradients and the flat loss are what it did
        assert after.evidence.get("caused_by"), after.rule


def test_constant_init_with_sgd():
    found = run_rules(real("constant_init"))
    assert found[0].rule == "symmetric_weights" and found[0].evidence["zero_init"] is False
    assert "lr_too_high" not in [d.rule for d in found]  # lockstep units, not the rate


def test_healthy_real_runs_are_quiet():
    for name in HEALTHY:
        assert check(real(name)) == [], name
