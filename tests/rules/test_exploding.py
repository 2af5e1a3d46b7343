"""exploding_gradients: geometric growth, jumps, loss blow-up, layer ratio; healthy runs quiet."""

from __future__ import annotations

import numpy as np
import pytest

from netdoctor.rules import get_rule

from .factory import Layer, act, healthy_grad_norm, make_run, mlp, noisy_decay

RULE = get_rule("exploding_gradients")


def check(run, **overrides):
    return RULE.check(run, {**RULE.defaults(), **overrides})


def growing_run(n: int = 300, start: int = 150, rate: float = 1.1, layers=None):
    """Healthy until ``start``, then grad norm ×``rate`` and loss ×1.02 per step, no NaN."""
    loss, grad = noisy_decay(n), healthy_grad_norm(n)
    k = np.arange(1, n - start + 1)
    grad[start:] = np.median(grad[start - 20 : start]) * rate**k
    loss[start:] = np.median(loss[start - 20 : start]) * 1.02**k
    return make_run(loss, grad_norm=grad, lr=0.1, layers=layers or mlp(3))


def test_geometric_growth_without_nan():
    (d,) = check(growing_run())
    assert d.rule == "exploding_gradients" and d.severity.value == "error"
    assert "geometric_growth" in d.evidence["criteria"]
    assert 130 <= d.step <= 175
    assert d.evidence["growth_total"] > 100
    assert d.evidence["nonfinite_step"] is None
    assert [f.id for f in d.fixes][:2] == ["grad_clipping", "lower_lr"]
    assert "clip_grad_norm_" in d.fixes[0].text
    assert d.message.startswith("grad norm grew")


def test_recurrent_net_gets_clipping_first_and_names_the_rnn():
    layers = [
        Layer("emb", "Embedding", "embedding", (32, 20, 16), (100, 16)),
        Layer("rnn", "LSTM", "recurrent", (32, 20, 64), (256, 16)),
        Layer("fc", out_shape=(32, 5), weight=(5, 64)),
    ]
    (d,) = check(growing_run(layers=layers))
    assert d.layer == "rnn" and d.evidence["recurrent"] is True
    assert d.fixes[0].id == "grad_clipping" and "recurrent" in d.fixes[0].text


def test_fast_explosion_in_four_steps_counts():
    n = 100
    loss, grad = noisy_decay(n), healthy_grad_norm(n)
    grad[60:64] = grad[59] * np.array([10.0, 80.0, 500.0, 4000.0])
    loss[60:] = loss[59] * 30
    (d,) = check(make_run(loss, grad_norm=grad, layers=mlp(3)))
    assert "geometric_growth" in d.evidence["criteria"]
    assert 58 <= d.step <= 60


def test_jump_after_which_the_loss_never_recovers():
    n = 200
    loss, grad = noisy_decay(n), healthy_grad_norm(n)
    grad[100] *= 1e4
    loss[101:] = 40 * np.median(loss[80:100])
    (d,) = check(make_run(loss, grad_norm=grad, layers=mlp(3)))
    assert "jump" in d.evidence["criteria"] and d.step == 100
    assert d.evidence["jump_factor"] > 1e3


def test_spike_the_run_recovers_from_is_quiet():
    n = 200
    loss, grad = noisy_decay(n), healthy_grad_norm(n)
    grad[100] *= 1e4
    loss[101] *= 3
    assert check(make_run(loss, grad_norm=grad, layers=mlp(3))) == []


def test_loss_blowup_with_clipped_gradients():
    n = 200
    loss = 2.3 * 1.05 ** np.arange(n)  # ×17000 by the end; the clipped grad norm stays flat
    (d,) = check(make_run(loss, grad_norm=np.full(n, 1.0), layers=mlp(3)))
    assert d.evidence["criteria"] == ["loss_blowup"]
    assert d.evidence["loss_ratio"] >= 1e3
    # initial = median of the first five losses = 2.3 × 1.05**2
    assert d.step == 2 + int(np.ceil(np.log(1e3) / np.log(1.05)))


def test_first_layer_gradient_ratio_with_a_rising_loss():
    n, m = 300, 30
    rms = np.tile([1.0, 0.1, 0.005], (m, 1))  # first / last = 200
    loss = np.linspace(2.3, 3.5, n) * np.exp(np.random.default_rng(0).normal(0, 0.02, n))
    (d,) = check(make_run(loss, grad_norm=np.full(n, 1.0), layers=mlp(3), layer_rms=rms))
    assert d.evidence["criteria"] == ["layer_ratio"]
    assert d.layer == "layers.0" and d.evidence["last_layer"] == "layers.4"
    assert d.evidence["layer_ratio"] == pytest.approx(200)
    assert [f.id for f in d.fixes][:2] == ["batchnorm", "xavier_init"]


def test_large_first_layer_ratio_in_a_learning_cnn_is_quiet():
    n, m = 300, 30
    layers = [
        Layer("conv1", "Conv2d", "conv", (32, 16, 28, 28), (16, 1, 3, 3)),
        act("relu1"),
        Layer("fc", out_shape=(32, 10), weight=(10, 12544)),
    ]
    rms = np.tile([0.5, 0.004], (m, 1))  # conv filters sum over positions: ratio 125
    run = make_run(noisy_decay(n), grad_norm=healthy_grad_norm(n), layers=layers, layer_rms=rms)
    assert check(run) == []


def test_healthy_runs_are_quiet():
    for seed in range(5):
        n = 800
        run = make_run(
            noisy_decay(n, seed=seed),
            grad_norm=healthy_grad_norm(n, rise=10, seed=seed),
            layers=mlp(4),
        )
        assert check(run) == [], seed


def test_warmup_rise_of_a_hundredfold_while_the_loss_falls_is_quiet():
    n = 400
    grad = healthy_grad_norm(n, rise=100)
    assert check(make_run(noisy_decay(n, tau=30), grad_norm=grad, layers=mlp(3))) == []


def test_very_noisy_grad_norm_is_quiet():
    n = 5000
    grad = np.exp(np.random.default_rng(3).normal(0, 0.8, n))
    assert check(make_run(noisy_decay(n), grad_norm=grad, layers=mlp(3))) == []


def test_short_run_is_quiet_even_if_it_grows():
    run = make_run([1.0, 2.0, 4.0, 8.0, 16.0], grad_norm=[1.0, 10.0, 100.0, 1e3, 1e4])
    assert check(run) == []


def test_threshold_override_changes_the_verdict():
    run = growing_run(rate=1.04)  # ×2 every ~18 steps, ×350 over 150 steps
    assert check(run) != []
    assert check(run, min_total_growth=1e4, loss_blowup=1e9) == []


def test_grad_norm_all_nan_and_no_loss():
    n = 50
    assert check(make_run(None, n_steps=n, grad_norm=[float("nan")] * n)) == []


def test_heavy_tailed_grad_norm_noise_over_a_long_run_is_quiet():
    n = 50_000
    for seed in range(3):
        grad = np.exp(0.4 * np.random.default_rng(seed).standard_t(2, n))
        assert check(make_run(noisy_decay(n), grad_norm=grad, layers=mlp(3))) == [], seed


def test_a_rise_that_falls_straight_back_and_spares_the_loss_is_quiet():
    n = 300
    loss, grad = noisy_decay(n), healthy_grad_norm(n)
    grad[150:154] = np.median(grad[130:150]) * np.array([10.0, 60.0, 400.0, 3000.0])
    assert check(make_run(loss, grad_norm=grad, layers=mlp(3))) == []


def test_large_first_layer_ratio_with_a_flat_loss_is_not_an_explosion():
    n, m = 300, 30
    rms = np.tile([1.0, 0.1, 0.005], (m, 1))
    loss = 2.3 * np.exp(np.random.default_rng(0).normal(0, 0.02, n))  # not learning: underfitting
    assert check(make_run(loss, grad_norm=np.full(n, 1.0), layers=mlp(3), layer_rms=rms)) == []


# ---- one-off leaps in the first steps, judged against the whole run ----------------------------
HE_64 = np.sqrt(2 / 64)  # He's scale for a 64-wide layer (the factory's default weights)


def thrown_at(step: int, m: int = 20, layers: int = 3, scale: float = 1e4) -> dict:
    """Weight and update RMS per sample: the update at ``step`` replaced every matrix."""
    weight = np.full((m, layers), HE_64)
    update = np.full((m, layers), 1e-3 * HE_64)
    weight[step:] = scale * HE_64  # thrown, and it stays there
    update[step] = scale * HE_64
    update[step + 1 :] = 0.0  # the units it feeds are dead or saturated: no more updates
    return {"weight_rms": weight, "update_rms": update, "sample_steps": range(m)}


def early_spike_run(at: int = 0, loss=None, weights=True, layers=None):
    n = 160
    rng = np.random.default_rng(0)
    grad = np.exp(rng.normal(0, 0.3, n))  # ~1 all run long ...
    grad[at] = 4.4e7  # ... but for one step
    loss = 0.18 * np.exp(rng.normal(0, 0.2, n)) if loss is None else loss
    extra = thrown_at(at) if weights else {}
    return make_run(loss, grad_norm=grad, layers=layers or mlp(3), lr=0.01, **extra)


def test_explosion_at_step_zero_that_threw_the_weights():
    # tanh RNN with spectral radius 3: grad norm 4.4e7 at step 0, the loss then *falls*
    loss = 0.18 * np.exp(np.random.default_rng(1).normal(0, 0.2, 160))
    loss[0] = 1.22
    (d,) = check(early_spike_run(0, loss=loss))
    assert d.evidence["criteria"] == ["spike"] and d.step == 0
    assert d.layer == "layers.0" and d.evidence["thrown_param"] == "layers.0.weight"
    assert d.evidence["spike_factor"] > 1e5 and d.evidence["thrown_scale"] >= 100
    assert [f.id for f in d.fixes][:2] == ["grad_clipping", "lower_lr"]
    assert "the run's median" in d.message


def test_explosion_at_step_one_whose_loss_stayed_up():
    # IRNN without clipping, no weight statistics: the loss tells the damage
    loss = np.concatenate(([1.415, 3.5e7], np.geomspace(1.4e4, 93, 158)))
    (d,) = check(early_spike_run(1, loss=loss, weights=False))
    assert d.evidence["criteria"] == ["spike"] and d.step == 1
    assert d.evidence["loss_after"] / d.evidence["loss_before"] > 1e3


def test_recurrent_layer_is_named_and_gets_clipping_first():
    layers = [
        Layer("rnn", "RNN", "recurrent", (32, 60, 64), (64, 64)),
        Layer("head", out_shape=(32, 1), weight=(1, 64)),
    ]
    n = 160
    grad = np.exp(np.random.default_rng(0).normal(0, 0.3, n))
    grad[0] = 4.4e7
    run = make_run(
        noisy_decay(n, 0.3, 0.15), grad_norm=grad, layers=layers, **thrown_at(0, layers=2)
    )
    (d,) = check(run)
    assert d.layer == "rnn" and d.fixes[0].id == "grad_clipping" and "recurrent" in d.fixes[0].text


def test_raw_inputs_put_normalising_first():
    # house prices on raw columns: the first layer's gradient is as large as the inputs
    n = 150
    rng = np.random.default_rng(2)
    grad = 8e5 * np.exp(rng.normal(0, 0.1, n))
    grad[0], grad[1] = 2.6e9, 4.3e12
    loss = 1.8e11 * np.exp(rng.normal(0, 0.1, n))
    loss[1] = 4.5e13
    run = make_run(
        loss, grad_norm=grad, layers=mlp(2), input_scale=1800.0, **thrown_at(1, layers=2)
    )
    (d,) = check(run)
    assert d.step == 0 and d.layer == "layers.0"
    assert [f.id for f in d.fixes][:2] == ["normalize_inputs", "grad_clipping"]
    assert "not normalised" in d.message


def test_a_leap_that_did_no_damage_is_quiet():
    assert check(early_spike_run(0, weights=False)) == []
    assert check(early_spike_run(80, weights=False)) == []


def test_a_large_start_that_decays_smoothly_is_quiet():
    # unnormalised targets and Adam: the grad norm starts 1e4x its later level and comes down
    # over dozens of steps (no abrupt leap), while the last layer grows far past He's scale
    n = 400
    grad = np.concatenate((np.geomspace(1e4, 1.0, 60), np.ones(n - 60)))
    grad *= np.exp(np.random.default_rng(3).normal(0, 0.2, n))
    weight = np.tile(np.geomspace(200, 1e3, 40)[:, None], (1, 3)) * HE_64
    weight[0] = HE_64
    update = np.abs(np.diff(weight, axis=0, prepend=0.0))  # sample 1: ‖ΔW‖/‖W‖ ≈ 1, ×200 He
    run = make_run(
        noisy_decay(n, start=1e6, floor=10.0, tau=20),
        grad_norm=grad,
        layers=mlp(3),
        weight_rms=weight,
        update_rms=update,
    )
    assert check(run) == []


def test_zero_initialised_weights_are_not_thrown():
    # their first update is all of them (ratio 1), but they stay far below He's scale
    n = 200
    grad = healthy_grad_norm(n)
    weight = np.full((20, 3), HE_64)
    weight[:, 2] = 1e-3 * HE_64
    update = np.full((20, 3), 1e-3 * HE_64)
    run = make_run(
        noisy_decay(n), grad_norm=grad, layers=mlp(3), weight_rms=weight, update_rms=update
    )
    assert check(run) == []
