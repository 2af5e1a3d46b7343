"""The rich text report, rendered to plain text."""

from __future__ import annotations

import io
import os
import socket
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console, RenderableType

from netdoctor.diagnosis import Diagnosis, Severity
from netdoctor.report.text import (
    format_duration,
    format_fraction,
    format_number,
    format_value,
    render_report,
)
from netdoctor.runlog import open_run
from netdoctor.runlog.schema import RunStatus


def render(renderable: RenderableType, width: int = 120) -> str:
    buffer = io.StringIO()
    Console(file=buffer, width=width, color_system=None, highlight=False).print(renderable)
    return buffer.getvalue()


def report_of(log: Path, diagnoses: list[Diagnosis] | None = None) -> str:
    return render(render_report(open_run(log), diagnoses or []))


def test_summary(small_log: Path) -> None:
    out = report_of(small_log)
    assert str(small_log) in out
    for text in ("finished", "40", "cpu", "Sequential, 58 parameters", "SGD, lr 0.1",
                 "best val loss", "(epoch"):
        assert text in out


def test_healthy_run_says_so(small_log: Path) -> None:
    assert "No problems found" in report_of(small_log)


def test_diagnoses_with_evidence_and_ranked_fixes(small_log: Path, fake_rules) -> None:
    out = report_of(small_log, fake_rules.diagnoses())
    assert "1 error, 1 warning" in out
    assert "ERROR" in out and "WARNING" in out
    assert "exploding_gradients" in out and "step 12" in out and "layer 0" in out
    assert "[x1e7]" in out
    assert "4.1e+06" in out and "1.37e+07" in out  # numbers shortened
    assert "… (8 values)" in out  # long series cut
    assert "inf" in out
    assert out.index("1. grad_clipping") < out.index("2. lower_lr")
    assert out.index("exploding_gradients") < out.index("dead_relu")  # order kept


@pytest.mark.parametrize(
    ("status", "meta", "label"),
    [
        (RunStatus.FINISHED, {}, "finished"),
        (RunStatus.CRASHED, {}, "crashed"),
        (RunStatus.INTERRUPTED, {}, "interrupted"),
        (RunStatus.RUNNING, {}, "did not finish"),  # the writer's host is not this one
        (RunStatus.RUNNING, {"host": socket.gethostname(), "pid": os.getpid()}, "running"),
    ],
)
def test_outcomes(make_log, status: RunStatus, meta: dict, label: str) -> None:
    out = report_of(make_log(status=status, meta=meta))
    assert f"status         {label}" in out


def test_crash_message(make_log) -> None:
    out = report_of(make_log(status=RunStatus.CRASHED, end_message="RuntimeError: boom"))
    assert "message        RuntimeError: boom" in out


def test_nan_final_loss_is_spelled_out(make_log) -> None:
    losses = np.linspace(1.0, 0.5, 40)
    losses[-5:] = np.nan
    assert "final loss     nan" in report_of(make_log(losses=losses))


def test_meta_may_be_missing(make_log, edit_meta) -> None:
    log = make_log()
    edit_meta(log, created_at=None, ended_at=None, device=None, model_class=None, optimizer=None,
             n_parameters=None, netdoctor_version=None)
    out = report_of(log)
    assert "device         —" in out
    assert "model          —" in out
    assert "optimizer      —, lr 0.1" in out  # the logged learning rate is still known


def test_empty_log(tmp_path: Path) -> None:
    from netdoctor.runlog.writer import RunLogWriter

    writer = RunLogWriter(tmp_path / "empty.sqlite", {})
    writer.close(RunStatus.CRASHED, "died before the first step")
    out = report_of(tmp_path / "empty.sqlite")
    assert "crashed" in out and "died before the first step" in out
    assert "No layers recorded" in out


def test_layer_table(small_log: Path) -> None:
    out = report_of(small_log)
    layers = out[out.index("Layers"):]
    assert "activations at step 30 (last sample), gradient norms at steps 0 and 30" in layers
    rows = [line.split() for line in layers.splitlines()[3:6]]
    assert [r[0] for r in rows] == ["0", "1", "2"]  # forward order
    assert rows[1][:6] == ["1", "ReLU", "0.4", "0.6", "50.0%", "—"]
    assert rows[1][6:] == ["—", "—"]  # ReLU has no parameters


def test_narrow_terminal_does_not_break(small_log: Path, fake_rules) -> None:
    report = render_report(open_run(small_log), fake_rules.diagnoses())
    out = render(report, width=60)
    assert "exploding_gradients" in out
    assert all(len(line) <= 60 for line in out.splitlines())


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, "—"), (float("nan"), "nan"), (float("inf"), "inf"), (float("-inf"), "-inf"),
     (3, "3"), (0.123456, "0.1235"), (1.5e-9, "1.5e-09"), (True, "true")],
)
def test_format_number(value, text: str) -> None:
    assert format_number(value) == text


def test_format_fraction_and_duration() -> None:
    assert format_fraction(0.5) == "50.0%"
    assert format_fraction(None) == "—"
    assert format_duration(None) == "—"
    assert format_duration(12.34) == "12.3 s"
    assert format_duration(125) == "2 min 5 s"
    assert format_duration(3 * 3600 + 120) == "3 h 2 min"


def test_format_value() -> None:
    assert format_value(np.float32(0.25)) == "0.25"
    assert format_value(np.int64(123456)) == "123456"
    assert format_value(np.array([1.0, 2.0])) == "[1, 2]"
    assert format_value(list(range(10))) == "[0, 1, 2, 3, 4, 5, … (10 values)]"
    assert format_value({"a": 1.0, "b": "x"}) == "{a: 1, b: x}"
    assert format_value("text") == "text"
    assert format_value(Severity.ERROR) == "error"


def test_evidence_packs_into_columns() -> None:
    from netdoctor.report.text import EvidenceTable

    evidence = {f"key_{i}": i * 1.5 for i in range(8)}
    evidence["criteria"] = ["into_nonfinite", "geometric_growth", "loss_blowup"]
    wide = render(EvidenceTable(evidence), width=120).splitlines()
    assert len(wide) <= 3  # several pairs per line
    assert "key_0" in wide[0] and "key_1" in wide[1]  # filled downwards
    narrow = render(EvidenceTable(evidence), width=50).splitlines()
    at = next(i for i, line in enumerate(narrow) if "criteria" in line)
    assert not any("key_" in line for line in narrow[at:])  # too wide to share: after the rest
    assert all(len(line) <= 50 for line in narrow)
