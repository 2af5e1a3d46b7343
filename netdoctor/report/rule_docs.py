"""Rules as documentation: the list ``netdoctor rules`` prints and one rule's explanation.

Takes the rule records from ``netdoctor.rules`` (duck-typed here, so that this module does not
import the engine) and returns rich renderables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from rich import box
from rich.console import Group, RenderableType
from rich.rule import Rule as RuleLine
from rich.table import Table
from rich.text import Text

from netdoctor.report.text import SEVERITY_STYLE, format_value, indent

if TYPE_CHECKING:  # pragma: no cover
    from netdoctor.rules import Rule


def rules_list(rules: Sequence[Rule]) -> RenderableType:
    """Every rule: id, severity and title, then its thresholds as ``name=default`` and where
    each default comes from."""
    id_width = max((len(r.id) for r in rules), default=0)
    blocks: list[RenderableType] = []
    for rule in rules:
        line = Table.grid(padding=(0, 2))
        line.add_column(style="bold", no_wrap=True, min_width=id_width)
        line.add_column(no_wrap=True, min_width=7)
        line.add_column()
        line.add_row(Text(rule.id), _severity(rule), Text(rule.title))
        blocks.append(line)
        if rule.thresholds:
            blocks.append(indent(_thresholds_grid(rule), 4))
    return Group(*blocks)


def _severity(rule: Rule) -> Text:
    return Text(str(rule.severity), style=SEVERITY_STYLE.get(rule.severity, ""))


def _thresholds_grid(rule: Rule) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(no_wrap=True)
    grid.add_column(style="dim")
    for t in rule.thresholds:
        grid.add_row(Text(f"{t.name}={format_value(t.default)}"), Text(t.source or ""))
    return grid


def rule_explanation(rule: Rule, fix_texts: Mapping[str, str]) -> RenderableType:
    """One rule in the sections of its ``RuleDoc``, then its thresholds and its fixes."""
    head = Text.assemble(
        (rule.id, "bold"),
        "  ",
        _severity(rule),
        "  ",
        rule.title,
    )
    parts: list[RenderableType] = [head]
    for title, body in (
        ("What it detects", rule.doc.what),
        ("Why it matters", rule.doc.why),
        ("How to fix", rule.doc.how_to_fix),
        ("Example", rule.doc.example),
    ):
        if body:
            parts += [Text(), _section(title), indent(Text(body.strip()))]
    parts += [Text(), _section("Thresholds")]
    if rule.thresholds:
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
        table.add_column("name", no_wrap=True, style="bold")
        table.add_column("default", no_wrap=True)
        table.add_column("meaning")
        table.add_column("source", style="dim")
        for t in rule.thresholds:
            table.add_row(Text(t.name), Text(format_value(t.default)), Text(t.description),
                          Text(t.source or ""))
        parts.append(indent(table))
    else:
        parts.append(indent(Text("none", style="dim")))
    parts += [Text(), _section("Fixes, most promising first")]
    fixes = Table.grid(padding=(0, 1))
    fixes.add_column(justify="right", style="dim")
    fixes.add_column(style="bold", no_wrap=True)
    fixes.add_column()
    for rank, fix_id in enumerate(rule.fixes, start=1):
        fixes.add_row(f"{rank}.", fix_id, Text(fix_texts.get(fix_id, "")))
    parts.append(indent(fixes if rule.fixes else Text("none", style="dim")))
    return Group(*parts)


def _section(title: str) -> RuleLine:
    return RuleLine(Text(title, style="bold"), align="left")

