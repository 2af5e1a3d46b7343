"""Read a run log again and again, cheaply: the rules run again only when the log moved.

Same policy as ``inspect --follow`` (``netdoctor.cli.follow``): a log is re-diagnosed when it
holds more steps, samples or epochs, when its writer finished or went away, or when another run
replaced it. Errors are the reader's one-line ``RunLogError``; the caller decides to retry.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from netdoctor.diagnosis import Diagnosis
from netdoctor.runlog import RunData, open_run

if TYPE_CHECKING:  # pragma: no cover
    from netdoctor.rules import RuleConfig


@dataclass(frozen=True)
class Snapshot:
    """A run as read at one moment, with the diagnoses the rules found on it."""

    run: RunData
    diagnoses: tuple[Diagnosis, ...]


#: What turns a run into diagnoses: the rule engine with the user's settings, normally.
Diagnose = Callable[[RunData], Sequence[Diagnosis]]


def rule_engine(settings: RuleConfig | None) -> Diagnose:
    """``run_rules`` with these settings (the engine is imported when first used)."""

    def diagnose(run: RunData) -> Sequence[Diagnosis]:
        from netdoctor.rules import run_rules

        return run_rules(run, settings)

    return diagnose


def moved(before: RunData, after: RunData) -> bool:
    """Whether ``after`` says anything ``before`` did not (see the module docstring)."""
    return (
        after.n_steps != before.n_steps
        or after.sample_steps.size != before.sample_steps.size
        or len(after.epochs) != len(before.epochs)
        or len(after.events) != len(before.events)
        or after.finished != before.finished
        or after.writer_alive != before.writer_alive
        or after.meta.get("created_at") != before.meta.get("created_at")
    )


class LogPoller:
    """Holds the last snapshot of one log; ``poll`` returns a new one only when it moved.

    The rules run again at most every ``rules_every`` seconds while the writer is at work (a
    growing log moves at every flush; diagnoses need not follow each one), and always once the
    run has ended, replaced the log, or is read for the first time.
    """

    def __init__(
        self,
        path: Path,
        diagnose: Diagnose,
        first: Snapshot | None = None,
        rules_every: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path)
        self.diagnose = diagnose
        self.latest = first
        self.rules_every = rules_every
        self.clock = clock
        self._rules_at = -math.inf

    def poll(self) -> Snapshot | None:
        """A fresh snapshot, or None when nothing changed; RunLogError when unreadable."""
        run = open_run(self.path)
        before = self.latest
        if before is not None and not moved(before.run, run):
            return None
        now = self.clock()
        fresh = (
            before is None
            or now - self._rules_at >= self.rules_every
            or run.finished
            or not run.writer_alive
            or run.meta.get("created_at") != before.run.meta.get("created_at")
        )
        if fresh:
            self.latest = Snapshot(run, tuple(self.diagnose(run)))
            self._rules_at = now
        else:  # the new data with the diagnoses of a moment ago
            self.latest = Snapshot(run, before.diagnoses)
        return self.latest

    @property
    def done(self) -> bool:
        """The writer has finished or is gone: nothing more will come."""
        return self.latest is not None and (
            self.latest.run.finished or not self.latest.run.writer_alive
        )
