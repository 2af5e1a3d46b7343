"""loss_not_decreasing: the loss never gets 5 % below where it started; a consequence when a
more specific rule explains it, the root when nothing does."""

from __future__ import annotations

import math

import numpy as np

from netdoctor.rules import get_rule, run_rules

from .factory import make_run, mlp, noisy_decay
from .real_loops import HEALTHY, real
from .test_underfitting import flat

RULE = get_rule("loss_not_decreasing")
HE = math.sqrt(2 / 64)


def check(run):
    return RULE.check(run, RULE.defaults())


def test_a_flat_loss():
    (d,) = check(make_run(flat(200, level=3.0)))
    assert d.rule == "loss_not_decreasing" and d.severity.value == "warning" and d.step == 0
    assert d.evidence["loss_progress"] < 0.05 and d.evidence["block_steps"] == 20
    assert d.fixes and "fell only" in d.message and ": " in d.message


def test_a_falling_loss_is_quiet():
    assert check(make_run(noisy_decay(200))) == []
    slow = 3.0 * (1 - 0.08 * np.arange(200) / 200)  # 8 % in the whole run: slow, but moving
    assert check(make_run(slow)) == []


def test_a_loss_that_creeps_up_never_went_below_its_start():
    (d,) = check(make_run(np.linspace(1.0, 1.3, 100)))
    assert d.evidence["loss_progress"] < 0 and "never went below" in d.message


def test_a_rising_loss_made_no_progress_either():
    (d,) = check(make_run(np.linspace(1.0, 3.0, 100)))  # a consequence of lr_too_high & co
    assert d.evidence["loss_progress"] < 0


def test_edges_are_quiet():
    assert check(make_run(flat(20))) == []  # too few steps
    assert check(make_run(-flat(200))) == []  # a loss that can be negative: no share of it
    assert check(make_run(None, n_steps=200)) == []  # no loss given
    assert check(make_run(flat(200), layers=mlp(1), sample_steps=[])) != []  # no samples needed


def test_a_run_that_ends_in_nan_is_left_to_nan_loss():
    loss = np.concatenate([flat(100, level=2.0), [math.nan] * 50])
    assert check(make_run(loss)) == []


def test_a_model_that_already_knew_the_task():
    run = make_run(flat(200, level=0.2), task={"num_classes": 10})
    assert check(run) == []  # 9 % of chance from the first step: resumed, nothing to learn


def test_a_live_run_still_warming_up_is_left_alone():
    lr = np.linspace(1e-6, 1e-3, 200)
    assert check(make_run(flat(200), lr=lr, status="running", writer_alive=True)) == []
    assert check(make_run(flat(200), lr=lr)) != []


def test_the_advice_weighs_the_same_evidence_as_underfitting():
    run = make_run(flat(200), layers=mlp(3), update_rms=1e-5 * HE, task={"num_classes": 10})
    found = {d.rule: d for d in run_rules(run)}
    assert found["loss_not_decreasing"].fixes[0].id == "raise_lr"
    assert found["underfitting"].fixes[0].id == "raise_lr"
    assert [d.rule for d in run_rules(run)][:2] == ["lr_too_low", "loss_not_decreasing"]
    assert found["loss_not_decreasing"].evidence["cause"] == "tiny_updates"


# ---- real runs ---------------------------------------------------------------------------------
def test_labels_apart_from_their_inputs_nothing_else_explains_it():
    found = run_rules(real("shuffled_labels"))
    assert found[0].rule == "loss_not_decreasing" and "caused_by" not in found[0].evidence
    assert {d.rule for d in found} <= {"loss_not_decreasing", "underfitting"}


def test_zero_grad_between_backward_and_step_is_a_frozen_run():
    found = run_rules(real("zero_grad_late"))
    rules = [d.rule for d in found]
    assert rules[:2] == ["frozen_parameters", "loss_not_decreasing"]
    assert found[1].evidence["caused_by"] == "frozen_parameters"


def test_an_optimizer_of_another_model_instance():
    found = run_rules(real("other_instance"))
    (d,) = [d for d in found if d.rule == "loss_not_decreasing"]
    assert d.evidence["caused_by"] == "frozen_parameters"


def test_a_learning_rate_typo_is_lr_too_low_first():
    found = run_rules(real("sgd_lr_typo"))
    (d,) = [d for d in found if d.rule == "loss_not_decreasing"]
    assert d.evidence["caused_by"] == "lr_too_low" and d.fixes[0].id == "raise_lr"


def test_zero_init_is_symmetric_weights_first():
    found = run_rules(real("zero_init"))
    assert found[0].rule == "symmetric_weights"
    (d,) = [d for d in found if d.rule == "loss_not_decreasing"]
    assert d.evidence["caused_by"]


def test_healthy_real_runs_are_quiet():
    for name in HEALTHY:
        assert check(real(name)) == [], name
