"""The numeric helpers the rules share: windowed medians, growth spans, trends, noise."""

from __future__ import annotations

import math

import numpy as np

from netdoctor.rules.series import (
    block_medians,
    falls_less_than,
    growth_spans,
    jump_noise,
    median3,
    positive_log10,
    robust_noise,
)


def test_positive_log10_ignores_what_is_not_a_positive_number():
    logs = positive_log10(np.array([100.0, 0.0, -1.0, math.nan, math.inf]))
    assert logs[0] == 2.0 and np.isnan(logs[1:]).all()


def test_median3_removes_single_spikes():
    assert median3(np.array([1.0, 1.0, 50.0, 1.0, 1.0])).tolist() == [1.0] * 5


def test_block_medians_align_to_the_end():
    medians, offset = block_medians(np.arange(10.0), 3)
    assert offset == 1 and medians.tolist() == [2.0, 5.0, 8.0]
    medians, _ = block_medians(np.array([1.0, math.nan, math.nan, math.nan]), 4)
    assert np.isnan(medians).all()  # fewer than half finite


def test_growth_spans_find_geometric_growth_and_date_its_start():
    values = np.concatenate([np.ones(100), 1.3 ** np.arange(1, 61)])
    span = next(growth_spans(values, 2.0, 5, 100.0))
    assert 90 <= span.start <= 102 and span.total >= 100 and span.held is None


def test_growth_spans_ignore_noise():
    noise = np.exp(np.random.default_rng(0).normal(0, 0.5, 20_000))
    assert list(growth_spans(noise, 2.0, 5, 100.0)) == []


def test_growth_spans_report_whether_the_level_held():
    values = np.concatenate([np.ones(50), [10.0, 100.0, 1e3, 1e4], np.ones(20)])
    assert next(growth_spans(values, 2.0, 5, 100.0)).held is False
    values[54:] = 1e4
    assert next(growth_spans(values, 2.0, 5, 100.0)).held is True


def test_falls_less_than_is_scale_free():
    assert falls_less_than(np.linspace(1.0, 0.5, 20), 0.1) is False
    assert falls_less_than(np.linspace(1e-6, 0.97e-6, 20), 0.1) is True
    assert falls_less_than(np.array([1.0]), 0.1) is None


def test_robust_noise_ignores_trends():
    assert robust_noise(np.linspace(0.0, 1.0, 50)) == 0.0
    wiggle = 1.0 + 0.1 * np.random.default_rng(0).normal(size=500)
    assert 0.05 < robust_noise(wiggle) < 0.15


def test_jump_noise_ignores_bends_and_sees_jumps():
    assert jump_noise(np.linspace(0.0, 1.0, 8)) < 1e-12
    assert jump_noise(np.array([1.0, 0.8, 0.65, 0.6, 0.62, 0.7, 0.8])) < 0.05  # a U: overfitting
    jumpy = np.array([11.56, 3.33, 5.77, 5.52, 10.79, 6.70, 5.29, 6.33])
    assert jump_noise(jumpy) > 2.0
    assert jump_noise(np.array([1.0, 2.0])) == 0.0
