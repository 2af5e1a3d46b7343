"""One layer in detail: its gradient norm, update ratio, activations and dead/saturated share
over the run, each as a chart."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid
from textual.screen import Screen
from textual.widgets import Footer, Static

from netdoctor.tui.run_view import LayerView
from netdoctor.tui.widgets.chart_panel import ChartPanel, Line


def _measured(values: np.ndarray) -> bool:
    return bool(values.size) and not bool(np.isnan(values).all())


class LayerScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,backspace", "app.pop_screen", "Back")]

    def __init__(self, layer: LayerView, x_range: tuple[float, float] | None) -> None:
        super().__init__(classes="detail")
        self.layer_view = layer
        self.x_range = x_range

    def compose(self) -> ComposeResult:
        layer, steps = self.layer_view, self.layer_view.history_steps
        title = Text.assemble(("Layer ", "bold"), (layer.name, "bold"),
                              f"  {layer.module_type or ''}  ", (layer.health.value, "bold"))
        if layer.reasons:
            title.append("  " + "; ".join(layer.reasons))
        yield Static(title, id="layer-title")
        with Grid(id="layer-charts"):
            if _measured(layer.grad_history):
                yield ChartPanel("Gradient norm", [Line("grad", steps, layer.grad_history)],
                                 log=True, x_range=self.x_range)
                yield ChartPanel("Update / weight", [Line("ratio", steps, layer.update_history)],
                                 log=True, x_range=self.x_range)
            yield ChartPanel(
                "Activations",
                [Line("std", steps, layer.std_history), Line("mean", steps, layer.mean_history)],
                x_range=self.x_range,
            )
            share = [Line("dead", steps, layer.dead_history)] if _measured(layer.dead_history) \
                else []
            if _measured(layer.saturated_history):
                share.append(Line("saturated", steps, layer.saturated_history))
            yield ChartPanel("Dead / saturated share", share, x_range=self.x_range)
        yield Footer()
