"""Layer x time heatmap of RMS gradients on one log scale for all layers.

One shared scale is the point: a first layer whose gradients are a million times smaller than
the last one's (vanishing) is a cold row under hot ones; gradients that grow step after step
(exploding) warm up from left to right. Colour carries the level; without colour (NO_COLOR) the
bar height does, so the map still reads.
"""

from __future__ import annotations

import numpy as np
from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.style import Style
from textual.containers import VerticalScroll
from textual.geometry import Size

from netdoctor.tui.glyphs import BARS, levels, log10_or_nan, time_any, time_bins
from netdoctor.tui.palette import HEAT_LEVELS, Palette
from netdoctor.tui.plot import tick
from netdoctor.tui.run_view import GradHeat
from netdoctor.tui.widgets.themed import Themed

_LABEL_MAX = 14
_BAD = "✕"


class HeatmapRenderable:
    def __init__(
        self, heat: GradHeat, highlight: frozenset[str], palette: Palette, colour: bool
    ) -> None:
        self.heat = heat
        self.highlight = highlight
        self.palette = palette
        self.colour = colour

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for row in self.rows(options.max_width):
            yield from row
            yield Segment.line()

    def rows(self, width: int) -> list[list[Segment]]:
        heat, p = self.heat, self.palette
        if not heat.modules:
            return [[Segment("no gradients recorded yet".ljust(width), p.muted)]]
        names = [m or "(root)" for m in heat.modules]
        label_w = min(max(len(n) for n in names), _LABEL_MAX) + 2
        cells_w = max(width - label_w - 1, 1)
        logs = log10_or_nan(heat.rms)  # (m, L)
        binned = time_bins(heat.steps, logs, heat.x_range, cells_w)  # (w, L)
        bad = time_any(heat.steps, heat.nonfinite, heat.x_range, cells_w)  # (w, L)
        finite = binned[~np.isnan(binned)]
        low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        marks = levels(binned, low, high, HEAT_LEVELS)  # (w, L)
        out = [self._legend(low, high, label_w + 1, width)]
        for i, name in enumerate(names):
            lit = heat.modules[i] in self.highlight
            label = ("▶" if lit else " ") + name[-(label_w - 2):].rjust(label_w - 2) + " "
            style = Style(bold=True, reverse=True) if lit else p.muted
            row = [Segment(label, style), Segment(" ")]
            row += self._cells(marks[:, i], bad[:, i])
            out.append(row)
        return out

    def _cells(self, marks: np.ndarray, bad: np.ndarray) -> list[Segment]:
        segments = []
        for level, is_bad in zip(marks.tolist(), bad.tolist(), strict=True):
            if is_bad:
                segments.append(Segment(_BAD, self.palette.error))
            elif level < 0:
                segments.append(Segment(" "))
            else:
                glyph = "█" if self.colour else BARS[level * len(BARS) // HEAT_LEVELS]
                segments.append(Segment(glyph, self.palette.heat[level]))
        return Segment.simplify(segments)  # type: ignore[return-value]

    def _legend(self, low: float, high: float, indent: int, width: int) -> list[Segment]:
        p = self.palette
        scale = [Segment(" " * indent + "RMS grad " + tick(10**low) + " ", p.muted)]
        for level in range(HEAT_LEVELS):
            glyph = "█" if self.colour else BARS[level * len(BARS) // HEAT_LEVELS]
            scale.append(Segment(glyph, p.heat[level]))
        scale.append(Segment(" " + tick(10**high), p.muted))
        if self.heat.x_range is not None:
            lo, hi = self.heat.x_range
            scale.append(Segment(f"  steps {tick(lo)}–{tick(hi)}", p.muted))
        scale.append(Segment(f"  {_BAD} non-finite", p.muted))
        used = sum(len(s.text) for s in scale)
        if used > width:  # a narrow panel: keep the scale, drop the notes
            scale = scale[: 1 + HEAT_LEVELS + 1]
        return scale


class GradHeatmap(Themed):
    """The heatmap widget: its scale on the first line, then a row per layer (as tall as it
    has layers; its container scrolls)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.heat: GradHeat | None = None
        self.highlight: frozenset[str] = frozenset()

    def show(self, heat: GradHeat, highlight: frozenset[str]) -> None:
        resize = self.heat is None or len(self.heat.modules) != len(heat.modules)
        self.heat, self.highlight = heat, highlight
        self.refresh(layout=resize)

    def mark(self, highlight: frozenset[str]) -> None:
        if highlight != self.highlight:
            self.highlight = highlight
            self.refresh()

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        if self.heat is None or not self.heat.modules:
            return 1
        return len(self.heat.modules) + 1

    def render(self) -> HeatmapRenderable | str:
        if self.heat is None:
            return ""
        return HeatmapRenderable(self.heat, self.highlight, self.palette, not self.app.no_color)


class HeatScroll(VerticalScroll, can_focus=False):
    """The heatmap's scroller: scrolls with the mouse, but stays out of the tab order, so that
    tab goes straight from the layers to the diagnoses."""
