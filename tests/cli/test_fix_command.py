"""`netdoctor fix RECIPE`: a pathological recipe is patched, re-run and shown before/after until
healthy; choosing the patch; the patched recipe written out."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from netdoctor.cli.app import app
from netdoctor.cli.fix import choose_patch
from netdoctor.diagnosis import Diagnosis, Fix, Severity
from netdoctor.recipes import load_recipe
from netdoctor.rules import run_rules
from netdoctor.runlog import open_run

runner = CliRunner()

# Eight sigmoid layers with a tiny normal init: each layer scales the backward signal by at most
# 1/4 times its small weights, so the first layers get almost no gradient (vanishing gradients).
DEEP_SIGMOID = """\
[recipe]
description = "eight sigmoid layers, tiny normal init"
expect = ["vanishing_gradients"]

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


def test_fix_removes_the_diagnosis_and_shows_before_and_after(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "deep.toml").write_text(DEEP_SIGMOID)
    result = runner.invoke(app, ["fix", "deep.toml", "--max-rounds", "4", "--write",
                                 "fixed.toml"], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "round 1: fix " in out and "before" in out and "after" in out
    assert "vanishing_gradients (warning)" in out.split("round 2")[0]  # round 1's "before"
    for row in ("diagnoses", "train loss", "val loss", "val accuracy", "test accuracy"):
        assert row in out
    assert out.strip().splitlines()[-1].startswith("healthy after ")
    # the last run, read back: the diagnosis is gone
    logs = sorted((tmp_path / "runs").glob("deep-*-fix*.sqlite"))
    assert len(logs) >= 2
    first, last = open_run(logs[0]), open_run(logs[-1])
    assert "vanishing_gradients" in {d.rule for d in run_rules(first)}
    assert not [d for d in run_rules(last) if d.severity is not Severity.INFO]
    # the written recipe is valid, says which fixes it has and expects a healthy run
    fixed = load_recipe("fixed.toml")
    assert fixed.expect == () and "fixed: " in fixed.description
    assert fixed.model != load_recipe("deep.toml").model
    written = (tmp_path / "fixed.toml").read_text()
    assert written.startswith("# Written by `netdoctor fix deep.toml`.")


def test_a_healthy_recipe_needs_no_round(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["fix", "healthy_mlp"])
    assert result.exit_code == 0, result.output
    assert "round 1" not in result.stdout
    assert result.stdout.strip() == "healthy after 0 fixes: none"


@pytest.mark.parametrize(
    ("file", "text", "needle"),
    [
        ("p.py", "def build(seed):\n    pass\n", "`netdoctor fix` patches TOML recipes"),
        ("bad.toml", "[data]\nkind = 'spirals'\n", "missing section [model]"),
    ],
)
def test_recipes_fix_cannot_patch_are_one_line(file: str, text: str, needle: str,
                                                tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / file).write_text(text)
    result = runner.invoke(app, ["fix", file])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and needle in result.stderr


def _diagnosis(rule: str, severity: Severity, *fix_ids: str) -> Diagnosis:
    return Diagnosis(rule, severity, 0, None, "", {}, tuple(Fix(f, "") for f in fix_ids))


def test_choose_patch_takes_the_first_applicable_fix_of_the_first_problem() -> None:
    recipe = load_recipe("healthy_mlp")  # He init already, no schedule
    diagnoses = [
        _diagnosis("some_info", Severity.INFO, "lower_lr"),  # infos are not problems
        _diagnosis("poor_init", Severity.WARNING, "check_targets", "he_init", "batchnorm"),
        _diagnosis("exploding_gradients", Severity.ERROR, "grad_clipping"),
    ]
    patch = choose_patch(recipe, diagnoses)
    # check_targets has no recipe patch, he_init changes nothing here: batchnorm is next
    assert patch is not None and patch.fix_id == "batchnorm"
    assert choose_patch(recipe, diagnoses[:1]) is None
    assert choose_patch(recipe, [_diagnosis("x", Severity.ERROR, "he_init")]) is None
