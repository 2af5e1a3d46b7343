"""double_softmax: softmax outputs fed to a loss that applies its own softmax.

Synthetic logs cover the edges (each of the three conditions alone, LogSoftmax, a head that is
not a softmax, too few steps); real tiny runs show it found on a monitored run and quiet on
healthy ones, including a softmax followed by a log and NLLLoss.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from netdoctor.rules import get_rule
from netdoctor.rules.double_softmax import ce_floor, row_entropy
from netdoctor.runlog.schema import ActStat

from .act_sites import set_stat
from .factory import Layer, act, make_run

RULE = get_rule("double_softmax")
C = 4
N = 200


def check(run, **overrides):
    return RULE.check(run, {**RULE.defaults(), **overrides})


def purity_std(purity: float, classes: int = C) -> float:
    """The std of all entries of probability rows whose mean sum of squares is ``purity``."""
    return math.sqrt(purity / classes - 1.0 / classes**2)


def softmax_run(
    loss: np.ndarray,
    *,
    purity: float = 0.97,
    classes: int = C,
    last: Layer | None = None,
    low: float = 0.0,
    high: float = 1.0,
):
    """Linear, ReLU, Linear(classes), then ``last`` (default an nn.Softmax) with outputs of
    ``purity`` in [``low``, ``high``]."""
    head = Layer("head", out_shape=(32, classes), weight=(classes, 64))
    last = last or act("softmax", "Softmax", "softmax")
    layers = [Layer("fc", weight=(64, 20)), act("relu"), head, last]
    run = make_run(loss, layers=layers)
    set_stat(run, last.module, ActStat.MEAN, 1.0 / classes)
    set_stat(run, last.module, ActStat.STD, purity_std(purity, classes))
    set_stat(run, last.module, ActStat.MIN, low)
    set_stat(run, last.module, ActStat.MAX, high)
    return run


def plateau(at: float, start: float = math.log(C), n: int = N, seed: int = 0) -> np.ndarray:
    """A loss falling from ``start`` to ``at`` and staying there (never below it)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    curve = at + (start - at) * np.exp(-t / (n / 8))
    return curve + np.abs(rng.normal(0, 0.01, n))


def test_floor_and_entropy_values():
    assert ce_floor(2) == pytest.approx(math.log(1 + math.e) - 1)
    assert ce_floor(10) == pytest.approx(1.4612, abs=1e-4)
    assert row_entropy(1 / C, C) == pytest.approx(math.log(C))
    assert row_entropy(1.0, C) == pytest.approx(0.0, abs=1e-9)
    assert 0 < row_entropy(0.6, C) < math.log(C)


def test_loss_on_the_floor_with_confident_softmax_is_an_error_with_stable_loss():
    floor = ce_floor(C)
    (d,) = check(softmax_run(plateau(floor)))
    assert d.rule == "double_softmax" and d.severity.value == "error"
    assert d.layer == "softmax"
    assert d.evidence["classes"] == C
    assert d.evidence["loss_floor"] == pytest.approx(floor)
    assert d.evidence["lowest_loss"] >= floor
    assert d.fixes[0].id == "stable_loss" and "remove the softmax" in d.fixes[0].text
    assert "never went below 0.744" in d.message


@pytest.mark.parametrize("classes", [2, 10, 100])
def test_any_number_of_classes_is_read_from_the_mean(classes):
    floor = ce_floor(classes)
    run = softmax_run(plateau(floor + 0.05, math.log(classes)), classes=classes, purity=0.95)
    (d,) = check(run)
    assert d.evidence["classes"] == classes


def test_loss_below_the_floor_is_a_log_after_the_softmax():
    assert check(softmax_run(plateau(0.05))) == []


def test_loss_far_above_the_floor_is_left_alone():
    floor = ce_floor(C)
    halfway = floor + 0.7 * (math.log(C) - floor)
    assert check(softmax_run(plateau(halfway))) == []


def test_unconfident_outputs_are_left_alone():
    """A model still unsure of itself: its loss could be a real one on log-probabilities."""
    assert check(softmax_run(plateau(ce_floor(C) + 0.02), purity=0.5)) == []


def test_log_softmax_and_out_of_range_outputs_are_not_probabilities():
    floor = ce_floor(C)
    logsm = act("logsm", "LogSoftmax", "softmax")
    assert check(softmax_run(plateau(floor), last=logsm, low=-9.0, high=0.0)) == []
    assert check(softmax_run(plateau(floor), low=-0.5)) == []


def test_a_model_that_ends_in_a_linear_layer_is_left_alone():
    layers = [Layer("fc", weight=(64, 20)), act("relu"), Layer("head", out_shape=(32, C))]
    assert check(make_run(plateau(ce_floor(C)), layers=layers)) == []


def test_too_few_steps_are_not_judged():
    assert check(softmax_run(plateau(ce_floor(C), n=8))) == []


def test_thresholds_can_be_tightened():
    floor = ce_floor(C)
    run = softmax_run(plateau(floor + 0.2))
    assert check(run)
    assert check(run, near_floor=0.1) == []


# ---- real runs -----------------------------------------------------------------------------------


@pytest.fixture
def loops():
    pytest.importorskip("torch")
    from . import act_runs

    return act_runs


def _softmax_mlp(torch, last):
    from torch import nn

    return nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, C), last)


def test_found_on_a_real_run_with_a_softmax_before_cross_entropy(loops, tmp_path: Path):
    import torch
    from torch import nn

    torch.manual_seed(0)
    x, y = loops.blobs(1024, 20, C)
    model = _softmax_mlp(torch, nn.Softmax(dim=1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    found = loops.train(model, opt, x, y, tmp_path / "ds.sqlite", steps=300)
    d = loops.by_rule(found, "double_softmax")
    assert found[0] is d  # the root cause comes first
    assert d.layer == "3" and d.evidence["classes"] == C
    assert d.fixes[0].id == "stable_loss"
    for other in found[1:]:  # what it causes hangs under it
        assert other.evidence.get("caused_by") == "double_softmax", other.rule


@pytest.mark.parametrize(
    "last, loss",
    [
        ("logsoftmax", "nll"),  # log-probabilities and NLLLoss: right
        ("softmax", "log_nll"),  # probabilities, a log taken by hand, NLLLoss: right too
        ("none", "ce"),  # logits and cross-entropy: the textbook
    ],
)
def test_healthy_runs_are_quiet(loops, tmp_path: Path, last, loss):
    import torch
    import torch.nn.functional as F
    from torch import nn

    torch.manual_seed(0)
    x, y = loops.blobs(1024, 20, C)
    tail = {"logsoftmax": nn.LogSoftmax(dim=1), "softmax": nn.Softmax(dim=1),
            "none": nn.Identity()}[last]
    loss_fn = {
        "nll": F.nll_loss,
        "log_nll": lambda p, t: F.nll_loss(torch.log(p + 1e-8), t),
        "ce": F.cross_entropy,
    }[loss]
    model = _softmax_mlp(torch, tail)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    found = loops.train(model, opt, x, y, tmp_path / "ok.sqlite", steps=300, loss_fn=loss_fn)
    assert found == [], [(d.rule, d.message) for d in found]
