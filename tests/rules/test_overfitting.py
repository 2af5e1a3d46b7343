"""overfitting: val worse while train better, judged per evaluation like early stopping."""

from __future__ import annotations

import math

import numpy as np

from netdoctor.rules import get_rule

from .factory import make_run, noisy_decay

RULE = get_rule("overfitting")


def check(run):
    return RULE.check(run, RULE.defaults())


def with_epochs(**series):
    """A run with one epoch record per value of the given metric lists (10 steps an epoch)."""
    n_epochs = len(next(iter(series.values())))
    epochs = [
        {k: v[i] for k, v in series.items() if not (isinstance(v[i], float) and math.isnan(v[i]))}
        for i in range(n_epochs)
    ]
    return make_run(noisy_decay(10 * n_epochs), epochs=epochs)


def test_val_loss_rising_while_train_falls():
    train = list(np.linspace(1.0, 0.05, 16))
    val = [1.0, 0.8, 0.65, 0.55, 0.5, 0.47, 0.45, 0.44, 0.43]  # best at epoch 8
    val += [0.45, 0.48, 0.52, 0.57, 0.6, 0.66, 0.7]
    run = with_epochs(train_loss=train, val_loss=val)
    (d,) = check(run)
    assert d.rule == "overfitting" and d.severity.value == "warning"
    assert d.evidence["criterion"] == "val_loss_rising"
    assert d.evidence["best_epoch"] == 8 and d.evidence["best_val_loss"] == 0.43
    assert d.evidence["last_val_loss"] == 0.7
    assert d.evidence["train_change_since_best"] < -0.5
    assert d.step == run.epochs[9].step
    assert [f.id for f in d.fixes] == [
        "early_stopping",
        "dropout",
        "weight_decay",
        "data_augmentation",
    ]
    assert "epoch 8" in d.fixes[0].text and "epoch 8" in d.message


def test_gap_widening_while_val_stalls():
    train = list(np.geomspace(0.9, 0.02, 20))
    val = [0.95, 0.8, 0.7, 0.62, 0.6] + [0.6 + 0.002 * ((-1) ** i) for i in range(15)]
    (d,) = check(with_epochs(train_loss=train, val_loss=val))
    assert d.evidence["criterion"] == "gap_widening"
    assert d.evidence["gap"] > 0.5


def test_accuracy_gap_without_val_loss_in_percent():
    train_acc = [50, 65, 75, 82, 88, 92, 95, 97, 98, 99, 99.5, 99.8]
    val_acc = [48, 60, 68, 72, 74, 75, 74, 73, 72, 72, 71, 71]
    (d,) = check(with_epochs(train_acc=train_acc, val_acc=val_acc))
    assert d.evidence["criterion"] == "accuracy_gap"
    assert d.evidence["best_epoch"] == 5
    assert d.evidence["acc_gap"] > 0.2


def test_wiggling_val_loss_that_keeps_improving_is_quiet():
    rng = np.random.default_rng(0)
    for seed in range(5):
        trend = 0.3 + 0.7 * np.exp(-np.arange(30) / 8)
        val = list(trend * np.exp(rng.normal(0, 0.04, 30)))
        train = list(trend * 0.95)
        assert check(with_epochs(train_loss=train, val_loss=val)) == [], seed


def test_noisy_plateau_with_slowly_falling_train_is_quiet():
    rng = np.random.default_rng(1)
    val = list(0.5 * np.exp(rng.normal(0, 0.03, 25)))
    train = list(np.linspace(0.48, 0.44, 25))
    assert check(with_epochs(train_loss=train, val_loss=val)) == []


def test_dropout_run_where_train_is_above_val_is_quiet():
    val = list(np.geomspace(1.0, 0.2, 15))
    train = [v * 1.3 for v in val]
    assert (
        check(with_epochs(train_loss=train, val_loss=val, train_acc=[0.5] * 15, val_acc=[0.6] * 15))
        == []
    )


def test_val_rising_with_train_rising_is_not_overfitting():
    val = [1.0, 0.8, 0.7, 0.75, 0.9, 1.2, 1.5]
    train = [1.0, 0.8, 0.7, 0.74, 0.88, 1.1, 1.4]  # diverging: lr, not overfitting
    assert check(with_epochs(train_loss=train, val_loss=val)) == []


def test_no_validation_data_and_too_few_epochs_are_quiet():
    assert check(make_run(noisy_decay(200))) == []
    assert check(with_epochs(train_loss=[1.0, 0.5, 0.3], val_loss=[1.0, 0.9, 1.2])) == []


def test_train_loss_from_steps_when_epochs_do_not_report_it():
    val = [1.0, 0.7, 0.5, 0.45, 0.5, 0.6, 0.7, 0.8]
    run = make_run(noisy_decay(80, noise=0.01), epochs=[{"val_loss": v} for v in val])
    (d,) = check(run)
    assert d.evidence["best_epoch"] == 3 and d.evidence["last_train_loss"] < 0.6


def test_nan_val_entries_are_skipped():
    val = [1.0, 0.7, math.nan, 0.5, 0.45, 0.5, 0.6, 0.7, 0.8]
    train = list(np.linspace(1.0, 0.1, 9))
    (d,) = check(with_epochs(train_loss=train, val_loss=val))
    assert d.evidence["best_epoch"] == 4


def test_tiny_rises_on_a_solved_task_are_quiet():
    val = [0.3, 1e-2, 1e-4, 1e-6, 2e-6, 3e-6, 4e-6, 5e-6]
    train = [0.9, 1e-1, 1e-3, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9]
    assert check(with_epochs(train_loss=train, val_loss=val)) == []


def test_val_jumping_around_a_lucky_low_is_instability_not_overfitting():
    # a head trained with too high a learning rate: val below train at its "best" epoch,
    # then jumping up and down; the train loss wanders down meanwhile
    val = [11.56, 3.33, 5.77, 5.52, 10.79, 6.70, 5.29, 6.33]
    train = [8.80, 8.68, 7.32, 7.03, 4.55, 6.80, 7.06, 6.15]
    assert check(with_epochs(train_loss=train, val_loss=val)) == []


def test_val_below_train_at_the_end_is_not_overfitting():
    val = [1.0, 0.6, 0.5, 0.55, 0.6, 0.66, 0.7]  # rising from its best ...
    train = [1.5, 1.2, 1.1, 0.95, 0.9, 0.85, 0.8]  # ... but still below train (dropout on)
    assert check(with_epochs(train_loss=train, val_loss=val)) == []
    # the same val curve above a lower train loss is overfitting
    low = [t / 3 for t in train]
    assert [d.rule for d in check(with_epochs(train_loss=low, val_loss=val))] == ["overfitting"]


def test_message_says_what_the_rise_is_measured_against():
    train = list(np.linspace(1.0, 0.05, 16))
    val = [1.0, 0.8, 0.65, 0.55, 0.5, 0.47, 0.45, 0.44, 0.43]
    val += [0.45, 0.48, 0.52, 0.57, 0.6, 0.66, 0.7]
    (d,) = check(with_epochs(train_loss=train, val_loss=val))
    # median of the last three (0.6, 0.66, 0.7) is 0.66, 53 % above the best 0.43
    assert "the median of the last 3 evaluations, 0.66, is 53 % above that best" in d.message
