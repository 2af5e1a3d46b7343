"""A titled braille chart of one or two series: the building block of the layer detail screen."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from rich.console import RenderableType

from netdoctor.tui.plot import LineChart, Series
from netdoctor.tui.widgets.themed import Themed


@dataclass(frozen=True)
class Line:
    """A series to draw; the first line of a chart gets the primary colour, the second the
    secondary one (and is drawn as points, so that the two differ without colour)."""

    name: str
    x: np.ndarray
    y: np.ndarray


class ChartPanel(Themed):
    def __init__(
        self,
        title: str,
        lines: Sequence[Line],
        *,
        log: bool = False,
        x_range: tuple[float, float] | None = None,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id, classes="chart")
        self.lines = list(lines)
        self.log_y = log
        self.x_range = x_range
        legend = "  ".join(
            f"{'⣀' if i == 0 else '•'} {line.name}" for i, line in enumerate(self.lines)
        )
        self.border_title = f"{title}  {legend}" + ("  (log)" if log else "")

    def render(self) -> RenderableType:
        p = self.palette
        styles = (p.train, p.val)
        series = [
            Series(line.name, line.x, line.y, styles[min(i, 1)], p.error, points=i > 0)
            for i, line in enumerate(self.lines)
        ]
        return LineChart(series, log=self.log_y, x_range=self.x_range,
                         height=max(self.content_size.height, 1), axis_style=p.muted,
                         empty_text="not measured for this layer")
