"""GitHub annotations (escaping, levels) and the Markdown step summary."""

from __future__ import annotations

from pathlib import Path

from netdoctor.diagnosis import Diagnosis, Fix, Severity
from netdoctor.gate import CheckResult, FailOn
from netdoctor.report.github import command, escape_data, escape_property, render_annotations
from netdoctor.report.markdown import render_markdown
from netdoctor.runlog import open_run

ERROR = Diagnosis("nan_loss", Severity.ERROR, 7, "enc.0", "loss 100% NaN\r\nat step 7", {},
                  (Fix("lower_lr", "lower the lr: 1e-3, say"),))
WARNING = Diagnosis("overfitting", Severity.WARNING, None, None, "a | b <script>", {}, ())
INFO = Diagnosis("underfitting", Severity.INFO, None, None, "a note", {}, ())


def result(log: Path, *diagnoses: Diagnosis, fail_on: FailOn = FailOn.ERROR) -> CheckResult:
    return CheckResult(open_run(log), diagnoses, fail_on, ("nan_loss",), (), None, 0.0)


def test_escaping_follows_github_rules() -> None:
    assert escape_data("50% a\r\nb") == "50%25 a%0D%0Ab"
    assert escape_property("a: b, c%") == "a%3A b%2C c%25"
    assert command("warning", "m", title="t:1") == "::warning title=t%3A1::m"
    assert command("error", "m") == "::error::m"


def test_one_annotation_per_error_and_warning(small_log: Path) -> None:
    lines = render_annotations(result(small_log, ERROR, WARNING, INFO)).splitlines()
    assert len(lines) == 2  # infos stay in the report
    error, warning = lines
    assert error.startswith("::error title=netdoctor nan_loss (step 7%2C layer enc.0)::")
    assert "loss 100%25 NaN%0D%0Aat step 7%0Afix: lower_lr: lower the lr: 1e-3, say" in error
    assert "\r" not in error
    assert warning == "::warning title=netdoctor overfitting::a | b <script>"


def test_nothing_to_annotate(small_log: Path) -> None:
    assert render_annotations(result(small_log)) == ""


def test_markdown_summary(small_log: Path) -> None:
    text = render_markdown(result(small_log, ERROR, WARNING))
    assert text.startswith("### ❌ netdoctor check failed: 1 finding at or above error (nan_loss)")
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert len(rows) == 3  # the header and one row per finding
    assert "a \\| b &lt;script&gt;" in rows[2]  # cannot break the table or open a tag
    assert rows[1].count(" | ") == rows[0].count(" | ")
    assert "<details>" in text and "fixes:" in text
    assert text.endswith("\n\n")


def test_markdown_summary_of_a_clean_run(small_log: Path) -> None:
    text = render_markdown(result(small_log))
    assert text.startswith("### ✅ netdoctor check passed: nothing at or above error")
    assert "No rule fired" in text
