"""The layers panel: one row per layer with its health, a filter, and ``enter`` for its detail.

Rows are rebuilt only when the set of shown layers changes (a filter, a new run); otherwise the
cells are updated in place, so that the cursor and the scroll position survive a live refresh.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from rich.style import Style
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Input

from netdoctor.report.text import format_number
from netdoctor.tui.glyphs import sparkline
from netdoctor.tui.health import Health
from netdoctor.tui.palette import Palette
from netdoctor.tui.run_view import LayerView
from netdoctor.tui.widgets.themed import Themed

#: Shown before a layer's name, so that health reads without colour too.
HEALTH_GLYPH = {Health.ERROR: "✕", Health.WARNING: "▲", Health.OK: "·", Health.UNKNOWN: " "}
COLUMNS = ("layer", "grad", "update", "mean", "std", "dead", "sat", "trend")
TREND_WIDTH = 10


def matches(layer: LayerView, text: str) -> bool:
    """Filter: every word of ``text`` in the layer's name, module type, health or the rules
    that name it (any case): "conv", "relu", "warning", "vanishing"."""
    rules = [reason for reason in layer.reasons if " " not in reason]
    haystack = " ".join([layer.name, layer.module_type or "", layer.health.value, *rules])
    return all(word in haystack.lower() for word in text.lower().split())


def layer_cells(
    layer: LayerView,
    palette: Palette,
    highlighted: bool,
    x_range: tuple[float, float] | None,
    bands_flag: frozenset[str],
) -> list[Text]:
    """The row's cells; ``bands_flag`` names the statistics outside their healthy band."""
    health = palette.health(layer.health)
    mark = "▶" if highlighted else " "
    name = Text.assemble((mark, health), (HEALTH_GLYPH[layer.health] + " ", health),
                         (layer.name, health + Style(bold=highlighted, reverse=highlighted)))
    if layer.grad_history.size and not _all_nan(layer.grad_history):
        trend = Text(sparkline(layer.history_steps, layer.grad_history, x_range, TREND_WIDTH),
                     style=health)
    else:  # a row without gradients (an activation): the spread of its values over time
        trend = Text(sparkline(layer.history_steps, layer.std_history, x_range, TREND_WIDTH,
                               log=False), style=palette.muted)
    return [
        name,
        _number(layer.grad, palette, "grad" in bands_flag),
        _ratio(layer.update_ratio, palette, "update" in bands_flag),
        _number(layer.act_mean, palette, False),
        _number(layer.act_std, palette, False),
        _fraction(layer.dead, palette, "dead" in bands_flag),
        _fraction(layer.saturated, palette, "sat" in bands_flag),
        trend,
    ]


def flagged(layer: LayerView) -> frozenset[str]:
    """Which statistics the health reasons point at (their cells get the warning colour)."""
    found = set()
    for reason in layer.reasons:
        for key, word in (("dead", "dead"), ("sat", "saturated"), ("update", "update ratio")):
            if reason.startswith(word):
                found.add(key)
    return frozenset(found)


def _same_cell(a: Text, b: Text) -> bool:
    return a.plain == b.plain and a.style == b.style and a.spans == b.spans


def _all_nan(values: np.ndarray) -> bool:
    return bool(np.isnan(values).all())


def _bad(value: float | None) -> bool:
    return value is not None and not math.isfinite(value)


def _number(value: float | None, palette: Palette, warn: bool) -> Text:
    style = palette.error if _bad(value) else palette.warning if warn else Style()
    return Text(format_number(value), style=style, justify="right")


def _ratio(value: float | None, palette: Palette, warn: bool) -> Text:
    text = "—" if value is None else format_number(value) if _bad(value) else f"{value:.1e}"
    return Text(text, style=palette.warning if warn else Style(), justify="right")


def _fraction(value: float | None, palette: Palette, warn: bool) -> Text:
    text = "—" if value is None else "nan" if math.isnan(value) else f"{value:.0%}"
    return Text(text, style=palette.warning if warn else Style(), justify="right")


class LayersPanel(Themed, Vertical):
    """The layer table with its filter box (hidden until ``/``)."""

    class Chosen(Message):
        """``enter`` on a layer: show its detail."""

        def __init__(self, key: str) -> None:
            super().__init__()
            self.key = key

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.layer_views: tuple[LayerView, ...] = ()
        self.highlight: frozenset[str] = frozenset()
        self.x_range: tuple[float, float] | None = None
        self.filter_text = ""
        self._shown_keys: tuple[str, ...] = ()
        self._cells: dict[str, list[Text]] = {}  # what each shown row holds now

    def compose(self) -> ComposeResult:
        yield Input(placeholder="filter layers: name, type, health…", id="layer-filter")
        table: DataTable[Text] = DataTable(id="layer-table", cursor_type="row", zebra_stripes=True)
        yield table

    def on_mount(self) -> None:
        super().on_mount()
        table = self.query_one(DataTable)
        for column in COLUMNS:
            table.add_column(column, key=column)
        self._retitle()

    @property
    def table(self) -> DataTable[Text]:
        return self.query_one("#layer-table", DataTable)

    def show(
        self,
        layers: Sequence[LayerView],
        highlight: frozenset[str],
        x_range: tuple[float, float] | None,
    ) -> None:
        self.layer_views, self.highlight, self.x_range = tuple(layers), highlight, x_range
        self._fill()

    def mark(self, highlight: frozenset[str]) -> None:
        """Highlight the layers of these modules (the ones the selected diagnosis names)."""
        if highlight != self.highlight:
            self.highlight = highlight
            self._fill()

    def theme_changed(self) -> None:
        self._shown_keys = ()  # styles are baked into the cells: rebuild them
        self._fill()

    def current_key(self) -> str | None:
        table = self.table
        if not table.row_count:
            return None
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        return row_key.value

    # ---- filter ----------------------------------------------------------------------------
    def open_filter(self) -> None:
        box = self.query_one("#layer-filter", Input)
        box.add_class("-open")
        box.focus()

    def close_filter(self, clear: bool) -> None:
        box = self.query_one("#layer-filter", Input)
        if clear:
            box.value = ""
        box.remove_class("-open")
        self.table.focus()

    @on(Input.Changed, "#layer-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value.strip()
        self._fill()

    @on(Input.Submitted, "#layer-filter")
    def _filter_done(self) -> None:
        self.close_filter(clear=False)

    def key_escape(self) -> None:
        """``escape`` in the filter box (or on the table while a filter is on) clears it."""
        if self.filter_text or self.query_one("#layer-filter", Input).has_class("-open"):
            self.close_filter(clear=True)

    @on(DataTable.RowSelected, "#layer-table")
    def _chosen(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.row_key.value is not None:
            self.post_message(self.Chosen(event.row_key.value))

    # ---- rows --------------------------------------------------------------------------------
    def _retitle(self) -> None:
        shown, total = len(self._shown_keys), len(self.layer_views)
        title = "Layers"
        if self.filter_text:
            title += f"  /{self.filter_text}  ({shown} of {total})"
        self.border_title = title

    def _fill(self) -> None:
        if not self.is_mounted:
            return
        table = self.table
        shown = [layer for layer in self.layer_views
                 if not self.filter_text or matches(layer, self.filter_text)]
        keys = tuple(layer.key for layer in shown)
        rows = [
            layer_cells(layer, self.palette, layer.module in self.highlight, self.x_range,
                        flagged(layer))
            for layer in shown
        ]
        if keys != self._shown_keys:
            current = self.current_key()
            table.clear()
            for key, cells in zip(keys, rows, strict=True):
                table.add_row(*cells, key=key)
            if current in keys:
                table.move_cursor(row=keys.index(current), animate=False)
            self._shown_keys = keys
        else:  # same rows: touch only the cells that changed (each update redraws the row)
            for key, cells in zip(keys, rows, strict=True):
                before = self._cells.get(key, ())
                for i, (column, cell) in enumerate(zip(COLUMNS, cells, strict=True)):
                    if i >= len(before) or not _same_cell(before[i], cell):
                        table.update_cell(key, column, cell)
        self._cells = dict(zip(keys, rows, strict=True))
        self._retitle()
