"""What netdoctor.checkup judges without torch: the edges of each finding on plain numbers."""

from __future__ import annotations

import math

import pytest

from netdoctor.rules.checkup_checks import (
    CHECKS,
    THRESHOLDS,
    Attempt,
    InitFacts,
    double_softmax_finding,
    first_loss_finding,
    fitted,
    nonfinite_finding,
    overfit_finding,
    targets_off_scale,
    unused_params_finding,
)
from netdoctor.rules.fixes import FIXES


def facts(**changes) -> InitFacts:
    """A 4-class classifier's first step on a batch of 64: first loss at chance."""
    base = dict(
        first_loss=1.39, output_finite=True, output_shape=(64, 4), task="classification",
        classes=4, chance_loss=math.log(4), chance_how="uniform", zero_loss=math.log(4),
        output_is_distribution=False, loss_shift_invariant=False, loss_warnings=(),
        unused_params=(), last_module="2", output_layer="2", relu_family=True,
        n_trainable=5000, n_targets=64, batch_size=64,
    )
    return InitFacts(**{**base, **changes})


def falling(start: float, end: float, n: int = 100, tau: float = 20.0) -> tuple[float, ...]:
    return tuple(end + (start - end) * math.exp(-t / tau) for t in range(n))


def attempt(losses, final=None, accuracy=None, lr=1e-2, accuracies=()) -> Attempt:
    final = losses[-1] if final is None else final
    return Attempt("Adam", lr, tuple(losses), final, accuracy, tuple(accuracies))


def test_fitted_by_loss_ratio_or_by_every_sample_right():
    assert fitted(0.05, 1.0, None)
    assert not fitted(0.2, 1.0, None)
    assert fitted(0.35, 1.39, 1.0)  # label smoothing keeps a floor; accuracy says fitted
    assert not fitted(0.35, 1.39, 0.98)
    assert not fitted(math.nan, 1.0, None) and not fitted(-0.5, -1.0, None)


def test_a_batch_fitted_at_some_step_counts_even_if_the_last_update_overshot():
    losses = falling(2.3, 0.01, 40, tau=5.0)
    assert attempt(losses, final=0.4).fitted
    assert not attempt(falling(2.3, 0.5, 40), final=0.5).fitted


def test_a_fitted_batch_is_not_a_finding():
    assert overfit_finding(facts(), [attempt(falling(1.39, 0.01))], set(), False) is None


def test_a_loss_still_falling_at_the_end_says_raise_lr():
    d = overfit_finding(facts(), [attempt(falling(1.39, 0.1, tau=200.0))], set(), False)
    assert d is not None and d.rule == "cannot_overfit_batch"
    assert d.evidence["still_falling"]
    assert d.fixes[0].id == "raise_lr" and "optimizer_factory" in d.fixes[0].text


def test_a_plateau_of_a_small_model_leads_with_capacity_a_large_one_with_the_targets():
    stuck = [attempt(falling(1.39, 1.0, tau=5.0))]
    small = overfit_finding(facts(n_trainable=100), stuck, set(), False)
    large = overfit_finding(facts(n_trainable=100_000), stuck, set(), False)
    assert small is not None and small.fixes[0].id == "more_capacity"
    assert large is not None and large.fixes[0].id == "check_targets"


def test_a_plateau_at_chance_says_the_output_ignores_the_input():
    stuck = [attempt(falling(1.39, 1.3, tau=5.0))]
    d = overfit_finding(facts(n_trainable=100_000), stuck, set(), False)
    assert d is not None and d.evidence["near_chance"]
    assert "ignores the input" in d.fixes[0].text


def test_other_findings_rank_the_fixes_first():
    stuck = [attempt(falling(1.39, 1.0, tau=5.0))]
    d = overfit_finding(facts(), stuck, {"double_softmax", "symmetric_weights"}, False)
    assert d is not None
    assert [f.id for f in d.fixes[:2]] == ["stable_loss", "break_symmetry"]
    assert d.evidence["explained_by"] == ["double_softmax", "symmetric_weights"]


def test_a_shape_warning_from_the_loss_leads():
    warned = facts(task="regression", output_shape=(64, 1), loss_warnings=(
        "Using a target size (torch.Size([64])) that is different to the input size",))
    d = overfit_finding(warned, [attempt(falling(2.9, 2.8, tau=5.0))], set(), False)
    assert d is not None and d.fixes[0].id == "check_targets" and "[64, 1]" in d.fixes[0].text


def test_divergence_at_every_step_size_says_lower_lr():
    blown = [attempt((1.0, 3.0, math.inf), final=math.nan, lr=1e-2),
             attempt((1.0, 2.0, 5.0), final=6.0, lr=1e-3)]
    assert all(a.diverged for a in blown)
    d = overfit_finding(facts(), blown, set(), False)
    assert d is not None and d.fixes[0].id == "lower_lr"
    assert [a["lr"] for a in d.evidence["attempts"]] == [1e-2, 1e-3]


def test_no_judgement_on_a_nan_or_negative_first_loss():
    assert overfit_finding(facts(), [attempt((math.nan, math.nan))], set(), False) is None
    assert overfit_finding(facts(), [attempt((-1.0, -1.1))], set(), False) is None


def test_regression_targets_off_scale():
    assert targets_off_scale(facts(task="regression", target_mean=5000.0, target_std=50.0))
    assert targets_off_scale(facts(task="regression", target_mean=0.0, target_std=40.0))
    assert not targets_off_scale(facts(task="regression", target_mean=0.3, target_std=1.0))
    assert not targets_off_scale(facts(target_mean=5000.0, target_std=50.0))  # classification


def test_first_loss_against_the_larger_of_chance_and_zero_outputs():
    assert first_loss_finding(facts(first_loss=4.0)) is None  # < 3 × log 4
    d = first_loss_finding(facts(first_loss=9.0))
    assert d is not None and d.rule == "poor_init" and d.fixes[0].id == "he_init"
    # targets far from zero: a model with small outputs scores their mean square, not chance
    far = facts(task="regression", first_loss=9e4, chance_loss=2.0, zero_loss=1e5,
                relu_family=False)
    assert first_loss_finding(far) is None
    d = first_loss_finding(facts(task="regression", first_loss=400.0, chance_loss=2.0,
                                 zero_loss=3.0, relu_family=False))
    assert d is not None and d.fixes[0].id == "xavier_init"


def test_double_softmax_needs_both_witnesses():
    assert double_softmax_finding(facts(output_is_distribution=True)) is None
    assert double_softmax_finding(facts(loss_shift_invariant=True)) is None
    d = double_softmax_finding(facts(output_is_distribution=True, loss_shift_invariant=True))
    assert d is not None and d.severity.value == "error" and d.fixes[0].id == "stable_loss"
    assert d.evidence["loss_floor"] == pytest.approx(math.log(3 + math.e) - 1)


def test_nan_and_unused_parameters_fallbacks():
    assert nonfinite_finding(facts()) is None
    d = nonfinite_finding(facts(first_loss=math.nan, output_finite=False))
    assert d is not None and d.rule == "nan_loss" and "model's output" in d.message
    assert unused_params_finding(facts()) is None
    d = unused_params_finding(facts(unused_params=("aux.weight", "aux.bias")))
    assert d is not None and d.layer == "aux" and d.evidence["count"] == 2


def test_the_checkups_own_id_is_documented_with_sourced_thresholds():
    doc = CHECKS["cannot_overfit_batch"]
    for section in (doc.what, doc.why, doc.how_to_fix, doc.example):
        assert len(section) > 40
    assert len({t.name for t in THRESHOLDS}) == len(THRESHOLDS)
    assert all(t.source and t.description for t in THRESHOLDS)
    assert "check_targets" in FIXES
