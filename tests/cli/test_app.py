"""The app itself: --version, --help, the command set, exit codes."""

from __future__ import annotations

from typer.testing import CliRunner

from netdoctor import __version__
from netdoctor.cli.app import app
from netdoctor.cli.exit_codes import ExitCode

runner = CliRunner()


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == ExitCode.OK
    assert result.stdout == f"netdoctor {__version__}\n"


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    lines = result.stdout.split("Commands:")[1].strip().splitlines()
    commands = {line.split()[0] for line in lines}
    assert {"inspect", "rules", "demo", "check", "run", "recipes", "fix"} <= commands


def test_short_help_flag() -> None:
    assert runner.invoke(app, ["-h"]).exit_code == 0


def test_no_arguments_shows_help_and_exits_2() -> None:
    result = runner.invoke(app, [])
    assert result.exit_code == ExitCode.USAGE
    assert "inspect" in result.output


def test_unknown_command_is_a_usage_error() -> None:
    result = runner.invoke(app, ["frobnicate"])
    assert result.exit_code == ExitCode.USAGE
    assert result.stdout == ""
    assert "Traceback" not in result.stderr


def test_exit_codes_are_stable() -> None:
    assert [int(c) for c in ExitCode] == [0, 1, 2]
    assert [c.name for c in ExitCode] == ["OK", "FINDINGS", "USAGE"]


def test_pretty_exceptions_are_off() -> None:
    assert app.pretty_exceptions_enable is False
