"""One real tiny recipe run in the app (torch, through the CLI's ``RecipeSource``): the
trainer's progress reaches the header, and ``p`` and ``s`` pause and stop the real training loop
through its Controls."""

from __future__ import annotations

from pathlib import Path

import pytest

from netdoctor.runlog import open_run
from netdoctor.tui.app import NetdoctorApp
from tests.tui.conftest import FAST, screen_text, until_trained, wait_for

pytest.importorskip("torch")


async def test_pause_and_stop_a_real_run(tmp_path: Path) -> None:
    from netdoctor.cli.run import RecipeSource
    from netdoctor.recipes import load_recipe

    recipe = load_recipe("healthy_mlp", ["data.samples=300", "model.width=16", "train.epochs=1000"])
    source = RecipeSource(recipe, tmp_path / "real.sqlite", max_steps=5000)
    app = NetdoctorApp(live=source, **FAST)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.main.progress is not None, timeout=60)
        await pilot.press("p")
        await wait_for(pilot, lambda: "paused" in screen_text(app))
        await pilot.pause(0.3)  # a step under way ends and reports
        step = app.main.progress.step
        await pilot.pause(0.3)
        assert app.main.progress.step == step  # the loop waits
        await pilot.press("p")
        await wait_for(pilot, lambda: app.main.progress.step > step)  # and goes on
        await pilot.press("s")
        await until_trained(pilot, app, timeout=60)
        assert app.records[0].stopped == "stopped" and app.records[0].error is None
        assert app.records[0].steps is not None and 0 < app.records[0].steps < 5000
        await wait_for(pilot, lambda: "healthy_mlp" in screen_text(app))
    run = open_run(tmp_path / "real.sqlite")
    assert run.finished and run.meta["stopped"] == "stopped"
