"""Messages from worker threads to the UI: the only way training and log reading reach widgets.

Workers never touch a widget; they post one of these (``post_message`` is thread-safe) and the
handlers run on the UI thread. Messages that carry a newest state (progress, a snapshot) may
replace an older one of the same kind still waiting in the queue: a UI that fell behind skips
to the present instead of replaying every step.
"""

from __future__ import annotations

from textual.message import Message

from netdoctor.tui.live import LiveProgress, LiveResult
from netdoctor.tui.log_poller import Snapshot
from netdoctor.tui.run_view import RunView


class LogRead(Message):
    """The log was read: a new snapshot with fresh diagnoses, or None when it had not moved."""

    def __init__(self, snapshot: Snapshot | None) -> None:
        super().__init__()
        self.snapshot = snapshot

    def can_replace(self, message: Message) -> bool:
        # a newer snapshot makes an older one pointless; "nothing new" must not hide a snapshot
        return isinstance(message, LogRead) and self.snapshot is not None


class LogUnreadable(Message):
    """The log could not be read: the reader's one-line error, as the CLI would print it."""

    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class ViewReady(Message):
    """A view computed off the UI thread, for the snapshot and cursor it was asked for."""

    def __init__(self, view: RunView, request: int, cpu_s: float = 0.0) -> None:
        super().__init__()
        self.view = view
        self.request = request
        self.cpu_s = cpu_s  # CPU time the worker spent on it

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, ViewReady)


class TrainingProgress(Message):
    def __init__(self, progress: LiveProgress) -> None:
        super().__init__()
        self.progress = progress

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, TrainingProgress)


class TrainingEnded(Message):
    """Training returned (finished, stopped, diverged...) or raised (``error`` is set)."""

    def __init__(self, result: LiveResult | None, error: str | None) -> None:
        super().__init__()
        self.result = result
        self.error = error
