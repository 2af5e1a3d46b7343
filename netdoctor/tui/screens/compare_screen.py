"""Before and after a fix, side by side: final metrics, how each run ended, its diagnoses."""

from __future__ import annotations

from typing import ClassVar

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from netdoctor.report.text import format_number
from netdoctor.tui.compare import RunRecord, metric_rows, verdict
from netdoctor.tui.palette import Palette
from netdoctor.tui.widgets.diagnoses_panel import SEVERITY_GLYPH


def metrics_table(before: RunRecord, after: RunRecord, palette: Palette) -> Table:
    table = Table(expand=True, show_edge=False, pad_edge=False)
    table.add_column("", style="bold", no_wrap=True)
    table.add_column(before.label, justify="right")
    table.add_column(after.label, justify="right")
    table.add_row("ended", before.stopped, after.stopped)
    table.add_row("steps", format_number(before.steps), format_number(after.steps))
    for row in metric_rows(before, after):
        better = row.better
        style = palette.ok if better else palette.error if better is False else None
        table.add_row(row.name, format_number(row.before),
                      Text(format_number(row.after), style=style or ""))
    return table


def findings(record: RunRecord, palette: Palette) -> RenderableType:
    lines: list[RenderableType] = [Text(record.label, style="bold"), Text(str(record.log),
                                                                          style=palette.muted)]
    if record.error:
        lines.append(Text(f"error: {record.error}", style=palette.error))
    if not record.diagnoses:
        lines.append(Text("no problems found", style=palette.ok))
    for d in record.diagnoses:
        where = f" step {d.step}" if d.step is not None else ""
        where += f" layer {d.layer}" if d.layer else ""
        lines.append(Text.assemble((f"{SEVERITY_GLYPH[d.severity]} {d.severity.value} ",
                                    palette.severity(d.severity)), (d.rule, "bold"), where))
    return Group(*lines)


class CompareScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,backspace", "app.pop_screen", "Back to the new run")
    ]

    def __init__(self, before: RunRecord, after: RunRecord, fix_id: str) -> None:
        super().__init__(classes="detail")
        self.before, self.after, self.fix_id = before, after, fix_id

    def compose(self) -> ComposeResult:
        palette = Palette.from_variables(self.app.get_css_variables())
        with VerticalScroll(id="compare"):
            yield Static(Text(verdict(self.before, self.after, self.fix_id), style="bold"),
                         id="verdict")
            yield Static(metrics_table(self.before, self.after, palette), id="compare-metrics")
            with Horizontal(id="compare-findings"):
                yield Static(findings(self.before, palette), classes="findings")
                yield Static(findings(self.after, palette), classes="findings")
        yield Footer()
