"""The main screen: header, loss, diagnoses, layers, gradient heatmap, and the step cursor.

The screen holds the latest snapshot of the log and the replay cursor. Views are computed off
the UI thread (a replay re-runs the rules on the run cut at the cursor) and come back as
``ViewReady`` messages; a stale one (the cursor moved on meanwhile) is dropped.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container, Vertical
from textual.events import Resize
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Static
from textual.worker import get_current_worker

from netdoctor.diagnosis import Diagnosis
from netdoctor.tui.health import HealthBands
from netdoctor.tui.live import LiveProgress
from netdoctor.tui.log_poller import Diagnose, Snapshot
from netdoctor.tui.messages import ViewReady
from netdoctor.tui.replay import cut_run, last_step, move_cursor
from netdoctor.tui.run_view import RunView, build_view
from netdoctor.tui.screens.diagnosis_screen import DiagnosisScreen
from netdoctor.tui.screens.layer_screen import LayerScreen
from netdoctor.tui.widgets.diagnoses_panel import DiagnosesPanel
from netdoctor.tui.widgets.grad_heatmap import GradHeatmap, HeatScroll
from netdoctor.tui.widgets.layers_panel import LayersPanel
from netdoctor.tui.widgets.loss_chart import LossChart, Onset
from netdoctor.tui.widgets.run_header import HeaderState, RunHeader

#: From this size on, the diagnoses get a column of their own, the full height of the screen.
WIDE = (120, 32)
#: Rows the heatmap panel may take: at most this many on a small screen, and this share of a
#: large one.
HEAT_ROWS = 6
HEAT_SHARE = 0.35
#: Live progress redraws the header at most this often (seconds).
HEADER_INTERVAL_S = 0.25
#: A held ``[`` moves the cursor many times a second; the panels (and the rules on the cut run)
#: are recomputed once it rests this long.
SCRUB_SETTLE_S = 0.08


class MainScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("l", "log_scale", "Log y"),
        Binding("slash", "filter", "Filter"),
        Binding("left_square_bracket", "scrub(-1)", "◀ Step"),
        Binding("right_square_bracket", "scrub(1)", "Step ▶"),
        Binding("left_curly_bracket", "scrub(-10)", "◀◀", show=False),
        Binding("right_curly_bracket", "scrub(10)", "▶▶", show=False),
    ]

    def __init__(
        self,
        diagnose: Diagnose,
        bands: HealthBands,
        name: str | None = None,
    ) -> None:
        super().__init__()
        self.diagnose = diagnose
        self.bands = bands
        self.run_name = name
        self.snapshot: Snapshot | None = None
        self.view: RunView | None = None
        self.cursor: int | None = None
        self.progress: LiveProgress | None = None
        self.paused = False
        self.stopping = False
        self.highlight: frozenset[str] = frozenset()
        self.error: str | None = None
        self._request = 0
        self._scrub_timer: Timer | None = None
        self._header_timer: Timer | None = None
        self._header_at = 0.0
        #: told the CPU time each view took to build (the app's refresh budget counts it)
        self.spent: Callable[[float], None] = lambda seconds: None

    def compose(self) -> ComposeResult:
        yield RunHeader(id="header")
        with Container(id="body"):
            yield LossChart(id="loss")
            yield DiagnosesPanel(id="diagnoses")
            with Vertical(id="health"):
                yield LayersPanel(id="layers")
                with HeatScroll(id="heat-panel"):
                    yield GradHeatmap(id="heat")
        yield Static(id="error")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#heat-panel").border_title = "Gradients per layer over steps"
        self.query_one(LayersPanel).table.focus()
        if self.snapshot is not None:
            self._recompute()

    def on_resize(self, event: Resize) -> None:
        wide = event.size.width >= WIDE[0] and event.size.height >= WIDE[1]
        self.set_class(wide, "-wide")
        self._size_heatmap()

    def _size_heatmap(self) -> None:
        """As tall as its layers (plus title and scale), at most a share of the screen; it
        scrolls beyond. Set here: the cap depends on the screen, the need on the run."""
        layers = len(self.view.heat.modules) if self.view is not None else 0
        cap = max(HEAT_ROWS, int(self.size.height * HEAT_SHARE)) if self.has_class("-wide") \
            else HEAT_ROWS
        self.query_one("#heat-panel").styles.height = min(max(layers, 1) + 2, cap)

    # ---- what the app feeds in -------------------------------------------------------------
    def show_snapshot(self, snapshot: Snapshot, name: str | None = None) -> None:
        if name is not None:
            self.run_name = name
        self.snapshot = snapshot
        if self._showing:
            self._recompute()

    def start_run(self, name: str) -> None:
        """A new live run begins: forget the cursor, progress and errors of the last one."""
        self.run_name, self.cursor, self.progress = name, None, None
        self.paused = self.stopping = False
        if self._showing:
            self.show_error(None)
            self._update_header()

    def show_progress(self, progress: LiveProgress | None) -> None:
        """The trainer's progress (up to 10 a second): the header redraws at most 4 times a
        second, each redraw taking the GIL from training."""
        self.progress = progress
        if progress is None or time.monotonic() - self._header_at >= HEADER_INTERVAL_S:
            self._update_header()
        elif self._header_timer is None:
            self._header_timer = self.set_timer(HEADER_INTERVAL_S, self._deferred_header)

    def _deferred_header(self) -> None:
        self._header_timer = None
        self._update_header()

    def set_run_state(self, *, paused: bool | None = None, stopping: bool | None = None) -> None:
        if paused is not None:
            self.paused = paused
        if stopping is not None:
            self.stopping = stopping
        self._update_header()

    def show_error(self, message: str | None) -> None:
        """A one-line error above the footer (None clears it); the panels keep the last data."""
        self.error = message
        found = self.query("#error").results(Static)
        banner = next(found, None)
        if banner is None:  # a message that arrived while the app shuts down
            return
        banner.update(message or "")
        banner.set_class(message is not None, "-visible")

    @property
    def selected(self) -> Diagnosis | None:
        return self.query_one(DiagnosesPanel).selected

    # ---- view computation ----------------------------------------------------------------
    def _recompute(self) -> None:
        if self.snapshot is None:
            return
        self._request += 1
        self._update_header()
        work = partial(self._compute, self.snapshot, self.cursor, self._request)
        # name and description given: by default Textual describes a worker by repr(work),
        # which would print the whole run's arrays
        self.run_worker(work, name="view", description=f"view at {self.cursor}", thread=True,
                        exclusive=True, group="view", exit_on_error=True)

    def _compute(self, snapshot: Snapshot, cursor: int | None, request: int) -> None:
        """Worker thread: cut the run at the cursor, diagnose the cut, build the view."""
        started = time.thread_time()
        run, diagnoses = snapshot.run, snapshot.diagnoses
        x_range = None
        if run.n_steps:
            x_range = (float(run.step_numbers[0]), float(run.step_numbers[-1]))
        if cursor is not None:
            run = cut_run(run, cursor)
            if run is not snapshot.run:
                diagnoses = tuple(self.diagnose(run))
        view = build_view(run, diagnoses, bands=self.bands, cursor=cursor, x_range=x_range,
                          name=self.run_name)
        if not get_current_worker().is_cancelled:
            self.post_message(ViewReady(view, request, time.thread_time() - started))

    @on(ViewReady)
    def _apply(self, message: ViewReady) -> None:
        self.spent(message.cpu_s)
        if message.request != self._request or not self._showing:
            return  # computed for a cursor or snapshot that has moved on
        view = self.view = message.view
        onsets = tuple(
            Onset(d.step, str(i), d.severity)
            for i, d in enumerate(view.diagnoses, start=1)
            if d.step is not None
        )
        self.query_one(LossChart).show(view.loss, onsets)
        self.query_one(DiagnosesPanel).show(view.diagnoses)
        self.highlight = self._named(self.selected)
        self.query_one(LayersPanel).show(view.layers, self.highlight, view.loss.x_range)
        self.query_one(GradHeatmap).show(view.heat, self.highlight)
        self._size_heatmap()
        self._update_header()

    @property
    def _showing(self) -> bool:
        """Mounted with its widgets: not before compose, nor while the app shuts down."""
        return self.is_mounted and bool(self.query("#header"))

    def _update_header(self) -> None:
        if not self._showing:
            return
        header = self.query_one(RunHeader)
        if self.view is None or self.snapshot is None:
            return
        self._header_at = time.monotonic()
        run = self.snapshot.run
        header.state = HeaderState(
            facts=self.view.header,
            first_step=int(run.step_numbers[0]) if run.n_steps else None,
            last_step=last_step(run),
            cursor=self.cursor,
            progress=self.progress,
            paused=self.paused,
            stopping=self.stopping,
        )

    def _named(self, diagnosis: Diagnosis | None) -> frozenset[str]:
        if diagnosis is None or self.view is None:
            return frozenset()
        for d, modules in zip(self.view.diagnoses, self.view.named, strict=True):
            if d is diagnosis:
                return modules
        return frozenset()

    # ---- panel messages ------------------------------------------------------------------
    @on(DiagnosesPanel.Highlighted)
    def _diagnosis_highlighted(self, message: DiagnosesPanel.Highlighted) -> None:
        self.highlight = self._named(message.diagnosis)
        self.query_one(LayersPanel).mark(self.highlight)
        self.query_one(GradHeatmap).mark(self.highlight)

    @on(DiagnosesPanel.Opened)
    def _diagnosis_opened(self, message: DiagnosesPanel.Opened) -> None:
        self.app.push_screen(DiagnosisScreen(message.diagnosis))

    @on(LayersPanel.Chosen)
    def _layer_chosen(self, message: LayersPanel.Chosen) -> None:
        if self.view is None:
            return
        for layer in self.view.layers:
            if layer.key == message.key:
                self.app.push_screen(LayerScreen(layer, self.view.loss.x_range))
                return

    # ---- keys ----------------------------------------------------------------------------
    def action_log_scale(self) -> None:
        self.query_one(LossChart).toggle_log()

    def action_filter(self) -> None:
        self.query_one(LayersPanel).open_filter()

    def action_scrub(self, moves: int) -> None:
        """Move the step cursor; past the last step it follows the log again."""
        if self.snapshot is None or not self.snapshot.run.n_steps:
            return
        cursor = move_cursor(self.snapshot.run, self.cursor, moves)
        if cursor == self.cursor:
            return
        self.cursor = cursor
        self._update_header()  # the position shows at once; the panels follow when it rests
        if self._scrub_timer is not None:
            self._scrub_timer.stop()
        self._scrub_timer = self.set_timer(SCRUB_SETTLE_S, self._recompute)
