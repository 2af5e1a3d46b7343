"""lr_too_high: a loss that climbs, swings or blows up under large updates; who owns an
explosion (this rule, or exploding_gradients for raw inputs and recurrent nets)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from netdoctor.rules import get_rule, run_rules

from .factory import Layer, make_run, mlp, noisy_decay
from .real_loops import HEALTHY, real

RULE = get_rule("lr_too_high")
HE = math.sqrt(2 / 64)
SGD = {"class": "SGD", "groups": [{"lr": 0.5, "momentum": 0.9, "weight_decay": 0.0}]}


def check(run):
    return RULE.check(run, RULE.defaults())


def run_of(loss, ratio: float | np.ndarray = 0.3, **kw):
    """A run whose weight matrices move by ``ratio`` of their size on every sampled step."""
    kw.setdefault("layers", mlp(3))
    kw.setdefault("optimizer", SGD)
    kw.setdefault("lr", 0.5)
    ratio = np.asarray(ratio, dtype=float)
    return make_run(loss, update_rms=ratio * HE, **kw)


def learns_then_climbs(n: int = 200, seed: int = 0) -> np.ndarray:
    """Falls from 2.3 to ~0.4, then climbs back to ~1.8 at step 100 and stays there."""
    loss = noisy_decay(n, start=2.3, floor=0.4, tau=20, noise=0.05, seed=seed)
    loss[100:] = 1.8 * np.exp(np.random.default_rng(seed).normal(0, 0.05, n - 100))
    return loss


def test_a_lasting_climb_after_learning_asks_for_a_decaying_rate():
    (d,) = check(run_of(learns_then_climbs()))
    assert d.rule == "lr_too_high" and d.severity.value == "warning"
    assert d.evidence["criteria"] == ["climb"] and 95 <= d.evidence["climb_step"] <= 100
    assert d.evidence["climb_from"] < 0.5 < 1.5 < d.evidence["climb_to"]
    assert d.evidence["update_ratio"] == pytest.approx(0.3, rel=1e-3)
    assert d.evidence["recovered"] is False and d.evidence["lr"] == 0.5
    assert [f.id for f in d.fixes] == ["lr_decay", "lower_lr", "grad_clipping", "adam"]
    assert "lr=0.05) instead of lr=0.5" in d.fixes[1].text


def test_the_same_climb_under_small_updates_is_not_the_learning_rate():
    assert check(run_of(learns_then_climbs(), ratio=1e-3)) == []


def test_without_the_optimizer_updates_are_not_measured():
    assert check(make_run(learns_then_climbs(), layers=mlp(3))) == []
    assert check(run_of(learns_then_climbs(), sample_steps=[])) == []


def test_too_few_steps_are_quiet():
    assert check(run_of(np.geomspace(1, 100, 8))) == []


def test_divergence_from_the_start_lowers_the_rate_first():
    loss = 1.0 * 1.05 ** np.arange(150)  # every step overshoots a little more
    (d,) = check(run_of(loss))
    assert d.evidence["criteria"][0] == "climb" and d.step <= 10
    assert [f.id for f in d.fixes][:2] == ["lower_lr", "grad_clipping"]


def test_oscillation_for_the_whole_run():
    loss = np.exp(np.random.default_rng(1).normal(0, 1.5, 200))  # swings ×4 up and down
    (d,) = check(run_of(loss, optimizer={"class": "Adam", "groups": [{"lr": 0.5}]}))
    assert d.evidence["criteria"][0] == "oscillation" and d.evidence["loss_swing_share"] > 0.5
    assert [f.id for f in d.fixes] == ["lower_lr", "grad_clipping", "lr_decay"]  # Adam already
    assert "torch.optim.Adam(" in d.fixes[0].text


def test_bouncing_after_learning_asks_for_a_decaying_rate_first():
    loss = noisy_decay(300, start=2.3, floor=0.3, tau=15, noise=0.05)
    loss[60:] = np.where(np.arange(240) % 2 == 0, 0.05, 1.4)  # learnt, then bounces
    (d,) = check(run_of(loss))
    assert d.evidence["criteria"][0] == "oscillation" and d.evidence["recovered"] is False
    assert [f.id for f in d.fixes][:2] == ["lr_decay", "lower_lr"]


def test_healthy_batch_noise_is_not_oscillation():
    loss = noisy_decay(300, noise=0.3)  # small batches: ±30 % from batch to batch
    assert check(run_of(loss)) == []


def test_an_early_jump_that_did_lasting_damage():
    loss = np.concatenate([[1.1, 9.0, 3.0], np.full(147, 1.05)])
    ratio = np.r_[0.6, 0.3, np.full(13, 1e-2)]  # large only for the first updates
    (d,) = check(run_of(loss, ratio=ratio[:, None] * np.ones((1, 3))))
    assert d.evidence["criteria"] == ["jump"] and d.step == 1 and d.severity.value == "warning"
    assert d.fixes[0].id == "lower_lr" and "warm" in d.fixes[0].text


def test_an_early_jump_the_run_recovered_from_is_info():
    loss = np.concatenate([[1.1, 9.0, 3.0], np.geomspace(1.0, 0.05, 147)])
    ratio = np.r_[0.6, 0.3, np.full(13, 1e-2)]
    (d,) = check(run_of(loss, ratio=ratio[:, None] * np.ones((1, 3))))
    assert d.severity.value == "info" and d.evidence["recovered"] is True
    assert "recovered" in d.message


def test_a_single_layer():
    (d,) = check(run_of(learns_then_climbs(), layers=[Layer("fc", weight=(10, 64))]))
    assert d.evidence["layer_update_ratios"] == {"fc.weight": pytest.approx(0.3, rel=1e-3)}


def test_raw_inputs_leave_the_explosion_to_the_input_rules():
    assert check(run_of(learns_then_climbs(), input_scale=2000.0)) == []


def test_identical_units_leave_it_to_symmetric_weights():
    assert check(run_of(learns_then_climbs(), unit_spread=0.0)) == []


def _explosion(layers):
    """The loss and the grad norm grow together, ×1.5 per step from step 40, under large steps."""
    n = 80
    grow = 1.5 ** np.clip(np.arange(n) - 40, 0, None)
    loss = noisy_decay(n, start=2.3, floor=1.0, noise=0.02) * grow
    return run_of(loss, grad_norm=0.5 * grow, layers=layers, sample_every=4)


def test_an_explosion_grown_out_of_large_steps_is_its_consequence():
    found = run_rules(_explosion(mlp(3)))
    rules = [d.rule for d in found]
    assert rules[:2] == ["lr_too_high", "exploding_gradients"]
    assert found[1].evidence["caused_by"] == "lr_too_high"


def test_a_recurrent_net_whose_gradients_explode_is_left_to_exploding_gradients():
    rnn = [Layer("rnn", "LSTM", "recurrent", (32, 16, 64), (256, 64)), Layer("head")]
    found = run_rules(_explosion(rnn))
    assert "exploding_gradients" in [d.rule for d in found]
    assert "lr_too_high" not in [d.rule for d in found]


# ---- real runs ---------------------------------------------------------------------------------
def _lr_high(name):
    found = run_rules(real(name))
    return found, next((d for d in found if d.rule == "lr_too_high"), None)


def test_sgd_at_lr_one_climbs_and_explodes():
    found, d = _lr_high("sgd_lr_one")
    assert found[0] is d and d.severity.value == "warning" and "climb" in d.evidence["criteria"]
    assert d.fixes[0].id == "lower_lr"
    boom = next(x for x in found if x.rule == "exploding_gradients")
    assert boom.evidence["caused_by"] == "lr_too_high"  # the explosion is its consequence


def test_a_regression_that_diverges_from_its_first_step():
    # the explosion grows out of the very first updates: the rate is its cause, not the data
    found, d = _lr_high("correlated_regression")
    assert [x.rule for x in found][:3] == ["lr_too_high", "exploding_gradients", "nan_loss"]
    assert d.step <= 2 and d.evidence["nonfinite_step"] is not None
    assert d.fixes[0].id == "lower_lr" and "lr=0.03" in d.fixes[0].text


def test_logistic_regression_at_lr_fifty_oscillates():
    found, d = _lr_high("logistic_sgd_fifty")
    assert found[0] is d and d.evidence["criteria"][0] == "oscillation"
    assert d.fixes[0].id == "lower_lr"
    for after in found[1:]:
        assert after.evidence["caused_by"] and "raise_lr" not in [f.id for f in after.fixes]


def test_a_cnn_at_sgd_lr_two_climbs_and_stalls():
    found, d = _lr_high("cnn_sgd_two")
    assert found[0] is d and d.evidence["recovered"] is False
    assert all(x.evidence.get("caused_by") for x in found[1:])  # dead units etc. follow


def test_adam_at_lr_005_throws_the_loss_in_its_first_step():
    found, d = _lr_high("adam_jump")
    assert found[0] is d and "jump" in d.evidence["criteria"] and d.step <= 2
    assert [f.id for f in d.fixes] == ["lower_lr", "grad_clipping", "lr_decay"]  # Adam: no adam


def test_an_lstm_at_lr_twenty_whose_gradients_stay_in_range():
    # no gradient explosion was found, so the too-large steps are this rule's to report
    found, d = _lr_high("lstm_sgd_twenty")
    assert found[0] is d and "exploding_gradients" not in [x.rule for x in found]


def test_raw_inputs_are_not_blamed_on_the_rate():
    found, d = _lr_high("raw_inputs")
    assert d is None and "exploding_gradients" in [x.rule for x in found]


def test_without_the_optimizer_it_stays_quiet():
    assert _lr_high("no_optimizer")[1] is None


@pytest.mark.parametrize("name", HEALTHY)
def test_healthy_real_runs_are_quiet(name):
    assert check(real(name)) == []
