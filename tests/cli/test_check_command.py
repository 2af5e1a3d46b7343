"""`netdoctor check`: exit codes by severity, the report files, baselines and CI integration.

Runs the real rule engine on the recorded sample runs (healthy is clean, exploding and nan have
errors, overfitting has a warning) and on small logs written with the real writer.
"""

from __future__ import annotations

import json
import re
import sqlite3
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from netdoctor.cli.app import app

SAMPLES = Path(__file__).resolve().parents[2] / "sample_runs"
HEALTHY = SAMPLES / "healthy.sqlite"
EXPLODING = SAMPLES / "exploding.sqlite"
NAN = SAMPLES / "nan.sqlite"
OVERFITTING = SAMPLES / "overfitting.sqlite"
ANSI = re.compile(r"\x1b\[")
DIAGNOSIS_KEYS = {"rule", "severity", "step", "layer", "message", "evidence", "fixes"}

runner = CliRunner()


@pytest.fixture(autouse=True)
def _not_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests may themselves run under GitHub Actions: keep its variables out of them."""
    for name in ("GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY", "NO_COLOR", "FORCE_COLOR"):
        monkeypatch.delenv(name, raising=False)


def check(*args: str | Path):
    return runner.invoke(app, ["check", *map(str, args)])


def nan_losses() -> np.ndarray:
    losses = 0.7 * np.exp(-np.arange(40) / 20)
    losses[25:] = np.nan
    return losses


# ---- exit codes ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("log", "code"), [(HEALTHY, 0), (EXPLODING, 1), (NAN, 1), (OVERFITTING, 0)]
)
def test_exit_code_by_severity(log: Path, code: int) -> None:
    result = check(log)
    assert result.exit_code == code, result.output
    assert result.stderr == ""
    verdict = result.stdout.rstrip().splitlines()[-1]
    assert verdict.startswith("netdoctor check " + ("passed" if code == 0 else "failed"))


def test_failing_verdict_names_the_rules() -> None:
    verdict = check(EXPLODING).stdout.rstrip().splitlines()[-1]
    assert verdict == ("netdoctor check failed: 2 findings at or above error "
                       "(exploding_gradients, nan_loss)")


def test_written_log_with_nan_losses_fails(make_log) -> None:
    assert check(make_log("nan.sqlite", losses=nan_losses())).exit_code == 1
    assert check(make_log("ok.sqlite")).exit_code == 0


def test_fail_on_warning() -> None:
    assert check(OVERFITTING, "--fail-on", "warning").exit_code == 1
    assert check(OVERFITTING, "--fail-on", "WARNING").exit_code == 1
    assert check(HEALTHY, "--fail-on", "warning").exit_code == 0


def test_exit_zero() -> None:
    result = check(EXPLODING, "--exit-zero")
    assert result.exit_code == 0
    assert "netdoctor check failed" in result.stdout  # the report still says so


def test_exit_zero_keeps_usage_errors(tmp_path: Path) -> None:
    assert check(tmp_path / "missing.sqlite", "--exit-zero").exit_code == 2


def test_select_and_ignore() -> None:
    assert check(EXPLODING, "--ignore", "exploding_gradients,nan_loss").exit_code == 0
    assert check(EXPLODING, "--select", "overfitting").exit_code == 0
    assert check(EXPLODING, "--select", "nan_loss").exit_code == 1


def test_fail_on_from_pyproject_and_flag_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.netdoctor]\nfail_on = "warning"\n')
    monkeypatch.chdir(tmp_path)
    assert check(OVERFITTING).exit_code == 1
    assert check(OVERFITTING, "--fail-on", "error").exit_code == 0


def test_fail_on_from_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "gate.toml").write_text('fail_on = "warning"\n')
    assert check(OVERFITTING, "--config", tmp_path / "gate.toml").exit_code == 1


def test_bad_fail_on_setting_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.netdoctor]\nfail_on = "info"\n')
    monkeypatch.chdir(tmp_path)
    result = check(HEALTHY)
    assert result.exit_code == 2
    assert "tool.netdoctor.fail_on" in result.stderr and "'info'" in result.stderr


# ---- bad input: one line on stderr, exit 2 -------------------------------------------------
def _foreign(tmp: Path) -> Path:
    path = tmp / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    conn.close()
    return path


def _truncated(tmp: Path) -> Path:
    path = tmp / "truncated.sqlite"
    path.write_bytes(HEALTHY.read_bytes()[: HEALTHY.stat().st_size // 2])
    return path


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda tmp: tmp / "missing.sqlite", "no such file"),
        (_foreign, "not a netdoctor run log"),
        (_truncated, "truncated"),
        (lambda tmp: tmp / "mnist_mlp", "no such recipe file"),
        (lambda tmp: tmp / "recipe.toml", "no such recipe file"),
    ],
    ids=["missing", "foreign", "truncated", "recipe-name", "recipe-file"],
)
def test_bad_target_is_one_line_exit_2(make, needle: str, tmp_path: Path, run_netdoctor) -> None:
    bad = make(tmp_path)
    result = run_netdoctor("check", str(bad), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stdout == "" and "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("netdoctor: error: ")
    assert str(bad) in lines[0] and needle in lines[0]


def test_unknown_rule_id_is_exit_2() -> None:
    result = check(HEALTHY, "--select", "nan_loss,no_such_rule")
    assert result.exit_code == 2
    assert "no_such_rule" in result.stderr and result.stdout == ""


def test_bad_baseline_is_exit_2(tmp_path: Path) -> None:
    result = check(HEALTHY, "--baseline", _foreign(tmp_path))
    assert result.exit_code == 2
    assert result.stderr.startswith("netdoctor: error: --baseline ")


def test_unwritable_output_is_exit_2(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    result = check(HEALTHY, "--junit", tmp_path / "a-file" / "report.xml")
    assert result.exit_code == 2
    assert "--junit" in result.stderr and result.stdout == ""


def test_negative_max_regression_is_a_usage_error() -> None:
    assert check(HEALTHY, "--baseline", HEALTHY, "--max-regression", "-0.1").exit_code == 2


# ---- report files ------------------------------------------------------------------------------
def test_json_report_matches_design(tmp_path: Path) -> None:
    out = tmp_path / "reports" / "check.json"  # a missing folder is made
    result = check(EXPLODING, "--json", out)
    assert result.exit_code == 1
    report = json.loads(out.read_text())
    assert set(report) == {"run", "diagnoses"}
    assert report["run"]["path"] == str(EXPLODING) and report["run"]["status"] == "finished"
    # lr_too_high (a warning) is the exploding demo's root cause: it comes first
    assert [d["rule"] for d in report["diagnoses"]] == [
        "lr_too_high",
        "exploding_gradients",
        "nan_loss",
    ]
    for d in report["diagnoses"]:
        assert set(d) == DIAGNOSIS_KEYS
        assert all(set(fix) == {"id", "text"} for fix in d["fixes"])
    assert "{" not in result.stdout.splitlines()[0]  # stdout keeps the text report


def test_junit_report_counts(tmp_path: Path) -> None:
    from netdoctor.rules import all_rules

    out = tmp_path / "report.xml"
    assert check(EXPLODING, "--junit", out, "--ignore", "overfitting").exit_code == 1
    root = ET.parse(out).getroot()
    suite = root.find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    assert len(cases) == len(all_rules())
    assert {c.get("name") for c in cases} == {r.id for r in all_rules()}
    assert all(c.get("classname") == f"netdoctor.{c.get('name')}" for c in cases)
    failed = {c.get("name") for c in cases if c.find("failure") is not None}
    skipped = {c.get("name") for c in cases if c.find("skipped") is not None}
    assert failed == {"exploding_gradients", "nan_loss"}
    assert skipped == {"overfitting"}
    for element in (root, suite):
        assert element.get("tests") == str(len(all_rules()))
        assert element.get("failures") == "2"
        assert element.get("skipped") == "1"
        assert element.get("errors") == "0"


def test_junit_warning_below_threshold_passes_with_output(tmp_path: Path) -> None:
    out = tmp_path / "report.xml"
    assert check(OVERFITTING, "--junit", out).exit_code == 0
    suite = ET.parse(out).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "0"
    case = next(c for c in suite.iter("testcase") if c.get("name") == "overfitting")
    assert case.find("failure") is None
    out_text = case.findtext("system-out") or ""
    assert "warning overfitting" in out_text and "early_stopping" in out_text


# ---- baseline -----------------------------------------------------------------------------------
def test_baseline_catches_a_new_diagnosis(make_log, tmp_path: Path) -> None:
    base = make_log("base.sqlite")
    new = make_log("new.sqlite", losses=nan_losses())
    out = tmp_path / "check.json"
    result = check(new, "--baseline", base, "--json", out)
    assert result.exit_code == 1
    report = json.loads(out.read_text())
    assert set(report) == {"run", "diagnoses", "baseline"}
    assert report["baseline"]["new_rules"] == ["nan_loss"]
    assert report["baseline"]["failed"] is True
    assert "new at or above error" in result.stdout


def test_baseline_catches_a_val_loss_regression(make_log, tmp_path: Path) -> None:
    base = make_log("base.sqlite")
    worse = make_log("worse.sqlite", losses=1.3 * (0.7 * np.exp(-np.arange(40) / 20) + 0.05))
    out = tmp_path / "check.json"
    result = check(worse, "--baseline", base, "--json", out, "--junit", tmp_path / "r.xml")
    assert result.exit_code == 1, result.output
    loss = json.loads(out.read_text())["baseline"]["loss"]
    assert loss["metric"] == "val_loss" and loss["regressed"] is True
    assert loss["change"] == pytest.approx(0.195, abs=0.01)
    assert "final val_loss regressed" in result.stdout.splitlines()[-1]
    case = ET.parse(tmp_path / "r.xml").getroot().find("testsuite/testcase[@name='final_loss']")
    assert case is not None and case.get("classname") == "netdoctor.baseline"
    assert case.find("failure") is not None
    # within a looser limit the same run passes
    assert check(worse, "--baseline", base, "--max-regression", "0.25").exit_code == 0


def test_baseline_passes_an_equal_run() -> None:
    result = check(HEALTHY, "--baseline", HEALTHY)
    assert result.exit_code == 0, result.output
    assert "+0.0%" in result.stdout


def test_baseline_accepts_findings_it_already_had() -> None:
    result = check(EXPLODING, "--baseline", EXPLODING)
    assert result.exit_code == 0, result.output
    assert "also in the baseline" in result.stdout


# ---- CI integration -----------------------------------------------------------------------------
def test_github_annotations_and_step_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = check(EXPLODING)
    assert result.exit_code == 1
    annotations = result.stderr.splitlines()
    # the root cause lr_too_high is a warning, then the two errors it led to
    assert [a.split("::")[1].split()[0] for a in annotations] == ["warning", "error", "error"]
    assert annotations[0].startswith("::warning title=netdoctor lr_too_high (step 1)::")
    assert annotations[1].startswith("::error title=netdoctor exploding_gradients (step 3%2C ")
    assert "::" not in result.stdout  # stdout carries only the report
    text = summary.read_text()
    assert text.startswith("earlier step\n")  # appended, not replaced
    assert "### ❌ netdoctor check failed" in text and "| `nan_loss` |" in text


def test_no_ci_output_outside_ci(tmp_path: Path) -> None:
    result = check(EXPLODING)
    assert result.stderr == ""


def test_plain_text_when_not_a_terminal() -> None:
    result = check(EXPLODING, "--fail-on", "warning")
    assert not ANSI.search(result.stdout)


def test_python_m_netdoctor_check(tmp_path: Path, run_netdoctor) -> None:
    out = tmp_path / "r.xml"
    result = run_netdoctor("check", str(NAN), "--junit", str(out), cwd=tmp_path,
                           GITHUB_ACTIONS="", GITHUB_STEP_SUMMARY="")
    assert result.returncode == 1, result.stderr
    assert result.stderr == ""
    assert not ANSI.search(result.stdout)
    assert result.stdout.rstrip().endswith("(nan_loss)")
    assert ET.parse(out).getroot().get("failures") == "1"
    ok = run_netdoctor("check", str(HEALTHY), cwd=tmp_path, GITHUB_ACTIONS="",
                       GITHUB_STEP_SUMMARY="")
    assert ok.returncode == 0, ok.stderr
