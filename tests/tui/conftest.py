"""Fixtures for the TUI tests: apps built on synthetic logs, a fake live run, and waiting helpers.

The fake live source writes a run log with the real writer (no torch) and honours pause, stop
and fixes the way the trainer's ``Controls`` do, so that the app's live mode is tested fast;
one test trains a real tiny recipe (``test_live_recipe.py``).
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from netdoctor.diagnosis import Diagnosis
from netdoctor.errors import ConfigError
from netdoctor.runlog import open_run
from netdoctor.runlog.schema import RunStatus
from netdoctor.tui.app import NetdoctorApp
from netdoctor.tui.live import LiveProgress
from netdoctor.tui.log_poller import Snapshot
from tests.tui.runs import STEPS_PER_EPOCH, RunWriter, diagnoses_for, fixed_rules, write_run


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run ``async def`` tests in a fresh event loop (Pilot tests need one; no plugin needed)."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    asyncio.run(pyfuncitem.obj(**{name: pyfuncitem.funcargs[name] for name in names}))
    return True


def screen_text(app: NetdoctorApp) -> str:
    """What the terminal shows, as plain text (one line per row)."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


async def settle(pilot, app: NetdoctorApp) -> None:  # type: ignore[no-untyped-def]
    """Let messages, workers (log reads, views; not training) and their refreshes finish."""
    await pilot.pause()
    others = [w for w in app.workers if w.group != "train"]
    if others:  # (an empty list would mean "wait for every worker", training included)
        await app.workers.wait_for_complete(others)
    await pilot.pause()


async def wait_for(pilot, condition: Callable[[], bool], timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    """Poll ``condition`` while the app runs; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the app")
        await pilot.pause(0.05)


def app_on(path: Path, **options: object) -> NetdoctorApp:
    """The inspect app on a saved log, with fixed diagnoses (``fixed_rules``) for its pattern."""
    run = open_run(path)
    first = Snapshot(run, tuple(fixed_rules(run)))
    return NetdoctorApp(path, first=first, diagnose=fixed_rules, **options)  # type: ignore[arg-type]


#: Tests read the log as fast as it moves (the CPU budget is tested on its own).
FAST = {"poll_interval": 0.05, "ui_share": 1.0}


def live_app(source: FakeLive, **options: object) -> NetdoctorApp:
    """The live app on a fake source, polling fast, with fixed diagnoses."""
    return NetdoctorApp(live=source, diagnose=fixed_rules, **FAST, **options)  # type: ignore[arg-type]


@pytest.fixture
def saved_run(tmp_path: Path) -> Callable[..., Path]:
    """``saved_run(pattern, **write_run options)``: a finished synthetic log in tmp_path."""

    def make(pattern: str, **options: object) -> Path:
        return write_run(tmp_path / f"{pattern}.sqlite", pattern, **options)  # type: ignore[arg-type]

    return make


# ---- a fake live source ------------------------------------------------------------------------
@dataclass(frozen=True)
class FakeProgress:
    epoch: int
    epochs: int
    step: int
    total_steps: int
    samples_per_s: float
    elapsed_s: float
    eta_s: float | None


@dataclass(frozen=True)
class FakeResult:
    log: Path
    diagnoses: Sequence[Diagnosis]
    metrics: Mapping[str, float]
    stopped: str
    steps: int
    elapsed_s: float


@dataclass
class FakeLive:
    """A run that writes ``steps`` steps of ``pattern`` in chunks; ``crash_at`` raises there.

    A fix gives a healthy run writing ``<log>.<fix>.sqlite``; fixes not in ``patches`` are
    refused with a ConfigError, as ``apply_fix`` refuses a fix that changes nothing.
    """

    log: Path
    pattern: str = "exploding"
    steps: int = 80
    chunk: int = 4
    delay: float = 0.02
    crash_at: int | None = None
    stop_delay: float = 0.0  # a trainer finishes its step (and closes its log) before it stops
    fixed_steps: int = 80  # how long the re-run with a fix trains
    patches: tuple[str, ...] = ("lower_lr", "grad_clipping")
    fixes: tuple[str, ...] = ()
    progress_sent: list[LiveProgress] = field(default_factory=list)
    waiting: threading.Event = field(default_factory=threading.Event)
    _running: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._running.set()

    @property
    def name(self) -> str:
        return "fake"  # the recipe's name; the app names the fixes

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def start(self, on_progress: Callable[[LiveProgress], None]) -> FakeResult:
        run = RunWriter(self.log, self.pattern, live=True, name=" + ".join(("fake", *self.fixes)))
        done, stopped = 0, "finished"
        started = time.monotonic()
        while done < self.steps:
            if not self._running.is_set():
                self.waiting.set()  # the loop stands still until resumed
                while not self._running.wait(0.02):
                    pass
                self.waiting.clear()
            if self._stop.is_set():
                stopped = "stopped"
                time.sleep(self.stop_delay)
                break
            if self.crash_at is not None and done >= self.crash_at:
                run.close(RunStatus.CRASHED, "RuntimeError: boom in fc1")
                raise RuntimeError("boom in fc1\nsecond line of the traceback")
            run.write(self.chunk)
            done += self.chunk
            progress = FakeProgress(done // STEPS_PER_EPOCH + 1,
                                    -(-self.steps // STEPS_PER_EPOCH), done, self.steps,
                                    1000.0 + done, 0.5 * done, 0.5 * (self.steps - done))
            self.progress_sent.append(progress)
            on_progress(progress)
            time.sleep(self.delay)
        run.close(RunStatus.FINISHED, None if stopped == "finished" else "stopped on request")
        metrics = {"val_loss": 2.5, "val_acc": 0.3} if self.pattern != "healthy" \
            else {"val_loss": 0.3, "val_acc": 0.9}
        return FakeResult(self.log, diagnoses_for(self.pattern), metrics, stopped, done,
                          time.monotonic() - started)

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def stop(self) -> None:
        self._stop.set()
        self._running.set()

    def with_fix(self, fix_id: str) -> FakeLive:
        if fix_id not in self.patches:
            raise ConfigError(f"fake.toml: fix {fix_id} changes nothing in this recipe")
        log = self.log.with_name(f"{self.log.stem}.{fix_id}.sqlite")
        return FakeLive(log, "healthy", steps=self.fixed_steps, chunk=self.chunk, delay=self.delay,
                        patches=self.patches, fixes=(*self.fixes, fix_id))


@pytest.fixture
def fake_live(tmp_path: Path) -> Callable[..., FakeLive]:
    def make(**options: object) -> FakeLive:
        return FakeLive(tmp_path / "live.sqlite", **options)  # type: ignore[arg-type]

    return make


async def until_trained(pilot, app: NetdoctorApp, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    await wait_for(pilot, lambda: not app.training and app._pending_fix is None, timeout)
    await asyncio.sleep(0)
    await settle(pilot, app)
