"""The diagnoses panel: a list (severity, rule, first step, layer) and the selected one's
message, evidence and ranked fixes, drawn by the same code as the text report."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Static

from netdoctor.diagnosis import Diagnosis, Severity
from netdoctor.report.text import diagnosis_view
from netdoctor.tui.widgets.themed import Themed

SEVERITY_GLYPH = {Severity.ERROR: "✕", Severity.WARNING: "▲", Severity.INFO: "i"}
COLUMNS = ("#", "rule", "step", "layer")


def diagnosis_key(d: Diagnosis) -> str:
    """Stable across refreshes of a growing log: the same finding keeps its row."""
    return f"{d.rule}|{d.layer}"


def _same(a: Sequence[Diagnosis], b: Sequence[Diagnosis]) -> bool:
    """Equal as shown (evidence may hold numpy arrays, which do not compare to one bool)."""
    def shown(ds: Sequence[Diagnosis]) -> list[tuple[object, ...]]:
        return [(d.rule, d.severity, d.step, d.layer, d.message) for d in ds]

    return shown(a) == shown(b)


class DiagnosesPanel(Themed, Vertical):
    class Highlighted(Message):
        """The cursor moved to a diagnosis (None: the list is empty)."""

        def __init__(self, diagnosis: Diagnosis | None) -> None:
            super().__init__()
            self.diagnosis = diagnosis

    class Opened(Message):
        """``enter`` on a diagnosis: show all of it."""

        def __init__(self, diagnosis: Diagnosis) -> None:
            super().__init__()
            self.diagnosis = diagnosis

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.diagnoses: tuple[Diagnosis, ...] = ()
        self._keys: tuple[str, ...] = ()
        self._described: tuple[object, ...] | None = None

    def compose(self) -> ComposeResult:
        table: DataTable[Text] = DataTable(id="diagnosis-table", cursor_type="row")
        yield table
        with VerticalScroll(id="diagnosis-detail"):
            yield Static(id="diagnosis-text")

    def on_mount(self) -> None:
        super().on_mount()
        table = self.query_one(DataTable)
        for column in COLUMNS:
            table.add_column(column, key=column)
        self.border_title = "Diagnoses"

    @property
    def selected(self) -> Diagnosis | None:
        table = self.query_one(DataTable)
        if not self.diagnoses or not table.row_count:
            return None
        return self.diagnoses[min(table.cursor_row, len(self.diagnoses) - 1)]

    def show(self, diagnoses: Sequence[Diagnosis], force: bool = False) -> None:
        """Show these diagnoses; the same findings as before (a live refresh) keep the cursor
        and the scroll and redraw only what changed."""
        if not force and self._keys and _same(diagnoses, self.diagnoses):
            return
        keys = tuple(diagnosis_key(d) for d in diagnoses)
        previous = self.selected
        self.diagnoses = tuple(diagnoses)
        table = self.query_one(DataTable)
        rows = [self._cells(number, d) for number, d in enumerate(self.diagnoses, start=1)]
        if not force and keys == self._keys:
            for key, cells in zip(keys, rows, strict=True):
                for column, cell in zip(COLUMNS, cells, strict=True):
                    table.update_cell(key, column, cell)
            self._describe()
        else:
            table.clear()
            for key, cells in zip(keys, rows, strict=True):
                table.add_row(*cells, key=key)
            if previous is not None and diagnosis_key(previous) in keys:
                table.move_cursor(row=keys.index(diagnosis_key(previous)), animate=False)
            self._keys = keys
            self._describe(force=True)
        counts = {s: sum(d.severity is s for d in self.diagnoses) for s in Severity}
        tally = ", ".join(f"{n} {s.value}{'s' if n != 1 else ''}" for s, n in counts.items() if n)
        self.border_title = f"Diagnoses ({tally})" if tally else "Diagnoses"

    def _cells(self, number: int, d: Diagnosis) -> list[Text]:
        style = self.palette.severity(d.severity)
        return [
            Text(str(number), style=style),
            Text.assemble((f"{SEVERITY_GLYPH[d.severity]} ", style), (d.rule, "bold")),
            Text("—" if d.step is None else str(d.step), justify="right"),
            Text(d.layer or "—"),
        ]

    def theme_changed(self) -> None:
        self.show(self.diagnoses, force=True)

    def _describe(self, force: bool = False) -> None:
        """The selected diagnosis in full below the list (redrawn only when it changed)."""
        chosen = self.selected
        shown = None if chosen is None else (chosen.rule, chosen.step, chosen.layer,
                                             chosen.message, repr(chosen.evidence))
        if force or shown != self._described:
            text = self.query_one("#diagnosis-text", Static)
            if chosen is None:
                message = "No problems found: no rule fired on this run." \
                    if not self.diagnoses else ""
                text.update(Text(message, style=self.palette.ok))
            else:
                text.update(diagnosis_view(chosen))
            self._described = shown
        self.post_message(self.Highlighted(chosen))

    @on(DataTable.RowHighlighted, "#diagnosis-table")
    def _moved(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._describe()

    @on(DataTable.RowSelected, "#diagnosis-table")
    def _opened(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if self.selected is not None:
            self.post_message(self.Opened(self.selected))
