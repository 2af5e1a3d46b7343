"""vanishing_gradients: early layers orders of magnitude below the last, on most samples."""

from __future__ import annotations

import math

import numpy as np

from netdoctor.rules import get_rule

from .factory import Layer, make_run, mlp, noisy_decay

RULE = get_rule("vanishing_gradients")


def check(run):
    return RULE.check(run, RULE.defaults())


def run_with(rms, layers=None, **kwargs):
    rms = np.asarray(rms, dtype=np.float64)
    layers = layers or mlp(rms.shape[1], **kwargs)
    n = rms.shape[0] * 10
    return make_run(noisy_decay(n, floor=2.0), layers=layers, layer_rms=rms)


def shrinking(depth: int, per_layer: float, m: int = 20, last: float = 1e-2) -> np.ndarray:
    """RMS gradients that shrink ``per_layer``-fold per layer towards the input, with noise."""
    profile = last * per_layer ** -np.arange(depth - 1, -1, -1.0)
    noise = np.exp(np.random.default_rng(0).normal(0, 0.2, (m, depth)))
    return profile * noise


def test_deep_sigmoid_net_ranks_relu_first():
    run = run_with(shrinking(8, 4.0), activation="Sigmoid", family="bounded")
    (d,) = check(run)
    assert d.rule == "vanishing_gradients" and d.severity.value == "warning"
    assert d.layer == "layers.0" and d.step == 0
    assert d.evidence["ratio"] < 1e-3 and d.evidence["last_layer"] == "layers.14"
    assert d.evidence["bounded_activations"] == [f"layers.{i}" for i in range(1, 14, 2)]
    assert [f.id for f in d.fixes][:3] == ["relu_activation", "he_init", "batchnorm"]
    assert d.message.startswith("RMS gradient of layers.0 fell to")


def test_relu_net_with_small_weights_ranks_he_init_first():
    rms = shrinking(6, 10.0)
    layers = mlp(6)
    n_w = len([layer for layer in layers if layer.weight])
    run = make_run(
        noisy_decay(200, floor=2.0),
        layers=layers,
        layer_rms=rms,
        weight_rms=np.full((rms.shape[0], n_w), 1e-3),
    )
    (d,) = check(run)
    assert [f.id for f in d.fixes] == ["he_init", "batchnorm", "residual_connections"]
    assert d.evidence["weight_scale_vs_he"] < 0.1
    assert "He scale" in d.message


def test_exactly_zero_gradient_behind_relu_ranks_leaky_relu_first():
    rms = np.tile([0.0, 1e-2, 1e-2], (20, 1))
    (d,) = check(run_with(rms))
    assert d.evidence["zero_gradients"] is True
    assert d.fixes[0].id == "leaky_relu"
    assert "exactly zero" in d.message


def test_recurrent_layer_gets_orthogonal_init():
    layers = [
        Layer("rnn", "RNN", "recurrent", (32, 50, 64), (64, 64)),
        Layer("fc", out_shape=(32, 5), weight=(5, 64)),
    ]
    (d,) = check(run_with(np.tile([1e-9, 1e-2], (20, 1)), layers=layers))
    assert d.layer == "rnn"
    assert d.fixes[0].id == "xavier_init" and "orthogonal_" in d.fixes[0].text


def test_earliest_vanishing_layer_is_named():
    rms = np.tile([1e-2, 1e-8, 1e-8, 1e-2], (20, 1))
    (d,) = check(run_with(rms))
    assert d.layer == "layers.2"
    assert d.evidence["vanishing_layers"] == ["layers.2", "layers.4"]


def test_sagemaker_absolute_test_needs_the_last_layer_to_be_larger():
    assert check(run_with(np.tile([1e-8, 1e-6], (20, 1)))) != []  # 100x below the last
    assert check(run_with(np.tile([1e-8, 1e-8], (20, 1)))) == []  # converged: all tiny


def test_embedding_tables_are_left_out():
    layers = [
        Layer("emb", "Embedding", "embedding", (32, 20, 16), (50000, 16)),
        Layer("lstm", "LSTM", "recurrent", (32, 20, 64), (256, 16)),
        Layer("fc", out_shape=(32, 10), weight=(10, 64)),
    ]
    assert check(run_with(np.tile([1e-9, 1e-2, 1e-2], (20, 1)), layers=layers)) == []


def test_holding_on_a_few_samples_is_not_enough():
    rms = np.full((20, 3), 1e-2)
    rms[[3, 9, 15], 0] = 1e-9
    assert check(run_with(rms)) == []


def test_nan_samples_are_ignored():
    rms = np.tile([1e-9, 1e-3, 1e-2], (20, 1))
    rms[::2, :] = math.nan
    (d,) = check(run_with(rms))
    assert d.evidence["samples"] == 10 and d.step == 10


def test_healthy_nets_are_quiet():
    rng = np.random.default_rng(1)
    for depth in (2, 4, 8):
        rms = 1e-2 * np.exp(rng.normal(0, 0.5, (30, depth)))
        assert check(run_with(rms)) == [], depth


def test_single_layer_and_no_samples_are_quiet():
    assert check(run_with(np.full((20, 1), 1e-12))) == []
    assert check(make_run(noisy_decay(100))) == []


def test_too_few_samples_is_quiet():
    assert check(run_with(np.tile([1e-9, 1e-2], (2, 1)))) == []


def test_units_killed_by_an_explosion_get_the_explosions_advice():
    # raw house-price columns: the update at step 10 (sample 1) threw layers.0 to ×7e4 He's
    # scale and its ReLUs died: from step 20 (sample 2) its gradient is exactly zero
    m = 20
    rms = np.tile([0.0, 1e-2], (m, 1))
    rms[:2] = [1e3, 1e3]
    he = np.sqrt(2 / 20)
    weight = np.full((m, 2), he)
    weight[1:, 0] = 7e4 * he
    update = np.full((m, 2), 1e-3 * he)
    update[1, 0] = 7e4 * he
    update[2:, 0] = 0.0
    run = make_run(
        noisy_decay(10 * m, floor=2.0),
        layers=mlp(2),
        layer_rms=rms,
        weight_rms=weight,
        update_rms=update,
    )
    (d,) = check(run)
    assert d.layer == "layers.0" and d.step == 20 and d.evidence["zero_gradients"] is True
    assert d.evidence["thrown_param"] == "layers.0.weight" and d.evidence["thrown_step"] == 10
    assert [f.id for f in d.fixes][:2] == ["lower_lr", "grad_clipping"]
    assert "explosion" in d.message
    # the same dead layer without a thrown weight keeps the dead-ReLU advice
    quiet = make_run(noisy_decay(10 * m, floor=2.0), layers=mlp(2), layer_rms=rms)
    assert check(quiet)[0].fixes[0].id == "leaky_relu"
