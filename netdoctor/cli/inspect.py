"""``netdoctor inspect LOG``: the diagnoses and health of a saved (or growing) run log."""

from __future__ import annotations

import enum
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from netdoctor.cli import options
from netdoctor.cli.console import print_report, write_data
from netdoctor.cli.errors import user_errors
from netdoctor.cli.settings import rule_config

if TYPE_CHECKING:  # pragma: no cover
    from netdoctor.diagnosis import Diagnosis
    from netdoctor.runlog import RunData


class OutputFormat(str, enum.Enum):
    TEXT = "text"
    JSON = "json"


class View(str, enum.Enum):
    """Where a report goes: what ``--format`` asks for, or the TUI when nothing is asked."""

    TEXT = "text"
    JSON = "json"
    TUI = "tui"


def choose_view(requested: OutputFormat | None, stdout_is_terminal: bool) -> View:
    """design.md: the TUI when stdout is a terminal and no ``--format`` is given."""
    if requested is OutputFormat.JSON:
        return View.JSON
    if requested is None and stdout_is_terminal:
        return View.TUI
    return View.TEXT


def interactive_terminal() -> bool:
    """Whether a full-screen app can run: stdout *and* stdin are terminals.

    Asked of the file descriptors, not of rich's console: FORCE_COLOR makes rich call a pipe a
    terminal (styled text for CI logs), and an app drawn into a pipe would never end.
    """
    return sys.stdout.isatty() and sys.stdin.isatty()


def show_report(run: RunData, diagnoses: Sequence[Diagnosis], view: View) -> None:
    if view is View.JSON:
        from netdoctor.report.json_report import render_json

        write_data(render_json(run, diagnoses))
    else:
        from netdoctor.report.text import render_report

        print_report(render_report(run, diagnoses))


@user_errors
def inspect_command(
    log: Annotated[Path, typer.Argument(metavar="LOG", help="A run log (.sqlite) to read.")],
    output_format: Annotated[
        OutputFormat | None,
        typer.Option(
            "--format",
            help="text: a report for people; json: the JSON report, alone on stdout. "
            "[default: text]",
            show_default=False,
            case_sensitive=False,
        ),
    ] = None,
    follow: Annotated[
        bool,
        typer.Option("--follow", help="Keep reading while another process writes the log; "
                     "announce diagnoses as they appear, report when the run ends."),
    ] = False,
    select: options.Select = None,
    ignore: options.Ignore = None,
    config: options.Config = None,
) -> None:
    """Diagnose a saved run log.

    Prints the run's summary, what went wrong (with the numbers behind it and ranked fixes) and
    the health of each layer. In a terminal, without --format, opens the interactive view
    (press ? there for its keys). Rule settings come from [tool.netdoctor] in the nearest
    pyproject.toml; the flags override them.
    """
    settings = rule_config(select, ignore, config)
    view = choose_view(output_format, interactive_terminal())
    if view is View.TUI:
        from netdoctor.rules import run_rules
        from netdoctor.runlog import open_run
        from netdoctor.tui import inspect_in_tui

        run = open_run(log)  # unreadable from the start: one line and exit 2, as without the TUI
        inspect_in_tui(run, run_rules(run, settings), settings, follow=follow)
        return
    if follow:
        from netdoctor.cli.follow import follow as follow_log

        run, diagnoses = follow_log(log, settings)
    else:
        from netdoctor.rules import run_rules
        from netdoctor.runlog import open_run

        run = open_run(log)
        diagnoses = run_rules(run, settings)
    show_report(run, diagnoses, view)
