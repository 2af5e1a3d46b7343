"""dead_relu: most units of a ReLU layer zero for every sample, on most later samples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from netdoctor.rules import get_rule
from netdoctor.runlog.schema import ActStat

from .act_sites import add_input_site, set_stat
from .factory import Layer, act, make_run, mlp, noisy_decay

RULE = get_rule("dead_relu")
N, M = 200, 20  # steps, samples (every 10 steps)


def check(run, **overrides):
    return RULE.check(run, {**RULE.defaults(), **overrides})


def relu_run(dead1=0.0, dead3=0.0, n=N, **kwargs):
    """mlp(3): layers.0 Linear, layers.1 ReLU, layers.2 Linear, layers.3 ReLU, layers.4 Linear."""
    run = make_run(noisy_decay(n), layers=mlp(3), **kwargs)
    set_stat(run, "layers.1", ActStat.DEAD_FRAC, dead1)
    return set_stat(run, "layers.3", ActStat.DEAD_FRAC, dead3)


def rising(at: int, level: float = 0.9, before: float = 0.05) -> np.ndarray:
    """Dead fraction per sample: ``before`` until sample ``at``, ``level`` from there on."""
    return np.where(np.arange(M) >= at, level, before)


def test_dead_from_the_first_step_ranks_he_init_first():
    (d,) = check(relu_run(dead3=0.92))
    assert d.rule == "dead_relu" and d.severity.value == "warning"
    assert d.layer == "layers.3" and d.step == 0
    assert d.evidence["after_layer"] == "layers.2" and d.evidence["units"] == 64
    assert d.evidence["dead_fraction"] == pytest.approx(0.92)
    assert d.evidence["from_start"] is True
    assert [f.id for f in d.fixes][:2] == ["he_init", "leaky_relu"]
    assert "zeros_(layer.bias)" in d.fixes[0].text
    assert d.message.startswith("92 % of the 64 units of ReLU layers.3 (after layers.2)")


def test_died_after_a_large_update_ranks_lower_lr_first():
    he = math.sqrt(2 / 64)
    update = np.full((M, 3), 1e-3 * he)
    update[5, 1] = 0.4 * he  # layers.2 moved by 40 % of its norm at step 50
    (d,) = check(relu_run(dead3=rising(6), update_rms=update))
    assert d.step == 60 and d.evidence["from_start"] is False
    assert d.evidence["largest_update_param"] == "layers.2.weight"
    assert d.evidence["largest_update_step"] == 50
    assert d.evidence["largest_update"] == pytest.approx(0.4, rel=1e-3)
    assert [f.id for f in d.fixes][:2] == ["lower_lr", "leaky_relu"]
    assert "step 50" in d.message


def test_the_feeding_layer_is_preferred_to_a_larger_update_elsewhere():
    he = math.sqrt(2 / 64)
    update = np.full((M, 3), 1e-3 * he)
    update[5, 1], update[5, 2] = 0.2 * he, 0.9 * he  # layers.4 moved more, layers.2 feeds it
    (d,) = check(relu_run(dead3=rising(6), update_rms=update))
    assert d.evidence["largest_update_param"] == "layers.2.weight"


def test_slow_death_without_large_updates_ranks_leaky_relu_first():
    update = np.full((M, 3), 1e-3 * math.sqrt(2 / 64))
    dead = np.minimum(np.linspace(0.1, 1.5, M), 0.95)  # crosses 70 % at sample 9
    (d,) = check(relu_run(dead1=dead, update_rms=update))
    assert d.layer == "layers.1" and d.evidence["from_start"] is False
    assert d.evidence["largest_update"] < 0.1
    assert [f.id for f in d.fixes][:2] == ["leaky_relu", "batchnorm"]


def test_the_worst_layer_is_named_and_the_others_listed():
    (d,) = check(relu_run(dead1=0.75, dead3=0.95))
    assert d.layer == "layers.3"
    assert d.evidence["dead_layers"] == pytest.approx({"layers.1": 0.75, "layers.3": 0.95})


def test_a_blip_or_a_recovery_is_not_dead():
    blip = np.zeros(M)
    blip[[12, 15, 18]] = 1.0  # three of the ten later samples
    assert check(relu_run(dead1=blip)) == []
    early = np.where(np.arange(M) < 8, 1.0, 0.1)  # dead at first, alive in the second half
    assert check(relu_run(dead1=early)) == []


def test_threshold_is_a_name_a_user_can_change():
    run = relu_run(dead1=0.6)
    assert check(run) == []  # 60 % is below the default 70 %
    assert check(run, dead_fraction=0.5)[0].evidence["dead_fraction"] == pytest.approx(0.6)


def test_too_few_steps_no_samples_and_no_relu_are_quiet():
    assert check(relu_run(dead1=1.0, n=8)) == []  # fewer steps than any trend needs
    assert check(make_run(noisy_decay(N))) == []  # no layers, no samples
    linear = make_run(noisy_decay(N), layers=[Layer("fc", weight=(10, 20))])
    assert check(linear) == []
    tanh = make_run(noisy_decay(N), layers=mlp(3, activation="Tanh", family="bounded"))
    set_stat(tanh, "layers.1", ActStat.DEAD_FRAC, math.nan)  # not measured on tanh
    assert check(tanh) == []


def test_nan_samples_are_skipped_and_a_nan_run_is_judged_before_it():
    dead = np.full(M, 0.9)
    dead[::2] = math.nan
    (d,) = check(relu_run(dead1=dead))
    assert d.evidence["samples"] == 5
    # dead only after the loss went NaN at step 120: the NaN is nan_loss's finding
    loss = noisy_decay(N)
    loss[120:] = math.nan
    run = make_run(loss, layers=mlp(3))
    set_stat(run, "layers.1", ActStat.DEAD_FRAC, rising(13, level=1.0))
    assert check(run) == []


def test_functional_relu_is_read_at_the_next_layers_input():
    layers = [
        Layer("fc1", weight=(64, 20)),
        Layer("fc2", out_shape=(32, 10), weight=(10, 64)),
    ]
    run = add_input_site(make_run(noisy_decay(N), layers=layers), "fc2")
    set_stat(run, "fc2 (input)", ActStat.MIN, 0.0)
    set_stat(run, "fc2 (input)", ActStat.DEAD_FRAC, 0.85)
    (d,) = check(run)
    assert d.layer == "fc1" and d.evidence["site"] == "fc2 (input)"
    assert "fc1 (through a ReLU)" in d.message
    set_stat(run, "fc2 (input)", ActStat.MIN, -0.9)  # negative values: not a ReLU's output
    assert check(run) == []


def test_an_input_site_after_a_relu_module_is_not_counted_twice():
    layers = [Layer("fc1", weight=(64, 20)), act("relu"), Layer("fc2", weight=(10, 64))]
    run = add_input_site(make_run(noisy_decay(N), layers=layers), "fc2")
    set_stat(run, "relu", ActStat.DEAD_FRAC, 0.8)
    set_stat(run, "fc2 (input)", ActStat.DEAD_FRAC, 0.8)  # the ReLU's units, after dropout
    (d,) = check(run)
    assert d.evidence["dead_layers"] == {"relu": pytest.approx(0.8)}


# ---- real runs ---------------------------------------------------------------------------------
def test_relus_killed_by_adam_at_lr_0_1_are_found_with_lower_lr_first(tmp_path):
    torch = pytest.importorskip("torch")
    from .act_runs import blobs, by_rule, mlp, train

    torch.manual_seed(0)
    model = mlp([20, 64, 64, 4])
    opt = torch.optim.Adam(model.parameters(), lr=0.1)  # 100x Adam's usual 1e-3
    found = train(model, opt, *blobs(), tmp_path / "adam.sqlite", num_classes=4)
    d = by_rule(found, "dead_relu")
    assert d.layer == "3" and d.evidence["dead_fraction"] >= 0.7
    assert d.evidence["dead_at_start"] < 0.1 and d.step > 0
    assert d.evidence["largest_update"] >= 0.1
    assert d.fixes[0].id == "lower_lr"
    assert d.evidence.get("caused_by") in (None, "lr_too_high", "exploding_gradients")


def test_relus_behind_negative_biases_are_dead_from_the_start(tmp_path):
    torch = pytest.importorskip("torch")
    from .act_runs import blobs, by_rule, mlp, train

    torch.manual_seed(0)
    model = mlp([20, 64, 64, 4])
    torch.nn.init.constant_(model[2].bias, -2.0)  # "a small negative bias keeps it sparse"
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    found = train(model, opt, *blobs(), tmp_path / "bias.sqlite", num_classes=4)
    d = by_rule(found, "dead_relu")
    assert d.layer == "3" and d.step == 0 and d.evidence["from_start"] is True
    assert d.fixes[0].id == "he_init"


def test_healthy_relu_nets_keep_their_units(tmp_path):
    torch = pytest.importorskip("torch")
    from torch import nn
    from torch.nn import functional as F

    from .act_runs import blobs, mlp, train

    torch.manual_seed(0)
    model = mlp([20, 64, 64, 4])  # PyTorch's default init, SGD with momentum
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    assert train(model, opt, *blobs(), tmp_path / "sgd.sqlite", num_classes=4) == []

    class Functional(nn.Module):  # F.relu and dropout inside forward: read at fc2's input
        def __init__(self) -> None:
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(20, 64), nn.Linear(64, 4)

        def forward(self, x):
            return self.fc2(F.dropout(F.relu(self.fc1(x)), 0.3, self.training))

    torch.manual_seed(0)
    model = Functional()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    assert train(model, opt, *blobs(), tmp_path / "f.sqlite", num_classes=4) == []
