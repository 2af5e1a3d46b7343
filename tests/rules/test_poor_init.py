"""poor_init: signal lost with depth, weights off their scale, a first loss far above chance."""

from __future__ import annotations

import math

import numpy as np
import pytest

from netdoctor.rules import get_rule
from netdoctor.runlog.schema import ActStat, ParamStat

from .act_sites import set_stat
from .factory import Layer, make_run, mlp, noisy_decay

RULE = get_rule("poor_init")
N, M = 100, 10
#: PyTorch's default kaiming_uniform(a=sqrt(5)) has RMS sqrt(1/(3 fan_in)): this times He's
DEFAULT = math.sqrt(1 / 6)


def check(run, **overrides):
    return RULE.check(run, {**RULE.defaults(), **overrides})


def deep(
    depth=6,
    profile=None,
    he_times=DEFAULT,
    activation="ReLU",
    family="relu",
    loss=None,
    spread=1.0,
    **kwargs,
):
    """mlp(depth), 64 wide, input 20; weights at ``he_times`` He's scale (default: PyTorch's);
    ``profile`` is the std of each Linear's output at the first sample (default: all 1);
    ``spread`` the weights' UNIT_SPREAD (1: a random init's units, 0: identical units)."""
    layers = mlp(depth, activation=activation, family=family)
    fan_in = np.array([20] + [64] * (depth - 1), dtype=float)
    weight = np.tile(he_times * np.sqrt(2 / fan_in), (M, 1))
    run = make_run(
        loss if loss is not None else noisy_decay(N), layers=layers, weight_rms=weight, **kwargs
    )
    run.param[:, :, ParamStat.UNIT_SPREAD] = spread
    for k, std in enumerate(profile or ()):
        values = np.ones(M)
        values[0] = std
        set_stat(run, f"layers.{2 * k}", ActStat.STD, values)
    return run


def test_pre_activations_shrinking_with_depth_rank_he_init_first():
    (d,) = check(deep(profile=[1, 0.1, 0.01, 1e-3, 1e-4]))
    assert d.rule == "poor_init" and d.severity.value == "warning" and d.step == 0
    assert d.evidence["std_ratio_per_layer"] == pytest.approx(0.1)
    assert d.evidence["std_ratio_total"] == pytest.approx(1e-4)
    assert [f.id for f in d.fixes] == ["he_init", "batchnorm"]
    assert "shrinks ×0.1 per layer, from 1 at layers.0 to 1.0e-04 at layers.8" in d.message
    assert "too small" in d.message


def test_pre_activations_growing_with_depth_in_a_tanh_net_rank_xavier_first():
    (d,) = check(deep(profile=[1, 8, 70, 500, 4000], activation="Tanh", family="bounded"))
    assert "grows" in d.message and "too large" in d.message
    assert d.fixes[0].id == "xavier_init"


def test_default_init_and_a_mild_decay_are_healthy():
    assert check(deep()) == []  # 0.41x He: PyTorch's default
    assert check(deep(profile=[1, 0.5, 0.25, 0.125, 0.07])) == []  # ~14x over 5 layers
    assert check(deep(profile=[1, 0.05, 0.05, 0.05, 0.05])) == []  # 20x, then flat
    assert check(deep(he_times=1.0)) == []  # He itself


def test_weights_far_below_their_scale_name_the_worst_layer():
    run = deep(he_times=0.05)  # N(0, 0.01)-like on 64 inputs
    (d,) = check(run)
    assert d.layer == "layers.0"  # all equally off: the first
    assert d.evidence["worst_scheme"] == "He"
    assert d.evidence["worst_ratio"] == pytest.approx(0.05, rel=1e-3)
    assert d.evidence["layers_off_scale"] == [f"layers.{2 * k}.weight" for k in range(5)]
    assert d.fixes[0].id == "he_init"
    assert "×0.05 the He scale" in d.message and "for the ReLU after it" in d.message
    assert check(run, weight_ratio=25.0) == []  # 20x off: within a looser threshold


def test_tanh_weights_are_measured_against_glorot():
    glorot_in_he = math.sqrt(2 / 128) / math.sqrt(2 / 64)  # 64 -> 64 layers: 0.71
    (d,) = check(deep(he_times=12 * glorot_in_he, activation="Tanh", family="bounded"))
    assert d.evidence["worst_scheme"] == "Glorot" and d.fixes[0].id == "xavier_init"
    assert d.evidence["weight_scales"]["layers.2.weight"] == pytest.approx(12, rel=1e-3)


def test_constant_weights_and_replaced_first_weights_are_left_to_other_rules():
    assert check(deep(he_times=0.0)) == []  # zero weights: symmetric_weights
    assert check(deep(he_times=0.05, spread=0.0)) == []  # constant init: symmetric_weights
    thrown = deep(he_times=20)  # the first update was most of the weight: not the init any more
    weight = thrown.param[:, :, ParamStat.WEIGHT_NORM]
    thrown.param[:, :, ParamStat.UPDATE_NORM] = 0.8 * weight
    assert check(thrown) == []


def test_normalisation_layers_leave_only_the_first_loss_to_judge():
    layers = [*mlp(6)[:1], Layer("bn", "BatchNorm1d", "norm", (32, 64), (64,)), *mlp(6)[1:]]
    run = make_run(noisy_decay(N), layers=layers, weight_rms=np.full((M, 7), 1e-3))
    assert check(run) == []


def test_a_first_loss_far_above_chance_points_at_the_output_layer():
    loss = noisy_decay(N, start=30.0, floor=0.5)
    (d,) = check(deep(loss=loss, task={"num_classes": 10}))
    assert d.evidence["first_loss_vs_chance"] > 5 and d.evidence["chance_loss"] == pytest.approx(
        math.log(10)
    )
    assert d.layer == "layers.10" and d.evidence["output_layer"] == "layers.10"
    assert d.fixes[0].id == "he_init" and "layers.10" in d.fixes[0].text
    assert "confidently wrong" in d.message
    # near chance, no num_classes, or raw inputs to blame: nothing to say about the init
    assert check(deep(loss=noisy_decay(N, start=2.4), task={"num_classes": 10})) == []
    assert check(deep(loss=loss)) == []
    assert check(deep(loss=loss, task={"num_classes": 10}, input_scale=500.0)) == []


def test_edges_are_quiet():
    assert check(make_run(noisy_decay(N))) == []  # no samples
    assert check(make_run(noisy_decay(N), layers=[Layer("fc", weight=(10, 20))])) == []
    run = deep(profile=[1, math.nan, 0.01, math.nan, 1e-4])  # NaN stds are skipped
    assert check(run)[0].evidence["std_profile"] == pytest.approx(
        {"layers.0": 1, "layers.4": 0.01, "layers.8": 1e-4}, rel=1e-5
    )
    assert check(deep(profile=[1, 1e-3], depth=3)) == []  # two hidden layers: no trend


# ---- real runs ---------------------------------------------------------------------------------
def _init(model, fn):
    from torch import nn

    for m in model.modules():
        if isinstance(m, nn.Linear):
            fn(m)
    return model


def test_deep_relu_net_with_std_0_01_weights(tmp_path):
    torch = pytest.importorskip("torch")
    from torch import nn

    from .act_runs import blobs, by_rule, mlp, train

    torch.manual_seed(0)
    model = _init(
        mlp([20] + [64] * 7 + [4]),
        lambda m: (nn.init.normal_(m.weight, std=0.01), nn.init.zeros_(m.bias)),
    )
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    found = train(model, opt, *blobs(), tmp_path / "small.sqlite", num_classes=4)
    d = by_rule(found, "poor_init")
    assert found[0] is d and d.step == 0  # the root cause, listed first
    assert d.evidence["std_ratio_per_layer"] < 0.2 and d.fixes[0].id == "he_init"


def test_deep_tanh_net_with_std_0_01_weights(tmp_path):
    torch = pytest.importorskip("torch")
    from torch import nn

    from .act_runs import blobs, by_rule, mlp, train

    torch.manual_seed(0)
    model = _init(
        mlp([20] + [64] * 7 + [4], act=nn.Tanh),
        lambda m: (nn.init.normal_(m.weight, std=0.01), nn.init.zeros_(m.bias)),
    )
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    found = train(model, opt, *blobs(), tmp_path / "tanh.sqlite", num_classes=4)
    d = by_rule(found, "poor_init")
    assert found[0] is d and d.fixes[0].id == "xavier_init"


def test_an_output_layer_initialised_large(tmp_path):
    torch = pytest.importorskip("torch")
    from torch import nn

    from .act_runs import blobs, by_rule, mlp, train

    torch.manual_seed(0)
    model = mlp([20, 64, 4])
    nn.init.normal_(model[2].weight, std=5.0)  # the first loss is ~10x chance
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    found = train(model, opt, *blobs(), tmp_path / "head.sqlite", num_classes=4)
    d = by_rule(found, "poor_init")
    assert d.layer == "2" and d.evidence["first_loss_vs_chance"] >= 5
    assert "initialise 2 so the first predictions are near chance" in d.fixes[0].text


def test_default_and_he_init_are_healthy(tmp_path):
    torch = pytest.importorskip("torch")
    from torch import nn

    from .act_runs import blobs, mlp, train

    x, y = blobs()
    for name, sizes, init in (
        ("default3", [20, 64, 64, 4], None),
        ("default8", [20] + [64] * 7 + [4], None),  # shrinks ~0.4x/layer until the biases
        ("he6", [20] + [64] * 5 + [4], nn.init.kaiming_normal_),
    ):
        torch.manual_seed(0)
        model = mlp(sizes)
        if init is not None:
            _init(
                model, lambda m, f=init: (f(m.weight, nonlinearity="relu"), nn.init.zeros_(m.bias))
            )
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        assert train(model, opt, x, y, tmp_path / f"{name}.sqlite", num_classes=4) == [], name
