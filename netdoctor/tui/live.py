"""The seam between the TUI and a training run: what the app needs from a live source.

The TUI must not import torch, so it never calls the trainer itself. The CLI wraps the trainer
(``netdoctor.recipes.train`` with its ``Controls``) in an object with the methods below and
hands it to the app; tests hand it a fake that writes a log without torch. The trainer's
``Progress`` and ``TrainResult`` records satisfy ``LiveProgress`` and ``LiveResult`` as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from netdoctor.diagnosis import Diagnosis


class LiveProgress(Protocol):
    """How far the run is: sent by the trainer a few times a second."""

    @property
    def epoch(self) -> int: ...
    @property
    def epochs(self) -> int: ...
    @property
    def step(self) -> int: ...
    @property
    def total_steps(self) -> int: ...
    @property
    def samples_per_s(self) -> float: ...
    @property
    def elapsed_s(self) -> float: ...
    @property
    def eta_s(self) -> float | None: ...


class LiveResult(Protocol):
    """How a run ended: why it stopped, its final metrics and its diagnoses."""

    @property
    def log(self) -> Path: ...
    @property
    def diagnoses(self) -> Sequence[Diagnosis]: ...
    @property
    def metrics(self) -> Mapping[str, float]: ...
    @property
    def stopped(self) -> str: ...
    @property
    def steps(self) -> int: ...
    @property
    def elapsed_s(self) -> float: ...


class LiveSource(Protocol):
    """One training run the app can start, pause, stop and re-run with a fix.

    ``start`` blocks until training ends and is called from a worker thread; ``pause``,
    ``resume`` and ``stop`` are called from the UI thread while it runs, so they must be
    thread-safe (the trainer's ``Controls`` are). ``on_progress`` is called on the training
    thread and must return at once.
    """

    @property
    def name(self) -> str:
        """What the header calls the run (the recipe's name; the app adds the fixes)."""
        ...

    @property
    def log(self) -> Path:
        """The run log the training writes; the app reads it to draw the panels."""
        ...

    def start(self, on_progress: Callable[[LiveProgress], None]) -> LiveResult: ...

    def pause(self) -> None: ...

    def resume(self) -> None: ...

    def stop(self) -> None: ...

    def with_fix(self, fix_id: str) -> LiveSource:
        """The same run with one fix applied, writing another log; ConfigError if the fix has
        no recipe change."""
        ...
