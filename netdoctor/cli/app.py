"""The ``netdoctor`` Typer app and the console-script entry point ``main``.

Commands import their heavy parts (numpy, the rule engine, torch for ``demo``) when they run, so
that ``netdoctor --help`` starts in a blink and never loads torch or textual.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from netdoctor._version import __version__
from netdoctor.cli.check import check_command
from netdoctor.cli.demo import demo_command
from netdoctor.cli.exit_codes import ExitCode
from netdoctor.cli.fix import fix_command
from netdoctor.cli.inspect import inspect_command
from netdoctor.cli.recipes import recipes_command
from netdoctor.cli.rules import rules_command
from netdoctor.cli.run import run_command

app = typer.Typer(
    name="netdoctor",
    help="A terminal doctor for PyTorch training: diagnoses with evidence and fixes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,  # user errors are one line; bugs keep a plain traceback
    rich_markup_mode=None,  # plain help and usage errors: "[tool.netdoctor]" is not markup
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"netdoctor {__version__}")
        raise typer.Exit(ExitCode.OK)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True,
                     help="Show the version and exit."),
    ] = False,
) -> None:
    """A terminal doctor for PyTorch training: diagnoses with evidence and fixes.

    Exit codes: 0 done, 1 findings at or above the failure threshold (check), 2 bad usage or
    unreadable input.
    """


app.command("run")(run_command)
app.command("recipes")(recipes_command)
app.command("fix")(fix_command)
app.command("inspect")(inspect_command)
app.command("check")(check_command)
app.command("rules")(rules_command)
app.command("demo")(demo_command)


def main() -> None:
    """Console-script entry point (``netdoctor = netdoctor.cli.app:main``)."""
    try:
        app()
    except BrokenPipeError:
        # The reader went away (`netdoctor inspect LOG | head`): not worth a traceback. Point
        # stdout at /dev/null so that Python's final flush does not fail a second time.
        # Exit as a process killed by SIGPIPE does (128 + 13), like other Unix tools: not 1,
        # which would read as "findings" to a CI step.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(128 + 13)
