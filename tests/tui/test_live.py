"""Live mode with a fake source (no torch): progress, pause, stop, fix and re-run, a crash, quit;
and ``--follow`` on a log another writer is filling."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from netdoctor.runlog import open_run
from netdoctor.runlog.schema import RunStatus
from netdoctor.tui.app import NetdoctorApp
from netdoctor.tui.log_poller import Snapshot
from netdoctor.tui.screens.compare_screen import CompareScreen
from netdoctor.tui.screens.main_screen import MainScreen
from tests.tui.conftest import FAST, live_app, screen_text, settle, until_trained, wait_for
from tests.tui.runs import RunWriter, fixed_rules


async def test_progress_pause_resume_and_stop(fake_live) -> None:  # type: ignore[no-untyped-def]
    source = fake_live(steps=4000, delay=0.03, stop_delay=0.5)
    app = live_app(source)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.main.view is not None and app.main.progress is not None)
        await settle(pilot, app)
        text = screen_text(app)
        assert "fake" in text and "running" in text
        assert "/4000" in text and "samples/s" in text and "ETA" in text  # from the progress
        await pilot.press("p")
        assert source.paused and "paused" in screen_text(app)
        await wait_for(pilot, source.waiting.is_set)  # the step under way has ended
        sent = len(source.progress_sent)
        await pilot.pause(0.3)
        assert len(source.progress_sent) == sent  # no step while paused
        await pilot.press("p")
        assert not source.paused
        await wait_for(pilot, lambda: len(source.progress_sent) > sent)
        await pilot.press("s")
        assert "stopping" in screen_text(app)
        await until_trained(pilot, app)
        assert [r.stopped for r in app.records] == ["stopped"]
        assert app.records[0].steps is not None and app.records[0].steps < 4000
        await wait_for(pilot, lambda: "finished" in screen_text(app))  # the closed log
        footer = screen_text(app).splitlines()[-1]
        assert "Fix" in footer


async def test_fix_during_a_run_stops_it_reruns_and_compares(fake_live) -> None:  # type: ignore[no-untyped-def]
    source = fake_live(steps=4000, delay=0.02)
    app = live_app(source)
    async with app.run_test(size=(100, 30)) as pilot:
        # wait until the explosion is on screen, then act on it while the run goes on
        await wait_for(pilot, lambda: app.main.selected is not None)
        assert app.training and app.main.selected.rule == "exploding_gradients"
        await pilot.press("f")  # top fix: grad_clipping
        await until_trained(pilot, app, timeout=30)
        assert isinstance(app.screen, CompareScreen)
        assert [r.label for r in app.records] == ["fake", "fake + grad_clipping"]
        assert app.records[0].stopped == "stopped"
        text = screen_text(app)
        assert "grad_clipping: errors 2 → 0 · no findings left · val_loss 2.5 → 0.3" in text
        assert "exploding_gradients" in text and "no problems found" in text
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)
        assert "fake + grad_clipping" in screen_text(app)
        assert Path(app.records[1].log).name == "live.grad_clipping.sqlite"


async def test_fix_skips_fixes_that_change_nothing(fake_live) -> None:  # type: ignore[no-untyped-def]
    source = fake_live(steps=24, delay=0.0, patches=("lower_lr",))
    app = live_app(source)
    async with app.run_test(size=(100, 30)) as pilot:
        await until_trained(pilot, app)
        await pilot.press("f")  # grad_clipping changes nothing here: lower_lr is used
        await until_trained(pilot, app)
        assert [r.label for r in app.records] == ["fake", "fake + lower_lr"]


async def test_fix_with_no_usable_patch_says_why(fake_live) -> None:  # type: ignore[no-untyped-def]
    source = fake_live(steps=24, delay=0.0, patches=())
    app = live_app(source)
    async with app.run_test(size=(100, 30)) as pilot:
        await until_trained(pilot, app)
        await pilot.press("f")
        await settle(pilot, app)
        assert app.main.error == "error: fake.toml: fix grad_clipping changes nothing in this " \
                                 "recipe"
        assert len(app.records) == 1 and not app.training


async def test_a_crash_shows_one_line_and_the_app_stays(fake_live) -> None:  # type: ignore[no-untyped-def]
    source = fake_live(steps=80, delay=0.0, crash_at=8)
    app = live_app(source)
    async with app.run_test(size=(100, 30)) as pilot:
        await until_trained(pilot, app)
        error = "error: RuntimeError: boom in fc1 second line of the traceback"
        assert app.main.error == error and "\n" not in error
        assert app.records[0].error is not None and app.records[0].stopped == "crashed"
        await wait_for(pilot, lambda: "crashed" in screen_text(app))  # the log says so too
        assert app.is_running


async def test_quit_stops_training_and_closes_the_log(fake_live) -> None:  # type: ignore[no-untyped-def]
    source = fake_live(steps=10_000, delay=0.02)
    app = live_app(source)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: bool(source.progress_sent))
        await pilot.press("q")
    assert source._stop.is_set()
    for _ in range(100):  # the worker thread closes the log right after the stop
        if open_run(source.log).finished:
            break
        time.sleep(0.05)
    assert open_run(source.log).status is RunStatus.FINISHED


async def test_follow_tails_a_growing_log(tmp_path: Path) -> None:
    path = tmp_path / "growing.sqlite"
    writer = RunWriter(path, "healthy", live=True)
    writer.write(8)
    run = open_run(path)
    app = NetdoctorApp(path, first=Snapshot(run, tuple(fixed_rules(run))), follow=True,
                       diagnose=fixed_rules, **FAST)
    done = threading.Event()

    def grow() -> None:
        for _ in range(10):
            writer.write(8)
            time.sleep(0.05)
        writer.close()
        done.set()

    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, app)
        assert "running" in screen_text(app)
        thread = threading.Thread(target=grow)
        thread.start()
        await wait_for(pilot, lambda: done.is_set())
        await wait_for(pilot, lambda: app.main.view is not None
                       and app.main.view.header.step == 87)
        await wait_for(pilot, lambda: "finished" in screen_text(app))
        thread.join()
        assert app.poller.done  # polling stops once the writer is done


async def test_follow_survives_a_log_that_disappears(tmp_path: Path) -> None:
    path = tmp_path / "growing.sqlite"
    writer = RunWriter(path, "healthy", live=True)
    writer.write(8)
    app = NetdoctorApp(path, first=Snapshot(open_run(path), ()), follow=True,
                       diagnose=fixed_rules, **FAST)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, app)
        path.unlink()  # while its writer still runs
        await wait_for(pilot, lambda: app.main.error is not None)
        assert app.main.error == f"error: {path}: no such file"
        assert app.is_running and "Layers" in screen_text(app)
    writer.close()
