"""The text report of ``netdoctor check``: the inspect report, the baseline, then the verdict.

The verdict comes last so that it is the line a CI log ends with; its wording is the one the
JUnit and Markdown outputs share (``CheckResult.summary``). It is a separate renderable so that
the caller can print it as one unwrapped line, however narrow the terminal: CI logs are
searched for it.
"""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from netdoctor.gate import BaselineComparison, CheckResult
from netdoctor.report.text import render_report


def render_check(result: CheckResult) -> RenderableType:
    """The report without the verdict line (see ``verdict``)."""
    parts: list[RenderableType] = [render_report(result.run, result.diagnoses), Text()]
    if result.baseline is not None:
        parts += [baseline_view(result.baseline, result.fail_on.value), Text()]
    return Group(*parts)


def baseline_view(b: BaselineComparison, threshold: str) -> RenderableType:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    grid.add_row(f"new at or above {threshold}", _ids(b.new_rules, "bold red"))
    grid.add_row("also in the baseline", _ids(b.known_rules, ""))
    grid.add_row("gone since the baseline", _ids(b.resolved_rules, "green"))
    if b.loss is not None:
        grid.add_row("final loss", Text(b.loss.describe(),
                                        style="bold red" if b.loss.regressed else ""))
    else:
        grid.add_row("final loss", Text(b.loss_note or "", style="dim"))
    return Group(Rule(Text(f"Baseline · {b.path}"), align="left"), grid)


def verdict(result: CheckResult) -> Text:
    style = "bold green" if result.passed else "bold red"
    return Text(f"netdoctor check {result.summary()}", style=style)


def _ids(ids: tuple[str, ...], style: str) -> Text:
    return Text(", ".join(ids), style=style) if ids else Text("none", style="dim")
