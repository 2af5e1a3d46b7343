"""The JSON report: design.md's shape, strict JSON, nulls for what is unknown."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from netdoctor.diagnosis import Diagnosis, Fix, Severity
from netdoctor.report.json_report import render_json, report_dict
from netdoctor.runlog import open_run
from netdoctor.runlog.schema import RunStatus

RUN_KEYS = {
    "path", "status", "end_message", "steps", "last_step", "epochs", "started", "ended",
    "duration_s", "device", "model", "n_parameters", "optimizer", "final_loss", "best_val_loss",
    "best_val_epoch", "netdoctor_version", "torch_version", "python_version",
}


def test_shape(small_log: Path) -> None:
    diagnosis = Diagnosis("nan_loss", Severity.ERROR, 3, None, "loss is NaN at step 3",
                          {"loss": float("nan"), "first_bad": np.int64(3)},
                          (Fix("stable_loss", "Use logits and F.cross_entropy."),))
    report = json.loads(render_json(open_run(small_log), [diagnosis]))
    assert set(report) == {"run", "diagnoses"}
    assert set(report["run"]) == RUN_KEYS
    assert report["diagnoses"] == [{
        "rule": "nan_loss", "severity": "error", "step": 3, "layer": None,
        "message": "loss is NaN at step 3", "evidence": {"loss": "nan", "first_bad": 3},
        "fixes": [{"id": "stable_loss", "text": "Use logits and F.cross_entropy."}],
    }]


def test_run_facts(small_log: Path) -> None:
    run = report_dict(open_run(small_log), [])["run"]
    assert run["path"] == str(small_log)
    assert run["status"] == "finished"
    assert run["steps"] == 40 and run["last_step"] == 39 and run["epochs"] == 4
    assert run["started"].startswith("2023-11-14T22:13:20")
    assert run["ended"] is not None and run["duration_s"] > 0
    assert run["device"] == "cpu" and run["model"] == "Sequential" and run["n_parameters"] == 58
    assert run["optimizer"] == {"class": "SGD", "lr": 0.1, "final_lr": 0.1}
    assert math.isclose(run["final_loss"], 0.7 * math.exp(-39 / 20) + 0.05)
    assert run["best_val_epoch"] == 3
    assert run["netdoctor_version"] == "0.1.0"


def test_non_finite_numbers_become_null(make_log) -> None:
    losses = np.linspace(1.0, 0.5, 40)
    losses[-1] = np.inf
    text = render_json(open_run(make_log(losses=losses)), [])
    assert "Infinity" not in text and "NaN" not in text
    assert json.loads(text)["run"]["final_loss"] is None


def test_did_not_finish(make_log) -> None:
    run = report_dict(open_run(make_log(status=RunStatus.RUNNING)), [])["run"]
    assert run["status"] == "did_not_finish"
    assert run["ended"] is None
    assert run["duration_s"] is not None  # from the last step's clock


def test_missing_meta_gives_nulls(tmp_path: Path) -> None:
    from netdoctor.runlog.writer import RunLogWriter

    writer = RunLogWriter(tmp_path / "bare.sqlite", {})
    writer.close(RunStatus.FINISHED)
    run = report_dict(open_run(tmp_path / "bare.sqlite"), [])["run"]
    assert run["status"] == "finished" and run["steps"] == 0
    for key in ("started", "device", "model", "optimizer", "final_loss", "best_val_loss",
                "netdoctor_version", "n_parameters", "last_step"):
        assert run[key] is None, key


def test_garbage_meta_is_ignored(make_log, edit_meta) -> None:
    log = make_log()
    edit_meta(log, created_at=1e300, optimizer="SGD", n_parameters="many")
    run = report_dict(open_run(log), [])["run"]
    assert run["started"] is None and run["n_parameters"] is None
    assert run["optimizer"] == {"class": None, "lr": None, "final_lr": 0.1}
