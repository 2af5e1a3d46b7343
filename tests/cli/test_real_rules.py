"""The commands against the real rule engine: every rule documents, settings reach the engine."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from netdoctor.cli.app import app

rules = pytest.importorskip("netdoctor.rules")
runner = CliRunner()
RULE_IDS = [r.id for r in rules.all_rules()]


@pytest.fixture
def nan_log(make_log) -> Path:
    losses = 0.7 * np.exp(-np.arange(40) / 20)
    losses[25:] = np.nan
    return make_log("nan.sqlite", losses=losses)


def test_rules_lists_every_rule() -> None:
    result = runner.invoke(app, ["rules"])
    assert result.exit_code == 0, result.output
    listed = [line.split()[0] for line in result.stdout.splitlines() if line[:1].strip()]
    assert listed == [*RULE_IDS, *(r.id for r in rules.checkup_rules())]


@pytest.mark.parametrize("rule_id", RULE_IDS)
def test_every_rule_explains_itself(rule_id: str) -> None:
    rule = rules.get_rule(rule_id)
    result = runner.invoke(app, ["rules", rule_id], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for title in ("What it detects", "Why it matters", "How to fix", "Thresholds", "Fixes"):
        assert title in result.stdout
    for fix_id in rule.fixes:
        assert fix_id in result.stdout
        assert rules.FIXES[fix_id].split()[0] in result.stdout  # its text, not just its id


def test_nan_run_is_diagnosed(nan_log: Path) -> None:
    result = runner.invoke(app, ["inspect", str(nan_log), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert "nan_loss" in [d["rule"] for d in json.loads(result.stdout)["diagnoses"]]


def test_ignore_flag(nan_log: Path) -> None:
    result = runner.invoke(app, ["inspect", str(nan_log), "--format", "json",
                                 "--ignore", "nan_loss"])
    assert result.exit_code == 0, result.output
    assert "nan_loss" not in [d["rule"] for d in json.loads(result.stdout)["diagnoses"]]


def test_select_flag(nan_log: Path) -> None:
    other = next(r for r in RULE_IDS if r != "nan_loss")
    result = runner.invoke(app, ["inspect", str(nan_log), "--format", "json", "--select", other])
    assert result.exit_code == 0, result.output
    assert {d["rule"] for d in json.loads(result.stdout)["diagnoses"]} <= {other}


def test_pyproject_settings_apply_from_a_subdirectory(
    nan_log: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.netdoctor]\nignore = ["nan_loss"]\n')
    (tmp_path / "src").mkdir()
    monkeypatch.chdir(tmp_path / "src")
    result = runner.invoke(app, ["inspect", str(nan_log), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert "nan_loss" not in [d["rule"] for d in json.loads(result.stdout)["diagnoses"]]


def test_bad_threshold_in_pyproject_is_one_line(
    small_log: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[tool.netdoctor.thresholds.nan_loss]\nno_such_threshold = 3\n"
    )
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["inspect", str(small_log)])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "no_such_threshold" in result.stderr


def test_checkup_only_checks_are_listed_and_explained():
    from typer.testing import CliRunner

    from netdoctor.cli.app import app

    listing = CliRunner().invoke(app, ["rules"])
    assert listing.exit_code == 0 and "cannot_overfit_batch" in listing.stdout
    explained = CliRunner().invoke(app, ["rules", "cannot_overfit_batch"])
    assert explained.exit_code == 0, explained.output
    assert "one batch" in explained.stdout and "overfit_ratio" in explained.stdout
