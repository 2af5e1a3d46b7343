"""nan_loss: the first non-finite step, where it came from, and what led there."""

from __future__ import annotations

import math

import numpy as np

from netdoctor.rules import get_rule, run_rules
from netdoctor.runlog.schema import ActStat

from .factory import healthy_grad_norm, make_run, mlp, noisy_decay, nonfinite_event


def check(run):
    rule = get_rule("nan_loss")
    return rule.check(run, rule.defaults())


def exploded_run(n: int = 200, start: int = 150, bad: int = 170):
    """Healthy until ``start``, then grad norm ×1.8 and loss ×1.3 per step, NaN from ``bad``."""
    loss, grad = noisy_decay(n), healthy_grad_norm(n)
    k = np.arange(1, bad - start + 1)
    grad[start:bad] = grad[start - 1] * 1.8**k
    loss[start:bad] = loss[start - 1] * 1.3**k
    loss[bad:] = math.nan
    rows = range(bad, n)
    event = nonfinite_event(bad, "activation", site="layers.2", module="layers.2")
    return make_run(
        loss,
        grad_norm=grad,
        lr=0.5,
        layers=mlp(3),
        grad_nonfinite=rows,
        act_nonfinite=rows,
        events=[event],
    )


def test_nan_after_explosion_is_reported_after_its_cause():
    found = run_rules(exploded_run())
    assert [d.rule for d in found][:2] == ["exploding_gradients", "nan_loss"]
    nan = found[1]
    assert nan.severity.value == "error"
    assert nan.step == 170 and nan.layer == "layers.2"
    assert nan.evidence["followed_explosion"] is True
    assert nan.evidence["caused_by"] == "exploding_gradients"
    assert "caused_by" not in found[0].evidence
    assert nan.evidence["grad_norm_growth"] > 1e3
    assert nan.evidence["lr"] == 0.5
    assert "exploding gradients" in nan.message and "170" in nan.message
    assert [f.id for f in nan.fixes][:2] == ["grad_clipping", "lower_lr"]


def test_loss_source_ranks_stable_loss_first():
    n = 200
    loss = noisy_decay(n)
    loss[120] = math.inf
    loss[121:] = math.nan
    event = nonfinite_event(120, "loss", loss=math.inf)
    run = make_run(
        loss,
        grad_norm=healthy_grad_norm(n),
        layers=mlp(3),
        grad_nonfinite=range(120, n),
        act_nonfinite=range(121, n),
        events=[event],
    )
    found = run_rules(run)
    assert [d.rule for d in found] == ["nan_loss"]
    d = found[0]
    assert (d.step, d.layer, d.evidence["source"]) == (120, None, "loss")
    assert d.evidence["followed_explosion"] is False
    assert [f.id for f in d.fixes] == ["stable_loss", "lower_lr"]
    assert "inf" in d.message and "CrossEntropyLoss" in d.message


def test_input_source_points_at_the_data():
    n = 50
    event = nonfinite_event(0, "input", site="layers.0 (input)", module="layers.0")
    run = make_run(
        [math.nan] * n,
        grad_norm=[math.nan] * n,
        layers=mlp(3),
        act_nonfinite=range(n),
        events=[event],
    )
    (d,) = check(run)
    assert (d.step, d.layer, d.evidence["source"]) == (0, "layers.0", "input")
    assert d.fixes[0].id == "normalize_inputs"
    assert "torch.isfinite(x).all()" in d.fixes[0].text
    assert "input of layers.0" in d.message


def _activation_nan(loss):
    n = loss.size
    loss[80:] = math.nan
    event = nonfinite_event(80, "activation", site="layers.2", module="layers.2")
    return make_run(
        loss,
        grad_norm=healthy_grad_norm(n),
        layers=mlp(3),
        act_nonfinite=range(80, n),
        events=[event],
    )


def test_activation_without_explosion_leads_with_an_epsilon_in_that_layer():
    # a home-made batchnorm dividing by h.std() without eps: no explosion, the loss was falling
    (d,) = check(_activation_nan(noisy_decay(120)))
    assert (d.step, d.layer) == (80, "layers.2")
    assert [f.id for f in d.fixes] == ["stable_loss", "lower_lr", "grad_clipping"]
    assert "layers.2" in d.fixes[0].text and "1e-5" in d.fixes[0].text
    assert d.evidence["followed_explosion"] is False and d.evidence["loss_rose_before"] is False
    assert "epsilon" in d.message and "layers.2" in d.message


def test_activation_nan_after_a_climbing_loss_leads_with_the_learning_rate():
    loss = noisy_decay(120, noise=0.02)
    loss[65:80] = loss[64] * 1.15 ** np.arange(1, 16)  # ×8 in 15 steps, grad norm unchanged
    (d,) = check(_activation_nan(loss))
    assert d.evidence["followed_explosion"] is False and d.evidence["loss_rose_before"] is True
    assert [f.id for f in d.fixes] == ["lower_lr", "grad_clipping", "stable_loss"]


def test_loss_source_has_no_layer_even_when_the_event_names_one():
    n = 200
    loss = noisy_decay(n)
    loss[120:] = math.nan
    event = nonfinite_event(120, "loss", module="layers.0", param="layers.0.weight")
    run = make_run(loss, grad_norm=healthy_grad_norm(n), layers=mlp(3), events=[event])
    (d,) = check(run)
    assert d.layer is None and d.evidence["module"] is None
    assert "every activation was finite" in d.message


def test_loss_that_overflows_after_an_explosion_is_not_blamed_on_a_log():
    n = 200
    loss, grad = noisy_decay(n), healthy_grad_norm(n)
    k = np.arange(1, 21)
    grad[150:170] = grad[149] * 3.0**k
    loss[150:170] = loss[149] * 9.0**k
    loss[170:] = math.inf
    event = nonfinite_event(170, "loss", loss=math.inf)
    (d,) = check(make_run(loss, grad_norm=grad, layers=mlp(3), events=[event]))
    assert d.evidence["source"] == "loss" and d.evidence["followed_explosion"] is True
    assert [f.id for f in d.fixes] == ["grad_clipping", "lower_lr"]
    assert "exploding gradients" in d.message and "log" not in d.message


def test_gradscaler_calibration_is_not_a_nan():
    n = 1200
    rows = [0, 1, 2, 500, 1000]  # isolated inf-gradient steps, finite loss: fp16 loss scaling
    event = nonfinite_event(0, "gradient", param="layers.0.weight")
    run = make_run(
        noisy_decay(n),
        grad_norm=healthy_grad_norm(n),
        layers=mlp(3),
        grad_nonfinite=rows,
        events=[event],
    )
    assert run_rules(run) == []


def test_persistent_gradient_nan_with_finite_loss_is_reported():
    n = 600
    run = make_run(
        noisy_decay(n),
        grad_norm=healthy_grad_norm(n),
        layers=mlp(3),
        grad_nonfinite=range(300, 400),
    )
    (d,) = check(run)
    assert (d.step, d.evidence["source"], d.evidence["streak"]) == (300, "gradient", 100)


def test_all_nan_run_is_reported_at_step_zero_and_other_rules_stay_quiet():
    n = 40
    run = make_run(
        [math.nan] * n, grad_norm=[math.nan] * n, layers=mlp(3), epochs=[{"val_loss": math.nan}] * 4
    )
    found = run_rules(run)
    assert [d.rule for d in found] == ["nan_loss"]
    assert found[0].step == 0 and found[0].evidence["grad_norm_growth"] is None


def test_short_run_with_nan_is_still_a_fact():
    run = make_run([2.3, 2.2, math.nan], grad_norm=[1.0, 1.1, math.nan])
    (d,) = check(run)
    assert d.step == 2


def test_location_from_sampled_statistics_when_no_event():
    n = 100
    loss = noisy_decay(n)
    loss[50:] = math.nan
    run = make_run(
        loss,
        grad_norm=healthy_grad_norm(n),
        layers=mlp(3),
        sample_every=10,
        act_nonfinite=range(50, n),
    )
    run.act[5, 2, ActStat.NONFINITE] = 12  # sample 5 is step 50; site 2 is layers.2
    (d,) = check(run)
    assert d.evidence["sites"] == ["layers.2"] and d.layer == "layers.2"


def test_healthy_run_is_quiet():
    n = 500
    assert check(make_run(noisy_decay(n), grad_norm=healthy_grad_norm(n), layers=mlp(3))) == []
