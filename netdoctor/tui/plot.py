"""Line charts drawn with braille dots: a rich renderable, so any widget (or a test) can show one.

Textual has no line chart. A braille cell holds 2 x 4 dots, so a 40 x 8 cell plot is an 80 x 32
dot canvas: enough to see a loss fall, plateau or blow up. Long series are reduced per dot
column to the span they cover (min to max) in numpy, so drawing costs O(points + width), not a
Python loop per step. Non-finite values cannot be placed on an axis; they are marked with ``x``
on the top row, in the series' ``bad_style``, so that a NaN loss is as visible as a large one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.style import Style

#: Bit of each dot of a braille cell, indexed [dot row 0..3][dot column 0..1] (Unicode 2800 block).
_BRAILLE_BITS = np.array([[0x01, 0x08], [0x02, 0x10], [0x04, 0x20], [0x40, 0x80]], dtype=np.int64)
_BRAILLE_BASE = 0x2800
_NONFINITE = "x"
_MARKER_LINE = "┊"
_POINT = "•"


@dataclass(frozen=True)
class Series:
    """One line: x and y of equal length, x increasing. ``points`` draws each value as a ``•``
    instead of a line: a few epoch values read better as dots, and they stay apart from the
    line without colour."""

    name: str
    x: np.ndarray
    y: np.ndarray
    style: Style
    bad_style: Style
    points: bool = False


@dataclass(frozen=True, slots=True)
class Marker:
    """A vertical mark at ``x`` with a short ``label`` on the top row (a diagnosis' first step)."""

    x: float
    label: str
    style: Style


@dataclass(frozen=True, slots=True)
class Axis:
    """The value range a chart spans; ``log`` means the values are plotted as log10."""

    low: float
    high: float
    log: bool


def tick(value: float) -> str:
    """A short axis label: 3 significant digits, exponent form for very large or small values."""
    if not math.isfinite(value):
        return str(value)
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1e4 or magnitude < 1e-3:
        return f"{value:.1e}".replace("e+0", "e").replace("e-0", "e-").replace("e+", "e")
    return f"{value:.3g}"


def value_axis(series: Sequence[Series], log: bool) -> Axis | None:
    """The y range that holds every finite (and, on a log axis, positive) value; None if none."""
    values = [s.y[_plottable(s.y, log)] for s in series]
    values = [v for v in values if v.size]
    if not values:
        return None
    joined = np.concatenate(values).astype(np.float64)
    if log:
        joined = np.log10(joined)
    low, high = float(joined.min()), float(joined.max())
    if high - low < 1e-12:  # a flat line: give it some room so it sits mid-height
        pad = abs(low) * 0.1 if low else 1.0
        low, high = low - pad, high + pad
    return Axis(low, high, log)


def _plottable(y: np.ndarray, log: bool) -> np.ndarray:
    ok = np.isfinite(y)
    if log:
        ok &= y > 0
    return ok


class LineChart:
    """Braille line chart with a value axis on the left and the x range below.

    ``x_range`` fixes the horizontal extent (a replayed run keeps the whole run's width, so the
    data visibly stops at the cursor); by default it spans the data.
    """

    def __init__(
        self,
        series: Sequence[Series],
        *,
        log: bool = False,
        markers: Sequence[Marker] = (),
        x_range: tuple[float, float] | None = None,
        x_label: str = "step",
        height: int | None = None,
        axis_style: Style | None = None,
        empty_text: str = "no data yet",
    ) -> None:
        self.series = list(series)
        self.log = log
        self.markers = list(markers)
        self.x_range = x_range
        self.x_label = x_label
        self.height = height
        self.axis_style = axis_style or Style(dim=True)
        self.empty_text = empty_text

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        height = self.height or options.height or 8
        for line in self.lines(width, height):
            yield from line
            yield Segment.line()

    # ---- layout --------------------------------------------------------------------------------
    def lines(self, width: int, height: int) -> list[list[Segment]]:
        """The chart as ``height`` rows of segments, each exactly ``width`` cells wide."""
        axis = value_axis(self.series, self.log)
        x_lo, x_hi = self._x_extent()
        if axis is None or x_lo is None or width < 12 or height < 3:
            return self._empty(width, height)
        labels = [tick(self._unlog(axis.high, axis)), tick(self._unlog(axis.low, axis))]
        if height >= 5:
            labels.insert(1, tick(self._unlog((axis.high + axis.low) / 2, axis)))
        label_w = max(len(t) for t in labels)
        plot_w, plot_h = width - label_w - 1, height - 1
        cells, owners = self._draw(axis, x_lo, x_hi, plot_w, plot_h)
        glyphs = self._glyphs(cells, owners)
        self._overlay(glyphs, x_lo, x_hi, plot_w)
        rows: list[list[Segment]] = []
        label_rows = {0: labels[0], plot_h - 1: labels[-1]}
        if len(labels) == 3:
            label_rows[(plot_h - 1) // 2] = labels[1]
        for r in range(plot_h):
            label = label_rows.get(r, "")
            row = [Segment(label.rjust(label_w) + " ", self.axis_style)]
            row += _merge(glyphs[r])
            rows.append(row)
        rows.append(self._x_axis(x_lo, x_hi, label_w, plot_w))
        return rows

    def _x_extent(self) -> tuple[float | None, float]:
        if self.x_range is not None:
            lo, hi = self.x_range
        else:
            xs = [s.x for s in self.series if s.x.size]
            if not xs:
                return None, 0.0
            lo = float(min(x.min() for x in xs))
            hi = float(max(x.max() for x in xs))
        if hi <= lo:
            hi = lo + 1.0
        return float(lo), float(hi)

    @staticmethod
    def _unlog(value: float, axis: Axis) -> float:
        return 10.0**value if axis.log else value

    def _empty(self, width: int, height: int) -> list[list[Segment]]:
        text = self.empty_text[:width].center(width)
        rows = [[Segment(" " * width)] for _ in range(height)]
        if height:
            rows[height // 2] = [Segment(text, self.axis_style)]
        return rows

    def _x_axis(self, x_lo: float, x_hi: float, label_w: int, plot_w: int) -> list[Segment]:
        left, right = tick(x_lo), tick(x_hi)
        middle = self.x_label
        gap = plot_w - len(left) - len(right)
        if gap >= len(middle) + 2:
            pad = gap - len(middle)
            text = left + " " * (pad // 2) + middle + " " * (pad - pad // 2) + right
        elif gap >= 1:
            text = left + " " * gap + right
        else:
            text = left[:plot_w].ljust(plot_w)
        return [Segment(" " * (label_w + 1) + text, self.axis_style)]

    # ---- drawing -------------------------------------------------------------------------------
    def _draw(
        self, axis: Axis, x_lo: float, x_hi: float, plot_w: int, plot_h: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Braille bit patterns (plot_h, plot_w) and which series owns each cell (-1: none)."""
        dot_w, dot_h = plot_w * 2, plot_h * 4
        cells = np.zeros((plot_h, plot_w), dtype=np.int64)
        owners = np.full((plot_h, plot_w), -1, dtype=np.int64)
        self._bad: list[tuple[int, int]] = []  # (cell column, series) with a non-finite value
        self._points: list[tuple[int, int, int]] = []  # (cell row, cell column, series)
        for index, s in enumerate(self.series):
            if not s.x.size:
                continue
            x = np.asarray(s.x, dtype=np.float64)
            y = np.asarray(s.y, dtype=np.float64)
            col = np.clip(np.round((x - x_lo) / (x_hi - x_lo) * (dot_w - 1)), 0, dot_w - 1)
            col = col.astype(np.int64)
            in_range = (x >= x_lo) & (x <= x_hi)
            bad = ~_plottable(y, axis.log) & ~(axis.log & np.isfinite(y)) & in_range
            self._bad += [(int(c) // 2, index) for c in np.unique(col[bad])]
            ok = _plottable(y, axis.log) & in_range
            if not ok.any():
                continue
            values = np.log10(y[ok]) if axis.log else y[ok]
            row = (dot_h - 1) - np.round((values - axis.low) / (axis.high - axis.low) * (dot_h - 1))
            row = np.clip(row, 0, dot_h - 1).astype(np.int64)
            if s.points:  # glyphs, drawn over the lines in _overlay
                pairs = zip(row.tolist(), col[ok].tolist(), strict=True)
                self._points += [(r // 4, c // 2, index) for r, c in pairs]
                continue
            dots = np.zeros((dot_h, dot_w), dtype=bool)
            _trace(dots, col[ok], row)
            hit = _to_cells(dots, plot_h, plot_w)
            cells |= hit
            owners[hit != 0] = index
        return cells, owners

    def _glyphs(self, cells: np.ndarray, owners: np.ndarray) -> list[list[tuple[str, Style]]]:
        blank = Style()
        glyphs: list[list[tuple[str, Style]]] = []
        for r in range(cells.shape[0]):
            row = []
            for c in range(cells.shape[1]):
                bits = int(cells[r, c])
                if bits:
                    row.append((chr(_BRAILLE_BASE + bits), self.series[owners[r, c]].style))
                else:
                    row.append((" ", blank))
            glyphs.append(row)
        return glyphs

    def _overlay(
        self, glyphs: list[list[tuple[str, Style]]], x_lo: float, x_hi: float, plot_w: int
    ) -> None:
        """Markers under the data (only in empty cells), non-finite marks on the top row."""
        for marker in self.markers:
            if not x_lo <= marker.x <= x_hi:
                continue
            c = round((marker.x - x_lo) / (x_hi - x_lo) * (plot_w * 2 - 1)) // 2
            for r in range(1, len(glyphs)):
                if glyphs[r][c][0] == " ":
                    glyphs[r][c] = (_MARKER_LINE, marker.style)
            label = marker.label[: max(plot_w - c, 1)]
            for i, ch in enumerate(label):
                if c + i < plot_w:
                    glyphs[0][c + i] = (ch, marker.style + Style(bold=True))
        for r, c, index in self._points:
            glyphs[r][c] = (_POINT, self.series[index].style)
        for c, index in self._bad:
            if 0 <= c < plot_w and glyphs:
                glyphs[0][c] = (_NONFINITE, self.series[index].bad_style)


def _trace(dots: np.ndarray, col: np.ndarray, row: np.ndarray) -> None:
    """Connect the points: per dot column the span of its values, joined to the previous column
    by a straight line across any gap in x."""
    starts = np.flatnonzero(np.r_[True, col[1:] != col[:-1]])
    ends = np.r_[starts[1:], col.size] - 1
    lo = np.minimum.reduceat(row, starts)
    hi = np.maximum.reduceat(row, starts)
    cols, first, last = col[starts], row[starts], row[ends]
    for i in range(cols.size):
        c, a, b = int(cols[i]), int(lo[i]), int(hi[i])
        if i:
            prev_c, prev_r, target = int(cols[i - 1]), int(last[i - 1]), int(first[i])
            gap = c - prev_c

            def at(k: int, r0: int = prev_r, r1: int = target, n: int = gap) -> int:
                return round(r0 + (r1 - r0) * k / n)

            for k in range(1, gap):
                r_from, r_to = at(k - 1), at(k)
                dots[min(r_from, r_to) : max(r_from, r_to) + 1, prev_c + k] = True
            before = at(gap - 1)
            a, b = min(a, before), max(b, before)
        dots[a : b + 1, c] = True


def _to_cells(dots: np.ndarray, plot_h: int, plot_w: int) -> np.ndarray:
    """(dot_h, dot_w) booleans -> (plot_h, plot_w) braille bit patterns."""
    # (cell row, dot row, cell column, dot column)
    grid = dots.reshape(plot_h, 4, plot_w, 2).astype(np.int64)
    return np.einsum("rhcw,hw->rc", grid, _BRAILLE_BITS)


def _merge(glyphs: list[tuple[str, Style]]) -> list[Segment]:
    """Runs of equally styled glyphs as one segment each (fewer segments, faster rendering)."""
    segments: list[Segment] = []
    text, style = "", None
    for ch, st in glyphs:
        if st is style or st == style:
            text += ch
        else:
            if text:
                segments.append(Segment(text, style))
            text, style = ch, st
    if text:
        segments.append(Segment(text, style))
    return segments
