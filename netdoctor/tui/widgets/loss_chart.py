"""The loss panel: train loss per step, validation loss per epoch, and where diagnoses began."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rich.console import RenderableType

from netdoctor.diagnosis import Severity
from netdoctor.tui.plot import LineChart, Marker, Series
from netdoctor.tui.run_view import LossData
from netdoctor.tui.widgets.themed import Themed


@dataclass(frozen=True, slots=True)
class Onset:
    """A diagnosis' first step, labelled with its number in the diagnoses panel."""

    step: int
    label: str
    severity: Severity


class LossChart(Themed):
    """Braille loss curves; on a log scale (``l``, or by itself for a loss spanning decades)
    it plots log10(loss)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.data: LossData | None = None
        self.onsets: tuple[Onset, ...] = ()
        self.log_choice: bool | None = None  # None: decide from the data (see spans_decades)

    def show(self, data: LossData, onsets: tuple[Onset, ...]) -> None:
        self.data, self.onsets = data, onsets
        self._retitle()
        self.refresh()

    @property
    def log_scale(self) -> bool:
        if self.log_choice is not None:
            return self.log_choice
        return self.data is not None and spans_decades(self.data)

    def toggle_log(self) -> None:
        self.log_choice = not self.log_scale
        self._retitle()
        self.refresh()

    def _retitle(self) -> None:
        title = "Loss  ⣀ train"
        if self.data is not None and self.data.val_loss.size:
            title += "  • val"
        if self.log_scale:
            title += "  (log)"
        self.border_title = title
        self.border_subtitle = _accuracy(self.data)

    def render(self) -> RenderableType:
        p = self.palette
        data = self.data
        height = max(self.content_size.height, 1)
        if data is None:
            return LineChart([], height=height, axis_style=p.muted, empty_text="reading…")
        series = []
        if data.steps.size:
            series.append(Series("train", data.steps, data.loss, p.train, p.error))
        elif data.epoch_steps.size:
            series.append(Series("train", data.epoch_steps, data.epoch_train, p.train, p.error))
        if data.val_loss.size:
            series.append(Series("val", data.val_steps, data.val_loss, p.val, p.error,
                                 points=True))
        by_step: dict[int, list[Onset]] = {}
        for onset in self.onsets:
            by_step.setdefault(onset.step, []).append(onset)
        markers = [
            Marker(step, ",".join(o.label for o in group),
                   p.severity(min(group, key=lambda o: -o.severity.rank).severity))
            for step, group in sorted(by_step.items())
        ]
        return LineChart(series, log=self.log_scale, markers=markers, x_range=data.x_range,
                         height=height, axis_style=p.muted, empty_text="no loss recorded yet")


def spans_decades(data: LossData, decades: float = 3.0) -> bool:
    """A loss that spans more than ``decades`` powers of ten (a blow-up) reads only on a log
    scale: on a linear one everything before the blow-up is a flat line at the bottom."""
    values = np.concatenate([data.loss, data.epoch_train, data.val_loss])
    values = values[np.isfinite(values) & (values > 0)]
    return bool(values.size) and float(values.max() / values.min()) >= 10.0**decades


def _accuracy(data: LossData | None) -> str:
    if data is None:
        return ""
    parts = []
    if data.train_acc is not None:
        parts.append(f"acc {data.train_acc:.1%}")
    if data.val_acc is not None:
        parts.append(f"val {data.val_acc:.1%}")
    return " · ".join(parts)
