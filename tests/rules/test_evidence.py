"""Every diagnosis is well-formed: plain evidence, a one-line message, known fix ids, JSON-safe."""

from __future__ import annotations

import json

import numpy as np

from netdoctor.rules import FIXES, run_rules

from .factory import make_run
from .test_exploding import growing_run
from .test_nonfinite import exploded_run
from .test_overfitting import with_epochs
from .test_underfitting import flat
from .test_vanishing import run_with, shrinking

PLAIN = (bool, int, float, str, type(None))


def plain(value) -> bool:
    if isinstance(value, (list, tuple)):
        return all(plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and plain(v) for k, v in value.items())
    return isinstance(value, PLAIN) and not isinstance(value, np.generic)


def problem_runs():
    yield exploded_run()
    yield growing_run()
    yield run_with(shrinking(6, 10.0), activation="Sigmoid", family="bounded")
    yield with_epochs(
        train_loss=list(np.linspace(1, 0.1, 12)),
        val_loss=[1, 0.8, 0.6, 0.5, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1],
    )
    yield make_run(flat(), task={"num_classes": 10})


def test_diagnoses_are_well_formed():
    seen = set()
    for run in problem_runs():
        for d in run_rules(run):
            seen.add(d.rule)
            assert plain(d.evidence), (d.rule, d.evidence)
            assert "\n" not in d.message and ": " in d.message  # facts, then what to do
            assert d.fixes and all(f.id in FIXES and f.text for f in d.fixes)
            assert d.step is None or isinstance(d.step, int)
            json.dumps(d.to_json(), allow_nan=False)
    assert seen == {
        "nan_loss",
        "exploding_gradients",
        "vanishing_gradients",
        "overfitting",
        "underfitting",
        "loss_not_decreasing",  # the flat run is flat from its first step
    }
