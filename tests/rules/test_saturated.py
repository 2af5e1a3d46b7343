"""saturated_activations: bounded units pinned at their bounds on most later samples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from netdoctor.rules import get_rule
from netdoctor.runlog.schema import ActStat

from .act_sites import set_stat
from .factory import Layer, act, make_run, mlp, noisy_decay

RULE = get_rule("saturated_activations")
N, M = 200, 20


def check(run, **overrides):
    return RULE.check(run, {**RULE.defaults(), **overrides})


def tanh_run(sat1=0.0, sat3=0.0, n=N, **kwargs):
    """mlp(3) with Tanh: layers.1 and layers.3 are tanh, layers.4 the output layer."""
    run = make_run(noisy_decay(n), layers=mlp(3, activation="Tanh", family="bounded"), **kwargs)
    set_stat(run, "layers.1", ActStat.SAT_FRAC, sat1)
    return set_stat(run, "layers.3", ActStat.SAT_FRAC, sat3)


def test_saturated_from_the_first_step_ranks_xavier_init_first():
    (d,) = check(tanh_run(sat1=0.84))
    assert d.rule == "saturated_activations" and d.severity.value == "warning"
    assert d.layer == "layers.1" and d.step == 0 and d.evidence["from_start"] is True
    assert d.evidence["activation"] == "Tanh" and d.evidence["after_layer"] == "layers.0"
    assert d.evidence["saturated_fraction"] == pytest.approx(0.84)
    assert [f.id for f in d.fixes] == ["xavier_init", "batchnorm", "relu_activation"]
    assert d.message.startswith("84 % of the outputs of Tanh layers.1 (after layers.0)")


def test_raw_inputs_rank_normalising_them_first():
    (d,) = check(tanh_run(sat1=0.95, input_scale=180.0))
    assert d.evidence["input_rms"] == pytest.approx(180.0)
    assert d.fixes[0].id == "normalize_inputs" and "180" in d.fixes[0].text


def test_saturation_after_a_large_update_ranks_lower_lr_first():
    he = math.sqrt(2 / 64)
    update = np.full((M, 3), 1e-3 * he)
    update[7, 0] = 0.3 * he
    sat = np.where(np.arange(M) >= 8, 0.7, 0.02)
    (d,) = check(tanh_run(sat1=sat, update_rms=update))
    assert d.step == 80 and d.evidence["largest_update_step"] == 70
    assert [f.id for f in d.fixes][:2] == ["lower_lr", "batchnorm"]


def test_slow_saturation_ranks_relu_first():
    update = np.full((M, 3), 1e-3 * math.sqrt(2 / 64))
    sat = np.minimum(np.linspace(0.0, 1.2, M), 0.9)
    (d,) = check(tanh_run(sat3=sat, update_rms=update))
    assert d.layer == "layers.3" and d.evidence["from_start"] is False
    assert d.fixes[0].id == "relu_activation"


def test_the_earliest_saturated_layer_is_named():
    (d,) = check(tanh_run(sat1=0.6, sat3=0.9))
    assert d.layer == "layers.1"
    assert d.evidence["saturated_layers"] == pytest.approx({"layers.1": 0.6, "layers.3": 0.9})


def test_the_models_own_output_activation_may_saturate():
    layers = [*mlp(2), act("sigmoid", "Sigmoid", "bounded")]  # BCELoss on a final sigmoid
    run = set_stat(make_run(noisy_decay(N), layers=layers), "sigmoid", ActStat.SAT_FRAC, 0.9)
    assert check(run) == []


def test_a_shared_module_is_judged_on_its_first_call_too():
    # one nn.Tanh after both layers: the first call pinned at ±1, the second fine, pooled 50/50
    layers = [Layer("fc1", weight=(32, 5)), act("act", "Tanh", "bounded"), *mlp(2)]
    run = make_run(noisy_decay(N), layers=layers)
    set_stat(run, "act", ActStat.CALLS, 2)
    set_stat(run, "act", ActStat.SAT_FRAC, 0.499)
    set_stat(run, "fc1", ActStat.STD, 400.0)  # what the first call was fed
    (d,) = check(run)
    assert d.layer == "act" and d.evidence["shared_module"] is True
    assert d.evidence["saturated_fraction"] > 0.99
    set_stat(run, "fc1", ActStat.STD, 1.0)  # fed in range: the pooled share stands, under half
    assert check(run) == []
    set_stat(run, "act", ActStat.CALLS, 1)  # one call: the measured share is the truth
    set_stat(run, "fc1", ActStat.STD, 400.0)
    assert check(run) == []


def test_blips_low_fractions_and_thresholds():
    blip = np.zeros(M)
    blip[[11, 14, 17]] = 0.9
    assert check(tanh_run(sat1=blip)) == []
    assert check(tanh_run(sat1=0.4)) == []  # under half of the outputs
    assert check(tanh_run(sat1=0.4), saturated_fraction=0.3) != []


def test_edges_are_quiet():
    assert check(tanh_run(sat1=0.9, n=8)) == []  # too few steps
    assert check(make_run(noisy_decay(N))) == []  # no layers, no samples
    assert check(make_run(noisy_decay(N), layers=[Layer("fc", weight=(10, 20))])) == []
    relu = make_run(noisy_decay(N), layers=mlp(3))
    set_stat(relu, "layers.1", ActStat.SAT_FRAC, math.nan)  # not measured on ReLU
    assert check(relu) == []
    nan = np.full(M, 0.9)
    nan[1::2] = math.nan
    assert check(tanh_run(sat1=nan))[0].evidence["samples"] == 5


# ---- real runs ---------------------------------------------------------------------------------
def test_tanh_with_unit_variance_weights_is_saturated_from_the_start(tmp_path):
    torch = pytest.importorskip("torch")
    from torch import nn

    from .act_runs import blobs, by_rule, mlp, train

    torch.manual_seed(0)
    model = mlp([20, 128, 128, 4], act=nn.Tanh)
    for layer in (model[0], model[2]):
        nn.init.normal_(layer.weight, std=1.0)  # "N(0, 1) like the textbook"
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    found = train(model, opt, *blobs(), tmp_path / "tanh.sqlite", num_classes=4)
    d = by_rule(found, "saturated_activations")
    # fan_in 128 with unit weights: the second tanh's pre-activations have std ~11
    assert d.layer == "3" and d.step == 0 and d.evidence["saturated_fraction"] >= 0.5
    assert d.fixes[0].id == "xavier_init"
    assert d.evidence.get("caused_by") in (None, "poor_init")


def test_sigmoid_on_raw_inputs_wants_them_normalised(tmp_path):
    torch = pytest.importorskip("torch")
    from torch import nn

    from .act_runs import blobs, by_rule, mlp, train

    torch.manual_seed(0)
    x, y = blobs()
    model = mlp([20, 64, 64, 4], act=nn.Sigmoid)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    found = train(model, opt, x * 200 + 50, y, tmp_path / "raw.sqlite", num_classes=4)
    d = by_rule(found, "saturated_activations")
    assert d.layer == "1" and d.fixes[0].id == "normalize_inputs"
    assert (
        found[0].rule == "unnormalized_inputs" and d.evidence["caused_by"] == "unnormalized_inputs"
    )


def test_healthy_bounded_nets_are_quiet(tmp_path):
    torch = pytest.importorskip("torch")
    from torch import nn
    from torch.nn import functional as F

    from .act_runs import blobs, mlp, train

    torch.manual_seed(0)
    model = mlp([20, 64, 64, 4], act=nn.Tanh)  # PyTorch's default init, Adam
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    assert train(model, opt, *blobs(), tmp_path / "tanh.sqlite", num_classes=4) == []
    torch.manual_seed(0)
    x, y = blobs(classes=2)
    model = nn.Sequential(mlp([20, 32, 1]), nn.Sigmoid())  # confident at the end, by design
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    target = y.float()[:, None]
    found = train(model, opt, x, target, tmp_path / "bce.sqlite", loss_fn=F.binary_cross_entropy)
    assert found == []
