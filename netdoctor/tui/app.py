"""The netdoctor TUI: the same app for a saved log, a log another process writes, and a live run.

The app holds the bindings, switches screens and starts the workers: a poller that re-reads the
log at a bounded rate (only when following or training), and, for a live run, the training
itself in a thread. Both reach the UI through messages only (``netdoctor.tui.messages``).

Refreshing the panels costs the training process CPU time (and the GIL), so refreshes are
spaced by a CPU budget (``netdoctor.tui.refresh_budget``): at most 5 Hz, less when they cost.
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import on
from textual.app import App
from textual.binding import Binding, BindingType
from textual.worker import Worker, WorkerState

from netdoctor.errors import NetdoctorError, RunLogError, one_line
from netdoctor.tui.compare import RunRecord
from netdoctor.tui.health import HealthBands
from netdoctor.tui.live import LiveSource
from netdoctor.tui.log_poller import Diagnose, LogPoller, Snapshot, rule_engine
from netdoctor.tui.messages import LogRead, LogUnreadable, TrainingEnded, TrainingProgress
from netdoctor.tui.refresh_budget import RefreshBudget
from netdoctor.tui.screens.compare_screen import CompareScreen
from netdoctor.tui.screens.help_screen import HelpScreen
from netdoctor.tui.screens.main_screen import MainScreen

if TYPE_CHECKING:  # pragma: no cover
    from netdoctor.rules import RuleConfig

#: Re-read the log at most this often (seconds): 5 Hz is live enough to watch a loss fall.
POLL_INTERVAL = 0.2
#: Share of one core the UI may use while it follows a log or a run (see RefreshBudget).
UI_SHARE = 0.05
#: While a run is written, the rules run again at most this often (seconds); the panels follow
#: the log at the poll rate. Diagnoses a second late cost nothing; rules at 4 Hz cost training.
RULES_EVERY = 1.0
LIVE_ONLY = {"pause", "stop", "fix"}


class NetdoctorApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "netdoctor"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help"),
        Binding("r", "reload", "Reload"),
        Binding("p", "pause", "Pause"),
        Binding("s", "stop", "Stop"),
        Binding("f", "fix", "Fix+rerun"),
    ]

    def __init__(
        self,
        log: Path | None = None,
        *,
        first: Snapshot | None = None,
        settings: RuleConfig | None = None,
        follow: bool = False,
        live: LiveSource | None = None,
        name: str | None = None,
        poll_interval: float = POLL_INTERVAL,
        ui_share: float = UI_SHARE,
        diagnose: Diagnose | None = None,
    ) -> None:
        super().__init__()
        if log is None and live is None:
            raise ValueError("NetdoctorApp needs a log or a live source")
        self.settings = settings
        self.diagnose = diagnose or rule_engine(settings)
        self.follow = follow
        self.live = live
        self.poll_interval = poll_interval
        source_log = live.log if live is not None else log
        assert source_log is not None
        self.poller = LogPoller(source_log, self.diagnose, first, RULES_EVERY)
        self.main = MainScreen(self.diagnose, HealthBands.from_rules(settings),
                               name=live.name if live else name)
        self.main.spent = self._worker_cpu
        self.training = False
        self.paused = False
        self.label = live.name if live is not None else ""
        self.records: list[RunRecord] = []
        self._pending_fix: tuple[LiveSource, str] | None = None
        self._compare_fix: str | None = None
        self._log_ready = live is None
        self.budget = RefreshBudget(share=ui_share, min_interval=poll_interval)
        self._polling = False
        self._log_error = False  # the banner shows a log read error (cleared by a good read)

    # ---- start -------------------------------------------------------------------------------
    def on_mount(self) -> None:
        self.push_screen(self.main)
        if self.poller.latest is not None:
            self.main.show_snapshot(self.poller.latest)
        elif self.live is None:
            self._poll_now()
        if self.live is not None:
            self._start_training(self.live)
        if self.follow or self.live is not None:
            self.set_interval(self.poll_interval, self._tick)

    def _start_training(self, source: LiveSource, fix_id: str | None = None) -> None:
        self.live, self.training, self.paused, self._log_ready = source, True, False, False
        # what the header and the comparison call this run: the recipe, then the fixes applied
        self.label = source.name if fix_id is None else f"{self.label} + {fix_id}"
        self.poller = LogPoller(source.log, self.diagnose, rules_every=RULES_EVERY)
        self.main.start_run(self.label)
        self.run_worker(partial(self._train, source), thread=True, group="train",
                        name="train", description=f"training {source.name}", exit_on_error=False)
        self.refresh_bindings()

    def _train(self, source: LiveSource) -> None:
        """Worker thread: run the training; report progress and the end as messages."""
        try:
            result = source.start(lambda progress: self.post_message(TrainingProgress(progress)))
        except NetdoctorError as exc:
            self.post_message(TrainingEnded(None, str(exc)))
        except Exception as exc:  # the user's model or data raised: show it, keep the app up
            self.post_message(TrainingEnded(None, one_line(f"{type(exc).__name__}: {exc}")))
        else:
            self.post_message(TrainingEnded(result, None))

    # ---- polling -----------------------------------------------------------------------------
    def _tick(self) -> None:
        if self._polling or not self._log_ready or not self.budget.ready():
            return
        if not self.training and self.poller.done and self.live is None:
            return  # a followed log whose writer is done: nothing more will come
        self._poll_now()

    def _worker_cpu(self, seconds: float) -> None:
        self.budget.add_worker_cpu(seconds)

    def _poll_now(self) -> None:
        self._polling = True
        self.budget.started()
        self.run_worker(self._poll, thread=True, group="poll", name="poll",
                        description=f"reading {self.poller.path}", exit_on_error=False)

    def _poll(self) -> float:
        """Worker thread: read the log; returns the CPU time that took (for the budget)."""
        started = time.thread_time()
        try:
            snapshot = self.poller.poll()
        except RunLogError as exc:
            self.post_message(LogUnreadable(f"error: {exc}"))
        else:
            self.post_message(LogRead(snapshot))
        return time.thread_time() - started

    @on(Worker.StateChanged)
    def _worker_done(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group != "poll" or event.state not in (WorkerState.SUCCESS, WorkerState.ERROR):
            return
        self._polling = False
        if isinstance(worker.result, float):
            self.budget.add_worker_cpu(worker.result)
        if event.state is WorkerState.ERROR:  # a bug while reading: say so, keep running
            self.main.show_error(f"error: reading the log failed: {one_line(str(worker.error))}")

    @on(LogRead)
    def _log_read(self, message: LogRead) -> None:
        if self._log_error:  # readable again
            self._log_error = False
            self.main.show_error(None)
        if message.snapshot is not None:
            self.main.show_snapshot(message.snapshot)

    @on(LogUnreadable)
    def _log_unreadable(self, message: LogUnreadable) -> None:
        self._log_error = True
        self.main.show_error(message.error)

    # ---- live training -----------------------------------------------------------------------
    @on(TrainingProgress)
    def _progress(self, message: TrainingProgress) -> None:
        self._log_ready = True
        self.main.show_progress(message.progress)

    @on(TrainingEnded)
    def _training_ended(self, message: TrainingEnded) -> None:
        self.training, self.paused, self._log_ready = False, False, True
        self.main.set_run_state(paused=False, stopping=False)
        self.refresh_bindings()
        source = self.live
        assert source is not None
        label = self.label
        if message.error is not None:
            self.main.show_error(f"error: {message.error}")
            latest = self.poller.latest
            steps = latest.run.n_steps if latest else None
            record = RunRecord.from_error(label, source.log, message.error, steps,
                                          latest.diagnoses if latest else ())
        else:
            assert message.result is not None
            record = RunRecord.from_result(label, message.result)
        self.records.append(record)
        self._poll_now()  # the closed log: final status and diagnoses
        if self._pending_fix is not None:
            fixed, fix_id = self._pending_fix
            self._pending_fix, self._compare_fix = None, fix_id
            self._start_training(fixed, fix_id)
        elif self._compare_fix is not None and len(self.records) >= 2:
            fix_id, self._compare_fix = self._compare_fix, None
            self.push_screen(CompareScreen(self.records[-2], self.records[-1], fix_id))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in LIVE_ONLY and self.live is None:
            return False  # a saved log: these keys do not exist
        if action in ("pause", "stop") and not self.training:
            return None  # shown, but there is nothing to pause or stop
        return not (action == "reload" and self.live is not None)  # a live run reads itself

    def action_pause(self) -> None:
        if self.live is None or not self.training:
            return
        if self.paused:
            self.live.resume()
        else:
            self.live.pause()
        self.paused = not self.paused
        self.main.set_run_state(paused=self.paused)

    def action_stop(self) -> None:
        if self.live is None or not self.training:
            return
        if self.paused:
            self.live.resume()  # a paused loop must wake up to see the stop
            self.paused = False
        self.live.stop()
        self.main.set_run_state(paused=False, stopping=True)

    def action_fix(self) -> None:
        """Re-run with the selected diagnosis' most promising fix that changes the recipe (a fix
        already in place is skipped), then compare the two runs."""
        if self.live is None:
            return
        diagnosis = self.main.selected
        if diagnosis is None or not diagnosis.fixes:
            self.notify("Select a diagnosis that has a fix first.", severity="warning")
            return
        fixed, fix_id, refused = None, "", []
        for fix in diagnosis.fixes:  # the most promising fix that changes this recipe
            try:
                fixed, fix_id = self.live.with_fix(fix.id), fix.id
                break
            except NetdoctorError as exc:
                refused.append(str(exc))
        if fixed is None:
            self.main.show_error(f"error: {refused[0]}")
            return
        self.main.show_error(None)
        self.notify(f"Re-running with {fix_id}…")
        if self.training:
            self._pending_fix = (fixed, fix_id)
            self.action_stop()
        else:
            self._compare_fix = fix_id
            self._start_training(fixed, fix_id)

    # ---- the rest ----------------------------------------------------------------------------
    def action_help(self) -> None:
        diagnosis = self.main.selected
        self.push_screen(HelpScreen(diagnosis.rule if diagnosis else None))

    def action_reload(self) -> None:
        if not self._polling:
            self._poll_now()

    async def action_quit(self) -> None:
        if self.live is not None and self.training:
            self.action_stop()  # the trainer closes its log; exiting waits for its thread
        self.exit()
