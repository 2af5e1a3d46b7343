"""`netdoctor check RECIPE`: the recipe is trained headless under the budgets, then checked like
a log; the report says when a budget ended the run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from netdoctor.cli.app import app
from netdoctor.runlog import open_run

runner = CliRunner()

TINY = """\
[data]
kind = "blobs"
samples = 120

[model]
kind = "mlp"
depth = 1
width = 8

[optimizer]
kind = "adam"
lr = 0.01

[train]
epochs = 1000
batch_size = 16
"""

DEEP_SIGMOID = """\
[data]
kind = "spirals"
samples = 600

[model]
kind = "mlp"
depth = 8
width = 32
activation = "sigmoid"
init = "normal"
init_std = 0.05

[train]
epochs = 4
batch_size = 32
"""


@pytest.fixture
def recipes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny.toml").write_text(TINY)
    (tmp_path / "deep.toml").write_text(DEEP_SIGMOID)
    return tmp_path


def test_a_budget_ends_the_training_and_the_report_says_so(recipes: Path) -> None:
    result = runner.invoke(app, ["check", "tiny.toml", "--max-steps", "12", "--json",
                                 "report.json"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "stopped by the max_steps budget (12 steps)" in result.stdout
    assert result.stdout.strip().splitlines()[-1].startswith("netdoctor check passed")
    assert "training recipe 'tiny' for the check (max 12 steps)" in result.stderr
    logs = list((recipes / "runs").glob("tiny-*-check.sqlite"))
    assert len(logs) == 1 and open_run(logs[0]).n_steps == 12
    report = json.loads((recipes / "report.json").read_text())
    assert report["run"] and report["diagnoses"] == []


def test_max_time_and_set(recipes: Path) -> None:
    result = runner.invoke(app, ["check", "tiny.toml", "--max-time", "0.5", "--set",
                                 "model.width=4"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "stopped by the max_time budget (0.5 s)" in result.stdout


def test_findings_in_a_trained_recipe_fail_the_check(recipes: Path) -> None:
    result = runner.invoke(app, ["check", "deep.toml", "--fail-on", "warning"])
    assert result.exit_code == 1, result.output
    assert "vanishing_gradients" in result.stdout
    assert result.stdout.strip().splitlines()[-1].startswith("netdoctor check failed")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["tiny.toml", "--set", "model.widht=3"], "did you mean model.width?"),
        (["nothing.toml"], "nothing.toml: no such recipe file"),
        (["tiny.toml", "--max-time", "-1"], "--max-time must be a positive number"),
    ],
)
def test_bad_recipes_are_exit_2(args: list[str], needle: str, recipes: Path) -> None:
    result = runner.invoke(app, ["check", *args])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and needle in result.stderr
    assert not (recipes / "runs").exists()
