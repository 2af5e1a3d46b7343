"""How often the panels may refresh: a CPU budget for the UI, so that training keeps its pace.

The app shares the process (and its GIL) with training. Reading the log, running the rules,
building the view and drawing it all take CPU time from the training thread, and what they
cost depends on the log, the terminal's size and the machine. So the spacing is measured, not
guessed: the next refresh may start only once the CPU the UI used since the last one started
(its own thread, plus the worker threads that read and prepare) is at most ``share`` of the
time passed. A cheap refresh runs at the top rate; a costly one waits; a slow machine slows
the panels, not the training.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class RefreshBudget:
    """``ready`` and ``started`` are called on the UI thread (``cpu`` is its CPU clock)."""

    share: float = 0.08  # of one core, for everything the UI does
    min_interval: float = 0.2  # the top rate: 5 Hz
    max_interval: float = 5.0  # the panels never freeze longer than this
    clock: Callable[[], float] = time.monotonic
    cpu: Callable[[], float] = time.thread_time
    _start: tuple[float, float, float] = field(default=(-1e9, 0.0, 0.0))
    _worker_cpu: float = 0.0

    def add_worker_cpu(self, seconds: float) -> None:
        """CPU time a worker thread spent for the UI (reading the log, building a view)."""
        self._worker_cpu += max(seconds, 0.0)

    def ready(self) -> bool:
        wall, cpu, workers = self._start
        since = self.clock() - wall
        if since < self.min_interval:
            return False
        if since >= self.max_interval:
            return True
        spent = (self.cpu() - cpu) + (self._worker_cpu - workers)
        return spent <= self.share * since

    def started(self) -> None:
        self._start = (self.clock(), self.cpu(), self._worker_cpu)
