"""The main screen on saved logs: every panel, and every key of the inspect view."""

from __future__ import annotations

import shutil
from pathlib import Path

from netdoctor.runlog.schema import RunStatus
from netdoctor.tui.screens.diagnosis_screen import DiagnosisScreen
from netdoctor.tui.screens.help_screen import HelpScreen
from netdoctor.tui.screens.layer_screen import LayerScreen
from netdoctor.tui.screens.main_screen import MainScreen
from netdoctor.tui.widgets.diagnoses_panel import DiagnosesPanel
from netdoctor.tui.widgets.grad_heatmap import GradHeatmap
from netdoctor.tui.widgets.layers_panel import LayersPanel
from netdoctor.tui.widgets.loss_chart import LossChart
from tests.tui.conftest import app_on, screen_text, settle, wait_for


async def test_panels_show_the_run(saved_run) -> None:  # type: ignore[no-untyped-def]
    app = app_on(saved_run("vanishing"))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app)
        text = screen_text(app)
        assert "vanishing" in text and "finished" in text  # header: name and state
        assert "epoch 6" in text and "step 119" in text and "samples/s" in text
        assert "Loss" in text and "Layers" in text and "Gradients per layer" in text
        assert "Diagnoses (2 warnings)" in text
        assert "vanishing_gradients" in text and "underfitting" in text
        main = app.main
        layers = main.query_one(LayersPanel)
        assert layers.table.row_count == 9  # fc0, act0, ..., fc3, act3, head
        heat = main.query_one(GradHeatmap)
        assert heat.heat is not None and heat.heat.modules == ("fc0", "fc1", "fc2", "fc3", "head")
        # the first diagnosis is selected: its layers are marked in the table and the heatmap
        assert layers.highlight == frozenset({"fc0", "fc1"})
        assert "▶▲ fc0" in text
        # health: the rules' own thresholds colour the rows, diagnoses mark the layers they name
        view = main.view
        assert view is not None
        by_key = {layer.key: layer for layer in view.layers}
        assert any(r.startswith("saturated 60%") for r in by_key["act1"].reasons)  # > 50 %
        assert by_key["fc0"].health.value == "warning"
        assert "vanishing_gradients" in by_key["fc0"].reasons
        assert by_key["head"].health.value == "ok"
        footer = text.splitlines()[-1]  # a saved log: no training keys
        assert "Quit" in footer and "Help" in footer and "Pause" not in footer
        await pilot.press("p", "s", "f")  # nothing happens, nothing breaks
        assert app.is_running and not app.records
        await pilot.press("q")
        await pilot.pause()
        assert not app.is_running


async def test_log_scale_key_and_a_blow_up_on_a_log_scale(saved_run) -> None:  # type: ignore[no-untyped-def]
    app = app_on(saved_run("exploding"))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app)
        chart = app.main.query_one(LossChart)
        assert chart.log_scale and "(log)" in str(chart.border_title)  # spans decades
        assert "x" in screen_text(app).splitlines()[3]  # non-finite losses on the top row
        await pilot.press("l")
        assert not chart.log_scale and "(log)" not in str(chart.border_title)
        await pilot.press("l")
        assert chart.log_scale


async def test_filter_key(saved_run) -> None:  # type: ignore[no-untyped-def]
    app = app_on(saved_run("vanishing"))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app)
        layers = app.main.query_one(LayersPanel)
        await pilot.press("slash", "t", "a", "n", "h")
        assert layers.table.row_count == 4  # act0..act3
        assert "/tanh  (4 of 9)" in str(layers.border_title)
        await pilot.press("enter")  # keep the filter, back to the table
        assert app.focused is layers.table and layers.table.row_count == 4
        await pilot.press("escape")  # clears it
        assert layers.table.row_count == 9 and layers.filter_text == ""


async def test_enter_on_a_layer_opens_its_charts(saved_run) -> None:  # type: ignore[no-untyped-def]
    app = app_on(saved_run("vanishing"))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app)
        await pilot.press("down", "down", "enter")  # fc0, act0, fc1
        await settle(pilot, app)
        assert isinstance(app.screen, LayerScreen)
        assert app.screen.layer_view.key == "fc1"
        text = screen_text(app)
        assert "Layer fc1" in text and "Gradient norm" in text and "Update / weight" in text
        assert "Activations" in text
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)


async def test_diagnoses_select_and_open(saved_run) -> None:  # type: ignore[no-untyped-def]
    app = app_on(saved_run("exploding"))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, app)
        panel = app.main.query_one(DiagnosesPanel)
        layers = app.main.query_one(LayersPanel)
        await pilot.press("tab")
        assert app.focused is panel.query_one("#diagnosis-table")
        assert panel.selected is not None and panel.selected.rule == "exploding_gradients"
        assert layers.highlight == frozenset({"fc0"})
        await pilot.press("down")
        assert panel.selected is not None and panel.selected.rule == "nan_loss"
        assert layers.highlight == frozenset({"fc0", "fc1"})  # named through its evidence
        assert "became non-finite at step 60" in screen_text(app)  # the detail pane
        await pilot.press("enter")
        await settle(pilot, app)
        assert isinstance(app.screen, DiagnosisScreen)
        text = screen_text(app)
        assert "nan_loss" in text and "evidence" in text and "lower_lr" in text
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)
        await pilot.press("question_mark")  # help starts with the selected diagnosis' rule
        await settle(pilot, app)
        assert isinstance(app.screen, HelpScreen) and app.screen.rule_id == "nan_loss"
        text = screen_text(app)
        assert "nan_loss" in text and "What it detects" in text
        await pilot.press("question_mark")  # ? again closes it
        assert isinstance(app.screen, MainScreen)


async def test_step_cursor_replays_the_run(saved_run) -> None:  # type: ignore[no-untyped-def]
    app = app_on(saved_run("exploding"))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, app)
        main = app.main

        async def rested() -> None:  # the panels follow the cursor once it rests
            await wait_for(pilot, lambda: main.view is not None and main.view.cursor == main.cursor)
            await settle(pilot, app)

        assert main.cursor is None
        await pilot.press("left_square_bracket")
        await rested()
        assert main.cursor is not None and main.cursor < 119
        assert "replay" in screen_text(app)
        await pilot.press(*["left_curly_bracket"] * 6)
        await rested()
        assert main.cursor is not None and main.cursor < 60
        assert main.view is not None
        # the panels show the run up to the cursor, and the rules ran on that part: no NaN yet
        assert main.view.loss.steps.max() <= main.cursor
        assert not any(d.rule == "nan_loss" for d in main.view.diagnoses)
        await pilot.press("right_square_bracket")
        await rested()
        assert main.cursor is not None and main.cursor > main.view.loss.steps.min()
        await pilot.press(*["right_curly_bracket"] * 7)  # past the end: the latest step again
        await rested()
        assert main.cursor is None and "replay" not in screen_text(app)


async def test_reload_shows_an_unreadable_log_and_survives(saved_run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    log = saved_run("healthy")
    app = app_on(log)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app)
        kept = tmp_path / "kept.sqlite"
        shutil.move(log, kept)
        await pilot.press("r")
        await settle(pilot, app)
        assert app.main.error == f"error: {log}: no such file"  # the CLI's one-line message
        banner = app.main.query_one("#error")
        assert banner.display and "no such file" in screen_text(app)
        assert "Layers" in screen_text(app) and app.is_running  # the last data stays
        log.write_bytes(b"not a run log at all")
        await pilot.press("r")
        await settle(pilot, app)
        assert app.main.error is not None and "not a netdoctor run log" in app.main.error
        shutil.move(kept, log)
        await pilot.press("r")
        await settle(pilot, app)
        assert app.main.error is None and not banner.display




async def test_crashed_run_on_a_wide_terminal(saved_run) -> None:  # type: ignore[no-untyped-def]
    log = saved_run("exploding", status=RunStatus.CRASHED, message="RuntimeError: CUDA error")
    app = app_on(log)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot, app)
        text = screen_text(app)
        assert "crashed" in text and "RuntimeError: CUDA error" in text
        main = app.main
        assert main.has_class("-wide")  # the diagnoses get a full-height column
        assert main.query_one("#diagnoses").region.height >= 40
        assert main.query_one("#heat-panel").region.height == 5 + 2  # every layer, no scroll
