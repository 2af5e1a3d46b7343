"""The two header lines: what runs where and in which state, and how far it got (or, when
replaying a saved run, where the step cursor stands)."""

from __future__ import annotations

from dataclasses import dataclass

from rich.style import Style
from rich.text import Text
from textual.reactive import reactive

from netdoctor.report.summary import Outcome
from netdoctor.report.text import format_duration
from netdoctor.tui.live import LiveProgress
from netdoctor.tui.palette import Palette
from netdoctor.tui.run_view import HeaderFacts
from netdoctor.tui.widgets.themed import Themed

_BAR_WIDTH = 16


@dataclass(frozen=True)
class HeaderState:
    """The log's facts, plus what only the app knows: live progress, pause, the replay cursor."""

    facts: HeaderFacts
    first_step: int | None = None  # of the whole log, for the scrubber
    last_step: int | None = None
    cursor: int | None = None  # replaying: the step shown; None: the latest
    progress: LiveProgress | None = None
    paused: bool = False
    stopping: bool = False

    @property
    def state(self) -> str:
        if self.paused:
            return "paused"
        if self.stopping:
            return "stopping"
        if self.cursor is not None:
            return "replay"
        return self.facts.outcome.label


def compact(value: float) -> str:
    """1234 -> 1.2k: rates read at a glance."""
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.1f}{suffix}"
    return f"{value:.0f}" if abs(value) >= 10 else f"{value:.1f}"


def header_lines(state: HeaderState, palette: Palette) -> Text:
    facts = state.facts
    progress = state.progress if state.cursor is None else None
    muted = palette.muted
    top = Text.assemble(("netdoctor", "bold"), "  ", (facts.name, "bold"))
    if facts.device:
        top.append(f"  {facts.device}", style=muted)
    top.append("  ")
    top.append(f" {state.state} ", style=_state_style(state, palette) + Style(reverse=True))
    if facts.message and facts.outcome in (Outcome.CRASHED, Outcome.INTERRUPTED):
        top.append(f"  {facts.message}", style=palette.error)

    epoch, epochs = facts.epoch, facts.epochs
    step, total = facts.step, facts.total_steps
    rate = _rate(facts)
    elapsed, eta = facts.elapsed_s, facts.eta_s
    if progress is not None:
        epoch, epochs = progress.epoch, progress.epochs
        step, total = progress.step, progress.total_steps
        rate = f"{compact(progress.samples_per_s)} samples/s"
        elapsed, eta = progress.elapsed_s, progress.eta_s
    if state.cursor is not None:
        step = state.cursor
    parts = [
        _of("epoch", epoch, epochs),
        _of("step", step, total),
        rate,
        f"{format_duration(elapsed)} elapsed" if elapsed is not None else None,
        f"ETA {format_duration(eta)}" if eta is not None else None,
    ]
    bottom = Text(" · ".join(p for p in parts if p), style=muted)
    bar = _bar(state, step, total)
    if bar is not None:
        bottom.append("  ")
        bottom.append_text(bar)
    return Text("\n").join([top, bottom])


def _of(label: str, value: int | None, total: int | None) -> str | None:
    if value is None:
        return None
    return f"{label} {value}/{total}" if total else f"{label} {value}"


def _rate(facts: HeaderFacts) -> str | None:
    if facts.samples_per_s is not None:
        return f"{compact(facts.samples_per_s)} samples/s"
    if facts.steps_per_s is not None:
        return f"{compact(facts.steps_per_s)} steps/s"
    return None


def _bar(state: HeaderState, step: int | None, total: int | None) -> Text | None:
    """Where the replay cursor stands in the log, or how far a live run got."""
    if state.cursor is not None and state.first_step is not None and state.last_step:
        span = max(state.last_step - state.first_step, 1)
        share = (state.cursor - state.first_step) / span
    elif step is not None and total:
        share = step / total
    else:
        return None
    done = round(max(0.0, min(share, 1.0)) * _BAR_WIDTH)
    rest = "╺" + "─" * (_BAR_WIDTH - done - 1) if done < _BAR_WIDTH else ""
    return Text.assemble(("━" * done, "bold"), (rest, "dim"))


def _state_style(state: HeaderState, palette: Palette) -> Style:
    if state.paused or state.stopping:
        return palette.warning
    if state.cursor is not None:
        return palette.info
    return {
        Outcome.FINISHED: palette.ok,
        Outcome.RUNNING: palette.info,
        Outcome.INTERRUPTED: palette.warning,
        Outcome.CRASHED: palette.error,
        Outcome.DID_NOT_FINISH: palette.error,
    }[state.facts.outcome]


class RunHeader(Themed):
    """Two lines at the top of the main screen."""

    state: reactive[HeaderState | None] = reactive(None)

    def render(self) -> Text:
        if self.state is None:
            return Text("netdoctor  reading the run log…", style=self.palette.muted)
        return header_lines(self.state, self.palette)
