"""unnormalized_inputs: the first layer's input far from zero mean and unit scale."""

from __future__ import annotations

import math

import pytest

from netdoctor.rules import get_rule
from netdoctor.runlog.schema import ActStat

from .act_sites import set_stat
from .factory import Layer, make_run, mlp, noisy_decay

RULE = get_rule("unnormalized_inputs")
N = 100


def check(run, **overrides):
    return RULE.check(run, {**RULE.defaults(), **overrides})


def fed(mean=0.0, std=1.0, low=-3.0, high=3.0, zeros=0.0, layers=None):
    """A run whose first layer's input (site "layers.0 (input)") has these statistics."""
    run = make_run(noisy_decay(N), layers=layers or mlp(3), input_scale=std)
    name = f"{(layers or mlp(3))[0].module} (input)"
    set_stat(run, name, ActStat.MEAN, mean)
    set_stat(run, name, ActStat.MIN, low)
    set_stat(run, name, ActStat.MAX, high)
    return set_stat(run, name, ActStat.ZERO_FRAC, zeros)


def test_raw_columns_in_the_thousands():
    (d,) = check(fed(mean=1440.0, std=1160.0, low=1.0, high=4000.0))
    assert d.rule == "unnormalized_inputs" and d.severity.value == "warning"
    assert d.layer == "layers.0" and d.step == 0
    assert d.evidence["problem"] == "too_large"
    assert d.evidence["rms"] == pytest.approx(math.hypot(1440, 1160))
    assert d.evidence["looks_like_raw_pixels"] is False
    assert [f.id for f in d.fixes] == ["normalize_inputs", "batchnorm"]
    assert "x_train.mean(0)" in d.fixes[0].text
    assert "mean 1.44e+03 and std 1.16e+03" in d.message


def test_raw_pixels_get_the_divide_by_255_advice():
    (d,) = check(fed(mean=120.0, std=70.0, low=0.0, high=255.0))
    assert d.evidence["looks_like_raw_pixels"] is True
    assert "x / 255" in d.fixes[0].text and "Normalize" in d.fixes[0].text


def test_tiny_dense_inputs_but_not_sparse_ones():
    (d,) = check(fed(mean=0.001, std=0.003, low=-0.01, high=0.01))
    assert d.evidence["problem"] == "too_small"
    assert check(fed(mean=0.0005, std=0.005, low=0.0, high=0.3, zeros=0.98)) == []  # bag of words


def test_inputs_far_off_centre():
    (d,) = check(fed(mean=8.0, std=0.2, low=7.3, high=8.9))
    assert d.evidence["problem"] == "off_centre" and "40× its std" in d.message


def test_ordinary_inputs_are_quiet():
    assert check(fed()) == []  # standardised
    assert check(fed(mean=0.45, std=0.25, low=0.0, high=1.0)) == []  # [0, 1] images
    assert check(fed(mean=0.13, std=0.31, low=0.0, high=1.0, zeros=0.8)) == []  # MNIST ToTensor
    assert check(fed(mean=0.0, std=0.05, low=-0.4, high=0.4)) == []  # raw audio
    assert check(fed(mean=0.9, std=0.3, low=0.0, high=1.0)) == []  # mostly-ones binary features


def test_thresholds_are_names_a_user_can_change():
    run = fed(mean=0.0, std=6.0, low=-20, high=20)
    assert check(run) == []
    assert check(run, input_scale=5.0)[0].evidence["problem"] == "too_large"


def test_token_ids_and_a_normalising_first_layer_are_skipped():
    emb = [Layer("emb", "Embedding", "embedding", (32, 10, 16), (100, 16)), *mlp(2)]
    run = make_run(noisy_decay(N), layers=emb)  # the first site is the embedding's output
    assert check(run) == []
    bn = [Layer("bn", "BatchNorm1d", "norm", (32, 20), (20,)), *mlp(2)]
    assert check(fed(mean=500.0, std=300.0, layers=bn)) == []


def test_edges_are_quiet():
    assert check(make_run(noisy_decay(N))) == []  # no sites, no samples
    assert check(make_run(noisy_decay(N), layers=mlp(2))) == []  # no input site measured
    run = fed(mean=500.0, std=300.0)
    set_stat(run, "layers.0 (input)", ActStat.MEAN, math.nan)
    assert check(run) == []
    run = fed(mean=500.0, std=300.0)
    run.act[::2, -1, ActStat.CALLS] = 0  # the input site ran on half the samples: enough
    assert check(run)[0].evidence["samples"] == run.sample_steps.size // 2


# ---- real runs ---------------------------------------------------------------------------------
def test_images_fed_as_raw_pixels(tmp_path):
    torch = pytest.importorskip("torch")
    from torch import nn

    from .act_runs import by_rule, train

    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (512,), generator=g)
    x = (torch.rand(512, 1, 8, 8, generator=g) * 255).round()
    x[y == 1, :, :4] = (x[y == 1, :, :4] * 0.3 + 178).round()  # class 1: a bright top half
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 2))
    opt = torch.optim.SGD(model.parameters(), lr=1e-4)
    found = train(model, opt, x, y, tmp_path / "pixels.sqlite", num_classes=2)
    d = by_rule(found, "unnormalized_inputs")
    assert found[0] is d and d.layer == "1" and d.evidence["looks_like_raw_pixels"] is True
    assert d.fixes[0].id == "normalize_inputs" and 100 < d.evidence["rms"] < 255


def test_standardised_and_unit_range_inputs_are_healthy(tmp_path):
    torch = pytest.importorskip("torch")

    from .act_runs import blobs, mlp, train

    x, y = blobs()
    for name, inputs in (("std", x), ("unit", (x - x.min()) / (x.max() - x.min()))):
        torch.manual_seed(0)
        model = mlp([20, 64, 4])
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        log = tmp_path / f"{name}.sqlite"
        assert train(model, opt, inputs, y, log, steps=240, num_classes=4) == [], name
