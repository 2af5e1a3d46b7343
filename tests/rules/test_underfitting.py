"""underfitting: the train loss stays near chance; quiet without a yardstick."""

from __future__ import annotations

import math

import numpy as np

from netdoctor.rules import get_rule

from .factory import Layer, make_run, mlp, noisy_decay

RULE = get_rule("underfitting")
LN10 = math.log(10)


def check(run):
    return RULE.check(run, RULE.defaults())


def flat(n: int = 300, level: float = LN10, noise: float = 0.03, seed: int = 0) -> np.ndarray:
    return level * np.exp(np.random.default_rng(seed).normal(0, noise, n))


def test_flat_at_chance_with_num_classes():
    (d,) = check(make_run(flat(), task={"num_classes": 10}))
    assert d.rule == "underfitting" and d.severity.value == "warning"
    assert d.evidence["chance_loss"] == LN10 and d.evidence["trend"] == "flat"
    assert 0.95 < d.evidence["ratio_to_chance"] < 1.05
    assert d.step == 0
    assert [f.id for f in d.fixes] == ["more_capacity", "raise_lr", "adam", "normalize_inputs"]
    assert "ln(10)" in d.message


def test_chance_inferred_from_the_logits_and_the_first_loss():
    (d,) = check(make_run(flat(), layers=mlp(3, n_out=10)))
    assert d.evidence["num_classes"] == 10 and "matching the initial loss" in d.message


def test_first_loss_far_from_ln_c_means_no_yardstick():
    assert check(make_run(flat(level=7.0), layers=mlp(3, n_out=10))) == []


def test_binary_single_logit_uses_ln2():
    (d,) = check(make_run(flat(level=math.log(2)), layers=mlp(3, n_out=1)))
    assert d.evidence["chance_loss"] == math.log(2) and d.evidence["num_classes"] == 2


def test_finished_run_still_falling_but_barely_below_chance():
    n = 300
    loss = LN10 * (1 - 0.09 * (np.arange(n) / n) ** 2)  # still falling, ends at 91 % of chance
    (d,) = check(make_run(loss, task={"num_classes": 10}))
    assert d.evidence["trend"] == "falling"
    assert [f.id for f in d.fixes][:2] == ["train_longer", "raise_lr"]


def test_run_in_progress_that_is_still_falling_is_left_alone():
    n = 300
    loss = LN10 * (1 - 0.09 * (np.arange(n) / n) ** 2)
    run = make_run(loss, task={"num_classes": 10}, status="running", writer_alive=True)
    assert check(run) == []


def test_flat_run_with_spikes_says_lower_the_learning_rate():
    loss = flat()
    loss[[40, 120, 200]] = 2.5 * LN10
    (d,) = check(make_run(loss, task={"num_classes": 10}))
    assert d.fixes[0].id == "lower_lr" and d.evidence["loss_spike_step"] == 40
    assert "raise" not in d.message


def test_regression_needs_a_stated_chance_loss():
    loss = flat(level=0.9)
    assert check(make_run(loss, layers=[Layer("fc", out_shape=(32, 1), weight=(1, 8))])) == []
    (d,) = check(make_run(loss, task={"chance_loss": 1.0}))
    assert d.evidence["chance_source"] == "the task's chance loss"


def test_learning_runs_are_quiet():
    for seed in range(3):
        loss = noisy_decay(400, start=LN10, floor=0.3, seed=seed)
        assert check(make_run(loss, task={"num_classes": 10}, layers=mlp(3))) == []


def test_slow_but_real_progress_is_quiet():
    loss = noisy_decay(400, start=LN10, floor=1.2, tau=150)  # ends at ~60 % of chance
    assert check(make_run(loss, task={"num_classes": 10})) == []


def test_train_accuracy_near_chance():
    loss = noisy_decay(300, start=1.0, floor=0.8)  # no yardstick from the loss
    epochs = [{"train_acc": a} for a in (0.11, 0.1, 0.12, 0.11, 0.1)]
    (d,) = check(make_run(loss, epochs=epochs, task={"num_classes": 10}))
    assert d.evidence["criterion"] == "accuracy_near_chance"
    assert d.evidence["chance_acc"] == 0.1


def test_short_runs_steps_without_loss_and_nan_runs_are_quiet():
    assert check(make_run(flat(n=12), task={"num_classes": 10})) == []
    assert check(make_run(None, n_steps=300, task={"num_classes": 10})) == []
    loss = flat()
    loss[250:] = math.nan
    assert check(make_run(loss, task={"num_classes": 10})) == []


def test_steps_without_loss_are_skipped():
    loss = flat()
    (d,) = check(make_run(loss, task={"num_classes": 10}, no_loss=range(0, 300, 2)))
    assert d.evidence["steps"] == 150


def test_a_run_already_on_adam_is_not_told_to_try_adam():
    run = make_run(flat(), task={"num_classes": 10})
    run.meta["optimizer"] = {"class": "AdamW", "groups": [{"lr": 1e-3}]}
    (d,) = check(run)
    assert "adam" not in [f.id for f in d.fixes] and "Adam" not in d.message
