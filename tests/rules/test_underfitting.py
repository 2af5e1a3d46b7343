"""underfitting: the train loss stays near chance; quiet without a yardstick."""

from __future__ import annotations

import math

import numpy as np

from netdoctor.rules import get_rule
from netdoctor.runlog.schema import ActStat

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
    falling = noisy_decay(300, start=7.0, floor=4.0, noise=0.03)  # learns, no chance known
    assert check(make_run(falling, layers=mlp(3, n_out=10))) == []
    # flat without any progress, but with ten outputs the spread of its predictions is not
    # known: a converged model cannot be told from one that never learnt, so it stays quiet
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
    for at in (40, 120, 200):  # the run needs a few steps to recover from each
        loss[at : at + 3] = 2.5 * LN10
    (d,) = check(make_run(loss, task={"num_classes": 10}))
    assert d.fixes[0].id == "lower_lr" and 40 <= d.evidence["loss_spike_step"] <= 42
    assert d.evidence["cause"] == "unstable"
    assert "raise" not in d.message


def test_one_heavy_tailed_batch_is_not_instability():
    # small-batch regression losses: a batch three times the median is noise, not a high lr
    rng = np.random.default_rng(4)
    loss = rng.chisquare(8, 300) / 8
    loss[150] = 3.0
    (d,) = check(make_run(loss, task={"chance_loss": 1.0}))
    assert d.fixes[0].id != "lower_lr" and d.evidence["cause"] != "unstable"


REGRESSION = [Layer("fc", out_shape=(32, 1), weight=(1, 8))]


def test_regression_without_a_chance_loss_that_never_learns():
    # standardised targets, no chance_loss given: the train and val loss never leave their start
    epochs = [{"train_loss": 0.979, "val_loss": 1.08}] * 12
    (d,) = check(
        low_spread(make_run(flat(level=0.98, noise=0.3), layers=REGRESSION, epochs=epochs))
    )
    assert d.evidence["criterion"] == "no_progress" and d.step == 0
    assert d.evidence["chance_loss"] is None and d.evidence["levels"] == 12
    assert "learnt nothing" in d.message


def test_regression_whose_predictions_collapsed_to_a_constant():
    # weight decay crushed the weights: the loss fell 9 % (to the variance of the targets) by
    # predicting their mean for every input; the single output no longer varies with the input
    loss = np.concatenate((flat(level=1.09, noise=0.1, n=10), flat(level=1.0, noise=0.3, n=150)))
    epochs = [{"train_loss": 1.0, "val_loss": 0.996}] * 8
    collapsed = make_run(loss, layers=REGRESSION, epochs=epochs)
    collapsed.act[:, 0, ActStat.STD] = 1e-7
    (d,) = check(collapsed)
    assert d.evidence["criterion"] == "no_progress" and d.evidence["output_spread"] < 1e-6
    assert "predicts one constant" in d.message
    assert check(make_run(loss, layers=REGRESSION, epochs=epochs)) == []  # it still varies


def low_spread(run):
    """Predictions that barely vary with the input: what an untrained regression outputs."""
    run.act[:, 0, ActStat.STD] = 0.05
    return run


def test_regression_without_a_chance_loss_that_learns_is_quiet():
    for seed in range(3):
        loss = noisy_decay(300, start=1.2, floor=0.8, seed=seed, noise=0.3)  # R² of only 0.2
        assert check(low_spread(make_run(loss, layers=REGRESSION))) == [], seed
        epochs = [{"train_loss": 0.98, "val_loss": v} for v in np.linspace(1.1, 0.9, 10)]
        flat_train = flat(level=0.98, noise=0.3, seed=seed)
        run = low_spread(make_run(flat_train, layers=REGRESSION, epochs=epochs))
        assert check(run) == [], seed  # its val loss improved
    running = make_run(flat(level=0.9), layers=REGRESSION, status="running", writer_alive=True)
    assert check(low_spread(running)) == []
    # flat, but its predictions vary like a trained model's: it had converged before this run
    converged = make_run(
        flat(level=0.2, noise=0.3), layers=REGRESSION, epochs=[{"train_loss": 0.2}] * 5
    )
    converged.act[:, 0, ActStat.STD] = 0.9
    assert check(converged) == []


def test_regression_with_a_stated_chance_loss():
    (d,) = check(make_run(flat(level=0.9), task={"chance_loss": 1.0}))
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


# ---- which fixes lead: the evidence decides -----------------------------------------------------
def _ids(d):
    return [f.id for f in d.fixes]


def test_tiny_updates_put_raising_the_learning_rate_first():
    # SGD lr=1e-5: every update is 2e-5 of the weight; cs231n's healthy ratio is ~1e-3
    layers = mlp(3)
    run = make_run(flat(), task={"num_classes": 10}, layers=layers, update_rms=2e-5 * 0.18)
    (d,) = check(run)
    assert _ids(d)[0] == "raise_lr" and d.evidence["cause"] == "tiny_updates"
    assert d.evidence["update_ratio"] < 1e-4 and "raise" in d.message


def test_normal_updates_keep_capacity_first():
    run = make_run(flat(), task={"num_classes": 10}, layers=mlp(3), update_rms=3e-3 * 0.18)
    (d,) = check(run)
    assert _ids(d)[0] == "more_capacity" and d.evidence["cause"] == "capacity"


def test_strong_weight_decay_leads_the_fixes():
    adam = {"class": "Adam", "groups": [{"lr": 3e-3, "weight_decay": 1.0}]}
    run = make_run(flat(level=0.98, noise=0.3), task={"chance_loss": 1.0}, optimizer=adam)
    (d,) = check(run)
    assert _ids(d)[0] == "weight_decay" and "lower the weight decay" in d.fixes[0].text
    assert d.evidence["weight_decay"] == 1.0 and "weight decay" in d.message
    assert "lower_lr" not in _ids(d)  # batch noise is not instability


def test_usual_weight_decay_does_not_lead():
    for optimizer in (
        {"class": "SGD", "groups": [{"lr": 0.1, "weight_decay": 5e-4}]},
        {"class": "AdamW", "groups": [{"lr": 1e-3, "weight_decay": 0.05}]},
    ):
        run = make_run(flat(), task={"num_classes": 10}, optimizer=optimizer)
        (d,) = check(run)
        assert _ids(d)[0] != "weight_decay", optimizer
    strong = {"class": "AdamW", "groups": [{"lr": 3e-3, "weight_decay": 1.0}]}
    (d,) = check(make_run(flat(), task={"num_classes": 10}, optimizer=strong))
    assert _ids(d)[0] == "weight_decay" and d.evidence["weight_decay_decoupled"] is True


def test_label_noise_with_accuracy_above_chance_is_quiet():
    # logistic regression, 35 % of labels flipped: the best loss is 93 % of ln 2, accuracy 0.65
    loss = noisy_decay(320, start=0.75, floor=0.665, tau=15, noise=0.04)
    epochs = [{"train_loss": 0.665, "train_acc": 0.63, "val_acc": 0.65}] * 4
    run = make_run(loss, task={"num_classes": 2}, epochs=epochs)
    assert check(run) == []
    chance_acc = [{"train_loss": 0.69, "train_acc": 0.52, "val_acc": 0.5}] * 4
    (d,) = check(make_run(loss, task={"num_classes": 2}, epochs=chance_acc))
    assert d.rule == "underfitting"


def test_loss_above_chance_is_underfitting_however_accurate():
    loss = flat(level=2.5 * math.log(4))  # confident mistakes: the loss is worse than guessing
    epochs = [{"val_acc": 0.55}] * 4
    (d,) = check(make_run(loss, task={"num_classes": 4}, epochs=epochs))
    assert d.evidence["ratio_to_chance"] > 2


def test_first_loss_far_above_chance_points_at_the_initialisation():
    # raw randn weights: the first loss is 27 000x ln(5), and it is still 100x when training ends
    loss = np.geomspace(4.4e4, 160, 120)
    (d,) = check(make_run(loss, task={"num_classes": 5}, layers=mlp(3, n_out=5)))
    assert d.evidence["cause"] == "initial_loss_too_high"
    assert _ids(d)[:2] == ["he_init", "lower_lr"]
    assert "raise_lr" not in _ids(d) and "train_longer" not in _ids(d)
    assert d.evidence["first_loss_vs_chance"] > 1e4 and "×184" not in d.message


def test_first_loss_at_chance_keeps_the_usual_advice():
    loss = LN10 * (1 - 0.09 * (np.arange(300) / 300) ** 2)
    (d,) = check(make_run(loss, task={"num_classes": 10}))
    assert d.evidence["cause"] == "still_falling"


def test_a_loss_that_blew_up_at_the_start_gets_the_explosions_advice():
    # an IRNN without clipping: 1.4 at step 0, 3.5e7 at step 1, then slowly down from 1.4e4
    loss = np.concatenate(([1.415, 3.5e7], np.geomspace(1.4e4, 93, 126)))
    (d,) = check(make_run(loss, task={"chance_loss": 0.164}))
    assert d.evidence["cause"] == "loss_jump" and d.evidence["loss_jump_step"] == 1
    assert d.evidence["first_loss"] == 1.415
    assert _ids(d)[:2] == ["lower_lr", "grad_clipping"]
    assert "raise_lr" not in _ids(d) and "train_longer" not in _ids(d)


def test_raw_inputs_put_normalising_first():
    run = make_run(flat(), task={"num_classes": 10}, layers=mlp(3), input_scale=1500.0)
    (d,) = check(run)
    assert _ids(d)[0] == "normalize_inputs" and d.evidence["input_rms"] == 1500.0
    quiet = make_run(flat(), task={"num_classes": 10}, layers=mlp(3), input_scale=1.0)
    assert _ids(check(quiet)[0])[0] != "normalize_inputs"


def test_plain_rnn_at_chance_is_told_to_use_lstm_or_gru():
    layers = [
        Layer("rnn", "RNN", "recurrent", (32, 100, 32), (32, 32)),
        Layer("out", out_shape=(32, 2), weight=(2, 32)),
    ]
    (d,) = check(make_run(flat(level=math.log(2)), task={"num_classes": 2}, layers=layers))
    assert d.evidence["cause"] == "plain_rnn" and _ids(d)[0] == "xavier_init"
    assert "LSTM" in d.fixes[0].text and "raise_lr" not in _ids(d)


def test_noisy_per_step_loss_is_judged_flat_on_its_epochs():
    # per-step batch noise of 30 % but the epoch train loss is flat from the first epoch on
    loss = flat(level=0.95, noise=0.3, n=228)
    epochs = [{"train_loss": 0.979, "val_loss": 1.08}] * 12
    (d,) = check(make_run(loss, task={"chance_loss": 0.979}, epochs=epochs))
    assert d.evidence["trend"] == "flat" and d.step == 0
    assert "epochs" in d.evidence["recent_window"]
