"""lr_too_low: tiny updates with a loss that barely moves; quiet on warm-ups, annealing and
healthy runs; agrees with underfitting's advice and leads it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from netdoctor.rules import get_rule, run_rules

from .factory import Layer, make_run, mlp, noisy_decay
from .real_loops import real
from .test_underfitting import flat

RULE = get_rule("lr_too_low")
HE = math.sqrt(2 / 64)
SGD = {"class": "SGD", "groups": [{"lr": 1e-5, "momentum": 0.9, "weight_decay": 0.0}]}
ADAM = {"class": "Adam", "groups": [{"lr": 1e-6, "weight_decay": 0.0}]}


def check(run):
    return RULE.check(run, RULE.defaults())


def slow_run(n: int = 200, ratio: float = 1e-5, **kw):
    """A flat loss at chance while every update is ``ratio`` of its weight."""
    kw.setdefault("layers", mlp(3))
    kw.setdefault("optimizer", SGD)
    kw.setdefault("lr", 1e-5)
    return make_run(flat(n), update_rms=ratio * HE, **kw)


def test_tiny_updates_and_a_flat_loss():
    (d,) = check(slow_run())
    assert d.rule == "lr_too_low" and d.severity.value == "warning" and d.step == 0
    assert d.evidence["update_ratio"] == pytest.approx(1e-5, rel=1e-3)
    assert d.evidence["loss_progress"] < 0.05 and d.evidence["lr"] == pytest.approx(1e-5)
    assert [f.id for f in d.fixes] == ["raise_lr", "adam"]
    assert "lr=0.001" in d.fixes[0].text and "momentum=0.9" in d.fixes[0].text  # ×100, capped
    assert "1e-05" in d.message.replace("1.0e-05", "1e-05") and ": " in d.message


def test_adam_is_not_suggested_to_an_adam_run_and_the_snippet_names_its_optimizer():
    (d,) = check(slow_run(optimizer=ADAM, lr=1e-6, ratio=2e-5))
    assert [f.id for f in d.fixes] == ["raise_lr"]
    assert "torch.optim.Adam(model.parameters(), lr=5e-05)" in d.fixes[0].text


def test_healthy_update_ratios_are_quiet_even_when_the_loss_is_flat():
    assert check(slow_run(ratio=1e-3)) == []  # flat for another reason: not the step size


def test_a_falling_loss_is_not_too_slow_whatever_the_ratio():
    run = make_run(noisy_decay(200), layers=mlp(3), update_rms=1e-5 * HE, optimizer=SGD)
    assert check(run) == []


def test_only_the_fastest_layer_counts():
    # vanishing gradients starve the first layers; the last one moves at a healthy pace
    ratio = np.tile([1e-7, 1e-6, 2e-3], (20, 1))
    run = make_run(flat(200), layers=mlp(3), update_rms=ratio * HE, optimizer=SGD)
    assert check(run) == []


def test_without_the_optimizer_updates_are_not_measured():
    assert check(make_run(flat(200), layers=mlp(3))) == []  # update_rms None: NaN


def test_too_few_steps_and_no_samples_are_quiet():
    assert check(slow_run(n=20)) == []
    assert check(slow_run(sample_steps=[])) == []
    assert check(slow_run(sample_steps=[0, 10])) == []  # fewer than min_samples


def test_a_single_layer():
    layers = [Layer("fc", weight=(10, 20))]
    (d,) = check(slow_run(layers=layers))
    assert d.evidence["fastest_param"] == "fc.weight"


def test_warm_up_and_annealed_tail_are_judged_at_the_peak_rate():
    n = 200
    lr = np.concatenate(
        [np.linspace(1e-6, 1e-2, 50), np.full(100, 1e-2), np.geomspace(1e-2, 1e-6, 50)]
    )
    ratio = (lr[::10] / 1e-2 * 2e-3)[:, None] * np.ones((1, 3))  # proportional to the rate
    run = make_run(flat(n), layers=mlp(3), lr=lr, update_rms=ratio * HE, optimizer=SGD)
    assert check(run) == []  # 2e-3 at the peak: healthy, however slow the ends are


def test_a_live_run_still_warming_up_is_left_alone():
    lr = np.linspace(1e-7, 1e-4, 200)
    kw = {"lr": lr, "status": "running", "writer_alive": True}
    assert check(slow_run(**kw)) == []
    assert check(slow_run(lr=lr)) != []  # finished: judged at its peak


def test_a_model_that_already_knew_the_task_is_not_slow():
    run = slow_run(task={"num_classes": 10})
    assert check(run) != []  # flat at chance: slow
    low = make_run(
        flat(200, level=0.2),
        layers=mlp(3),
        update_rms=1e-5 * HE,
        optimizer=SGD,
        task={"num_classes": 10},
    )
    assert check(low) == []  # flat at 9 % of chance from the first step: a resumed model


def _scheduled(lr: np.ndarray, loss: np.ndarray):
    """Updates proportional to the rate (2e-3 of the weights at 1e-2), SGD."""
    ratio = (lr[::10] / 1e-2 * 2e-3)[:, None] * np.ones((1, 3))
    return make_run(loss, layers=mlp(3), lr=lr, update_rms=ratio * HE, optimizer=SGD)


def test_a_rate_decayed_to_nothing_while_the_loss_was_falling():
    n = 300
    lr = 1e-2 * 0.5 ** (np.arange(n) // 10)  # StepLR(10, 0.5) stepped per batch
    loss = np.concatenate([np.linspace(2.3, 1.2, 60), np.full(n - 60, 1.2)])
    (d,) = check(_scheduled(lr, loss))
    assert d.evidence["criterion"] == "decayed" and d.step == d.evidence["cut_step"] == 40
    assert d.evidence["decayed_share"] > 0.8 and d.evidence["update_ratio"] < 1e-3
    assert [f.id for f in d.fixes] == ["raise_lr"] and "once per epoch" in d.fixes[0].text


def test_annealing_at_the_end_and_cuts_after_convergence_are_healthy():
    n = 300
    t = np.arange(n) / n
    cosine = 1e-2 * 0.5 * (1 + np.cos(np.pi * t))  # down to 0, but only at the very end
    assert check(_scheduled(cosine, noisy_decay(n))) == []
    plateau = np.where(np.arange(n) < 100, 1e-2, 1e-5)  # cut once the loss had levelled off
    loss = np.concatenate([np.geomspace(2.3, 0.3, 60), np.full(n - 60, 0.3)])
    assert check(_scheduled(plateau, loss)) == []


def test_underfitting_agrees_and_comes_after_it():
    found = run_rules(slow_run(task={"num_classes": 10}))
    rules = [d.rule for d in found]
    assert rules[0] == "lr_too_low" and "underfitting" in rules
    under = found[rules.index("underfitting")]
    assert under.evidence["caused_by"] in ("lr_too_low", "loss_not_decreasing")
    assert under.fixes[0].id == "raise_lr"  # the same advice, from the same ratio


# ---- real runs ---------------------------------------------------------------------------------
def test_a_learning_rate_typo_in_sgd():
    found = run_rules(real("sgd_lr_typo"))
    d = found[0]
    assert d.rule == "lr_too_low"
    assert d.evidence["update_ratio"] < 1e-4 and d.evidence["lr"] == pytest.approx(1e-5)
    assert [f.id for f in d.fixes] == ["raise_lr", "adam"]
    for after in found[1:]:  # the flat loss and the underfitting follow, and agree
        assert after.evidence["caused_by"] and after.fixes[0].id == "raise_lr"


def test_adam_at_one_millionth():
    (d,) = [d for d in run_rules(real("adam_tiny_lr")) if d.rule == "lr_too_low"]
    assert d.evidence["update_ratio"] < 1e-4 and [f.id for f in d.fixes] == ["raise_lr"]


def test_a_scheduler_stepped_per_batch():
    found = run_rules(real("scheduler_per_batch"))
    (d,) = [d for d in found if d.rule == "lr_too_low"]
    assert d.evidence["criterion"] == "decayed" and d.evidence["final_lr"] < 1e-5
    assert "per batch" in d.message


@pytest.mark.parametrize(
    "name",
    [
        "warmup_cosine",
        "adamw_plateau",
        "sgd_momentum_step",
        "frozen_backbone",
        "lstm_adam",
        "zero_head",
    ],
)
def test_healthy_real_runs_are_quiet(name):
    assert check(real(name)) == []
