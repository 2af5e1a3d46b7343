"""The recorded sample logs open without torch and keep their diagnoses (golden expectations).

They also guard the log format: a change that cannot read yesterday's logs fails here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from netdoctor.diagnosis import Severity
from netdoctor.rules import run_rules
from netdoctor.runlog import open_run
from netdoctor.runlog.schema import RunStatus

SAMPLES = Path(__file__).resolve().parents[1] / "sample_runs"

#: sample -> the rules it must raise at warning or error, root cause first
EXPECTED = {
    "healthy": [],
    # the exploding demo is SGD past its stable learning rate: lr_too_high is the root cause
    "exploding": ["lr_too_high", "exploding_gradients", "nan_loss"],
    # the loss never leaves its start: loss_not_decreasing, then underfitting, both caused_by
    "vanishing": ["vanishing_gradients", "loss_not_decreasing", "underfitting"],
    "nan": ["nan_loss"],
    "overfitting": ["overfitting"],
    "underfitting": ["underfitting"],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_run_diagnoses(name):
    run = open_run(SAMPLES / f"{name}.sqlite")
    assert run.status is RunStatus.FINISHED
    loud = [d.rule for d in run_rules(run) if d.severity in (Severity.ERROR, Severity.WARNING)]
    assert loud == EXPECTED[name]


def test_every_sample_is_listed():
    assert {p.stem for p in SAMPLES.glob("*.sqlite")} == set(EXPECTED)
