"""The rich text report: run summary, diagnoses with evidence and fixes, per-layer table.

Everything returns rich renderables; the caller prints them on its console, which decides about
colour (``NO_COLOR``, not a terminal). Texts from the log or the rules are always ``Text`` objects,
never markup strings, so a ``[`` in a layer name or a message prints as itself.
"""

from __future__ import annotations

import math
import numbers
from collections import Counter
from collections.abc import Sequence
from typing import Any

from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.padding import Padding
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from netdoctor.diagnosis import Diagnosis, Severity
from netdoctor.report.layers import LayerTable, layer_table
from netdoctor.report.summary import Outcome, RunSummary, summarize
from netdoctor.runlog import RunData

SEVERITY_STYLE = {
    Severity.ERROR: "bold red",
    Severity.WARNING: "bold yellow",
    Severity.INFO: "bold cyan",
}
OUTCOME_STYLE = {
    Outcome.FINISHED: "green",
    Outcome.RUNNING: "cyan",
    Outcome.INTERRUPTED: "yellow",
    Outcome.CRASHED: "red",
    Outcome.DID_NOT_FINISH: "red",
}
_MAX_LIST = 6  # evidence lists longer than this are shortened


def render_report(run: RunData, diagnoses: Sequence[Diagnosis]) -> RenderableType:
    """The whole text report for one run."""
    return Group(
        run_summary(summarize(run)),
        Text(),
        diagnoses_view(diagnoses),
        Text(),
        layers_view(layer_table(run)),
    )


# ---- run summary -----------------------------------------------------------------------------
def run_summary(summary: RunSummary) -> RenderableType:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    status = Text(summary.outcome.label, style=OUTCOME_STYLE[summary.outcome])
    if summary.outcome is Outcome.RUNNING:
        status.append("  (still writing; showing the log up to its last flush)", style="dim")
    elif summary.outcome is Outcome.DID_NOT_FINISH:
        status.append("  (the writer stopped without closing the log; read up to its last flush)")
    grid.add_row("status", status)
    if summary.end_message:
        grid.add_row("message", Text(summary.end_message))
    grid.add_row("steps", Text(str(summary.steps)))
    grid.add_row("epochs", Text(str(summary.epochs)))
    if summary.started_at is not None:
        grid.add_row("started", Text(summary.started_at.strftime("%Y-%m-%d %H:%M:%S UTC")))
    grid.add_row("duration", Text(format_duration(summary.duration_s)))
    grid.add_row("device", Text(summary.device or "—"))
    grid.add_row("model", Text(_model(summary)))
    grid.add_row("optimizer", Text(_optimizer(summary)))
    grid.add_row("final loss", Text(format_number(summary.final_loss)))
    best = format_number(summary.best_val_loss)
    if summary.best_val_epoch is not None:
        best += f" (epoch {summary.best_val_epoch})"
    grid.add_row("best val loss", Text(best))
    return Group(Rule(Text(f"netdoctor · {summary.path}"), align="left"), grid)


def _model(summary: RunSummary) -> str:
    model = summary.model or "—"
    if summary.n_parameters is not None:
        model += f", {summary.n_parameters:,} parameters"
    return model


def _optimizer(summary: RunSummary) -> str:
    text = summary.optimizer or "—"
    if summary.lr is not None:
        text += f", lr {format_number(summary.lr)}"
        if summary.final_lr is not None and not math.isclose(summary.final_lr, summary.lr):
            text += f" → {format_number(summary.final_lr)}"
    elif summary.final_lr is not None:
        text += f", lr {format_number(summary.final_lr)}"
    return text


# ---- diagnoses -------------------------------------------------------------------------------
def diagnoses_view(diagnoses: Sequence[Diagnosis]) -> RenderableType:
    if not diagnoses:
        return Group(
            Rule("Diagnoses", align="left"),
            Text("No problems found: no rule fired on this run.", style="green"),
        )
    counts = Counter(d.severity for d in diagnoses)
    tally = ", ".join(
        f"{counts[sev]} {sev.value}{'s' if counts[sev] != 1 else ''}"
        for sev in sorted(counts, key=lambda s: -s.rank)
    )
    parts: list[RenderableType] = [Rule(f"Diagnoses ({tally})", align="left")]
    for i, d in enumerate(diagnoses):
        if i:
            parts.append(Text())
        parts.append(diagnosis_view(d))
    return Group(*parts)


def diagnosis_view(d: Diagnosis) -> RenderableType:
    head = Text.assemble(
        (f" {d.severity.value.upper()} ", SEVERITY_STYLE[d.severity] + " reverse"),
        " ",
        (d.rule, "bold"),
    )
    if d.step is not None:
        head.append(f"  step {d.step}")
    if d.layer is not None:
        head.append("  layer ")
        head.append(d.layer, style="bold")
    parts: list[RenderableType] = [head, indent(Text(d.message))]
    if d.evidence:
        parts.append(indent(Group(Text("evidence", style="dim"), EvidenceTable(d.evidence))))
    if d.fixes:
        fixes = Table.grid(padding=(0, 1))
        fixes.add_column(justify="right", style="dim")
        fixes.add_column(style="bold", no_wrap=True)
        fixes.add_column()
        for rank, fix in enumerate(d.fixes, start=1):
            fixes.add_row(f"{rank}.", fix.id, Text(fix.text))
        parts.append(indent(Group(Text("fixes", style="dim"), fixes)))
    return Group(*parts)


def indent(renderable: RenderableType, width: int = 2) -> Padding:
    return Padding(renderable, (0, 0, 0, width), expand=False)


class EvidenceTable:
    """Evidence as ``key value`` pairs in as many columns as the width allows (filled downwards,
    keys aligned); a value too wide to share a line gets a line of its own, after the others."""

    def __init__(self, evidence: dict[str, Any]) -> None:
        self.pairs = [(str(key), format_value(value)) for key, value in evidence.items()]

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        short = [p for p in self.pairs if _pair_width(p) <= width // 2]
        long = [p for p in self.pairs if _pair_width(p) > width // 2]
        if short:
            yield _pairs_grid(short, _columns_that_fit(short, width))
        if long:
            yield _pairs_grid(long, 1)


def _pair_width(pair: tuple[str, str]) -> int:
    return len(pair[0]) + 1 + len(pair[1])


def _columns_that_fit(pairs: list[tuple[str, str]], width: int, gap: int = 3) -> int:
    for n in range(min(len(pairs), 4), 1, -1):
        rows = -(-len(pairs) // n)
        columns = [pairs[i * rows:(i + 1) * rows] for i in range(n)]
        keys = [max(len(k) for k, _ in col) for col in columns if col]
        values = [max(len(v) for _, v in col) for col in columns if col]
        if sum(keys) + sum(values) + len(keys) + gap * (len(keys) - 1) <= width:
            return n
    return 1


def _pairs_grid(pairs: list[tuple[str, str]], n: int) -> Table:
    rows = -(-len(pairs) // n)
    grid = Table.grid(padding=(0, 1))
    for i in range(n):
        grid.add_column(style="dim", no_wrap=True)
        grid.add_column(no_wrap=n > 1)
        if i < n - 1:
            grid.add_column(width=1)  # the gap between pairs
    for r in range(rows):
        cells: list[str | Text] = []
        for i in range(n):
            k = i * rows + r
            key, value = pairs[k] if k < len(pairs) else ("", "")
            cells += [key, Text(value)]
            if i < n - 1:
                cells.append("")
        grid.add_row(*cells)
    return grid


# ---- layers ----------------------------------------------------------------------------------
def layers_view(table_data: LayerTable) -> RenderableType:
    if not table_data.rows:
        return Group(Rule("Layers", align="left"), Text("No layers recorded.", style="dim"))
    if table_data.last_sample is None:
        title = "Layers (no per-layer sample recorded yet)"
    else:
        title = (f"Layers: activations at step {table_data.last_sample} (last sample), "
                 f"gradient norms at steps {table_data.first_sample} and {table_data.last_sample}")
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    table.add_column("layer", overflow="fold")
    table.add_column("type", style="dim", no_wrap=True)
    for name in ("mean", "std", "zeros", "sat.", "grad first", "grad last"):
        table.add_column(name, justify="right", no_wrap=True)
    for row in table_data.rows:
        table.add_row(
            Text(row.name),
            Text(row.module_type or "—"),
            format_number(row.act_mean),
            format_number(row.act_std),
            format_fraction(row.zero_frac),
            format_fraction(row.sat_frac),
            format_number(row.grad_first),
            format_number(row.grad_last),
        )
    return Group(Rule(title, align="left"), table)


# ---- number formatting -----------------------------------------------------------------------
def format_number(value: float | int | None) -> str:
    """Four significant digits; ``—`` for unknown; NaN and Inf spelled out."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.4g}"


def format_fraction(value: float | None) -> str:
    if value is None:
        return "—"
    if math.isnan(value):
        return "nan"
    return f"{value:.1%}"


def format_duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def format_value(value: Any) -> str:
    """One evidence value on one line: numbers shortened, long lists cut."""
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, bool):
        return format_number(value)
    if isinstance(value, numbers.Integral):  # int and numpy integers
        return str(int(value))
    if isinstance(value, numbers.Real):  # float and numpy floats
        return format_number(float(value))
    if hasattr(value, "tolist"):  # a numpy array
        return format_value(value.tolist())
    if isinstance(value, (list, tuple)):
        items = [format_value(v) for v in value[:_MAX_LIST]]
        if len(value) > _MAX_LIST:
            items.append(f"… ({len(value)} values)")
        return "[" + ", ".join(items) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {format_value(v)}" for k, v in value.items()) + "}"
    return str(value)
