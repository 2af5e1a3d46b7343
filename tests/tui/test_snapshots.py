"""Snapshots of the main screens, fed from synthetic recorded logs (deterministic: fixed sizes,
fixed diagnoses, times from the log, no clock). ``pytest --snapshot-update`` records new ones
after an intended change; look at the SVGs before committing them."""

from __future__ import annotations

from pathlib import Path

import pytest

from netdoctor.diagnosis import Diagnosis, Fix, Severity
from netdoctor.tui.compare import RunRecord
from netdoctor.tui.screens.compare_screen import CompareScreen
from tests.tui.conftest import app_on, settle


async def _ready(pilot) -> None:  # type: ignore[no-untyped-def]
    await settle(pilot, pilot.app)


def test_main_screen_80x24(snap_compare, saved_run) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(app_on(saved_run("vanishing")), terminal_size=(80, 24),
                        run_before=_ready)


def test_main_screen_wide_light(snap_compare, saved_run) -> None:  # type: ignore[no-untyped-def]
    app = app_on(saved_run("exploding"))

    async def light(pilot) -> None:  # type: ignore[no-untyped-def]
        pilot.app.theme = "textual-light"
        await settle(pilot, pilot.app)

    assert snap_compare(app, terminal_size=(160, 48), run_before=light)


def test_main_screen_without_colour(snap_compare, saved_run, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("NO_COLOR", "1")
    app = app_on(saved_run("vanishing"))
    assert app.no_color
    assert snap_compare(app, terminal_size=(100, 30), run_before=_ready)


def test_layer_detail(snap_compare, saved_run) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(app_on(saved_run("vanishing")), terminal_size=(100, 30),
                        run_before=_ready, press=["enter"])


def test_diagnosis_detail(snap_compare, saved_run) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(app_on(saved_run("exploding")), terminal_size=(100, 30),
                        run_before=_ready, press=["tab", "enter"])


def test_before_and_after(snap_compare, saved_run) -> None:  # type: ignore[no-untyped-def]
    exploding = Diagnosis("exploding_gradients", Severity.ERROR, 12, "fc0", "grew", {},
                          (Fix("grad_clipping", "clip"),))
    before = RunRecord("spirals", Path("runs/spirals.sqlite"), "diverged", 63,
                       {"train_loss": float("nan"), "val_loss": float("nan"), "val_acc": 0.33},
                       (exploding,))
    after = RunRecord("spirals + grad_clipping", Path("runs/spirals.grad_clipping.sqlite"),
                      "finished", 300, {"train_loss": 0.21, "val_loss": 0.25, "val_acc": 0.91})
    app = app_on(saved_run("healthy"))

    async def compare(pilot) -> None:  # type: ignore[no-untyped-def]
        await settle(pilot, pilot.app)
        await pilot.app.push_screen(CompareScreen(before, after, "grad_clipping"))

    assert snap_compare(app, terminal_size=(100, 30), run_before=compare)


@pytest.fixture(autouse=True)
def _no_colour_from_the_shell(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Snapshots are taken in colour unless a test asks otherwise."""
    monkeypatch.delenv("NO_COLOR", raising=False)
