"""Close a monitor's log when the script ends without ``monitor.close()``.

A training script that dies from an uncaught exception is exactly the run the user needs to see,
so the log must record that it crashed and why. ``atexit`` runs after the traceback is printed;
the chained ``sys.excepthook`` tells it which exception ended the script. Both are undone when the
monitor closes normally, so nothing outlives the monitor.
"""

from __future__ import annotations

import atexit
import sys
from collections.abc import Callable
from types import TracebackType


class ExitGuard:
    def __init__(self, on_exit: Callable[[BaseException | None], None]) -> None:
        self._on_exit = on_exit
        self._exception: BaseException | None = None
        self._previous_hook = sys.excepthook
        self._armed = True
        sys.excepthook = self._excepthook
        atexit.register(self._at_exit)

    def _excepthook(
        self, exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
    ) -> None:
        self._exception = exc
        self._previous_hook(exc_type, exc, tb)

    def _at_exit(self) -> None:
        if self._armed:
            self._on_exit(self._exception)

    def disarm(self) -> None:
        """Undo both registrations (the excepthook only if nobody replaced it since)."""
        if not self._armed:
            return
        self._armed = False
        atexit.unregister(self._at_exit)
        if sys.excepthook == self._excepthook:
            sys.excepthook = self._previous_hook
