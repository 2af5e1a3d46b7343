"""Colour: plain when stdout is not a terminal, NO_COLOR wins, FORCE_COLOR forces styling."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from netdoctor.cli.app import app

ANSI = re.compile(r"\x1b\[[0-9;]*m")
COLOUR = re.compile(r"\x1b\[(?:[0-9;]*;)?(?:3[0-9]|4[0-9]|9[0-7]|10[0-7])(?:;[0-9;]*)?m")
CLEAN_ENV = {"NO_COLOR": None, "FORCE_COLOR": None, "TTY_COMPATIBLE": None}

runner = CliRunner()


@pytest.fixture(autouse=True)
def _rules(fake_rules):
    return fake_rules


@pytest.mark.parametrize(
    "args", [["inspect", "{log}"], ["rules"], ["rules", "exploding_gradients"]]
)
def test_no_escape_codes_when_not_a_terminal(args: list[str], small_log: Path) -> None:
    argv = [a.format(log=small_log) for a in args]
    result = runner.invoke(app, argv, env=CLEAN_ENV)
    assert result.exit_code == 0, result.output
    assert not ANSI.search(result.stdout)


def test_force_color_styles_a_pipe(small_log: Path) -> None:
    result = runner.invoke(app, ["inspect", str(small_log)], env={**CLEAN_ENV, "FORCE_COLOR": "1"})
    assert result.exit_code == 0
    assert COLOUR.search(result.stdout)


def test_no_color_wins_over_force_color(small_log: Path) -> None:
    env = {**CLEAN_ENV, "FORCE_COLOR": "1", "NO_COLOR": "1"}
    result = runner.invoke(app, ["inspect", str(small_log)], env=env)
    assert result.exit_code == 0
    assert not COLOUR.search(result.stdout)  # bold may stay: NO_COLOR is about colour


def test_errors_are_plain_too(tmp_path: Path) -> None:
    result = runner.invoke(app, ["inspect", str(tmp_path / "missing.sqlite")], env=CLEAN_ENV)
    assert result.exit_code == 2
    assert not ANSI.search(result.stderr)


def test_json_is_never_styled(small_log: Path) -> None:
    result = runner.invoke(
        app, ["inspect", str(small_log), "--format", "json"], env={**CLEAN_ENV, "FORCE_COLOR": "1"}
    )
    assert result.exit_code == 0
    assert not ANSI.search(result.stdout)
