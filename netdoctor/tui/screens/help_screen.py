"""Help: the keys and the rules, from the same source as ``netdoctor rules``.

Opened on a diagnosis, it starts with that rule's full explanation (what it detects, why it
matters, how to fix it, its thresholds and fixes), so that ``?`` answers "what does this mean
and what do I do about it" for what is on screen.
"""

from __future__ import annotations

from typing import ClassVar

from rich.console import Group, RenderableType
from rich.rule import Rule as RuleLine
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from netdoctor.errors import ConfigError
from netdoctor.report.rule_docs import rule_explanation, rules_list

#: Every key the app answers to (a test checks this against the bindings).
KEYS: tuple[tuple[str, str], ...] = (
    ("q", "quit (a live run is stopped first and its log closed)"),
    ("?", "this help; on a diagnosis, its rule first"),
    ("tab / shift+tab", "move between the layers and the diagnoses"),
    ("↑ ↓", "move in a list"),
    ("enter", "on a layer: its charts; on a diagnosis: all of it"),
    ("/", "filter the layers (words in name, type or health; esc clears)"),
    ("l", "loss on a log scale, or back"),
    ("[ ]", "step cursor back / forward: the panels show the run up to that step"),
    ("{ }", "step cursor 10 stops back / forward; past the end follows the latest step"),
    ("r", "read the log again (a saved log)"),
    ("p", "pause or resume training (live run)"),
    ("s", "stop training; the log is closed and diagnosed (live run)"),
    ("f", "apply the selected diagnosis' first fix and re-run, then compare (live run)"),
    ("esc", "back from a detail screen"),
    ("ctrl+p", "commands, e.g. a light or dark theme"),
)


def keys_table() -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for key, what in KEYS:
        table.add_row(key, what)
    return table


def help_content(rule_id: str | None) -> RenderableType:
    from netdoctor.rules import all_rules, get_rule
    from netdoctor.rules.fixes import FIXES

    parts: list[RenderableType] = []
    if rule_id is not None:
        try:
            parts += [rule_explanation(get_rule(rule_id), FIXES), Text()]
        except ConfigError:  # a rule this version does not know (an older or newer log)
            parts += [Text(f"no explanation for rule {rule_id!r} in this netdoctor"), Text()]
    parts += [_section("Keys"), keys_table(), Text()]
    parts += [_section("Rules (netdoctor rules ID explains one)"), rules_list(all_rules())]
    return Group(*parts)


def _section(title: str) -> RuleLine:
    return RuleLine(Text(title, style="bold"), align="left")


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,backspace,question_mark", "app.pop_screen", "Back")
    ]

    def __init__(self, rule_id: str | None = None) -> None:
        super().__init__()
        self.rule_id = rule_id

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help") as box:
            box.border_title = "netdoctor help"
            yield Static(help_content(self.rule_id))
        yield Footer()
