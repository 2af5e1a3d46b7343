"""`netdoctor rules [ID] [--explain ID]` with a stand-in rule engine."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from netdoctor.cli.app import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def _rules(fake_rules):
    return fake_rules


def test_list() -> None:
    result = runner.invoke(app, ["rules"], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    out = result.stdout
    for text in ("exploding_gradients", "dead_relu", "error", "warning",
                 "Gradients grow without bound", "growth=10", "window=20", "cs231n notes"):
        assert text in out


@pytest.mark.parametrize("argv", [["rules", "exploding_gradients"],
                                  ["rules", "--explain", "exploding_gradients"],
                                  ["rules", "exploding_gradients", "--explain",
                                   "exploding_gradients"]])
def test_explain(argv: list[str]) -> None:
    result = runner.invoke(app, argv, env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    out = result.stdout
    sections = ["What it detects", "Why it matters", "How to fix", "Example", "Thresholds",
                "Fixes"]
    positions = [out.index(s) for s in sections]
    assert positions == sorted(positions)
    assert "Updates overshoot [badly]." in out  # doc text is not read as markup
    assert "grad norm growth factor over the window" in out
    assert "grad_clipping" in out and "clip_grad_norm_(model.parameters(), 1.0)" in out
    assert "lower_lr" in out and "Lower the learning rate by 10x." in out
    assert out.index("grad_clipping") < out.index("lower_lr")  # ranked


def test_explain_a_rule_without_thresholds_or_example() -> None:
    result = runner.invoke(app, ["rules", "dead_relu"])
    assert result.exit_code == 0, result.output
    assert "Example" not in result.stdout
    assert "he_init" in result.stdout


@pytest.mark.parametrize("argv", [["rules", "no_such_rule"], ["rules", "--explain", "nope"]])
def test_unknown_rule_is_one_line_exit_2(argv: list[str]) -> None:
    result = runner.invoke(app, argv)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("netdoctor: error: unknown rule id")


def test_two_different_ids_are_a_usage_error() -> None:
    result = runner.invoke(app, ["rules", "dead_relu", "--explain", "exploding_gradients"])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1

