"""The Textual TUI: the only package that imports textual, and it never imports torch.

``netdoctor inspect LOG`` and ``netdoctor run RECIPE`` open it when stdout is a terminal. This
module stays free of textual itself: the CLI imports it, and textual loads only when the app
actually starts.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from netdoctor.diagnosis import Diagnosis
    from netdoctor.rules import RuleConfig
    from netdoctor.runlog import RunData
    from netdoctor.tui.compare import RunRecord
    from netdoctor.tui.live import LiveSource


def inspect_in_tui(
    run: RunData,
    diagnoses: Sequence[Diagnosis],
    settings: RuleConfig | None,
    follow: bool = False,
) -> None:
    """Show a saved (or, with ``follow``, growing) log until the user quits."""
    from netdoctor.tui.app import NetdoctorApp
    from netdoctor.tui.log_poller import Snapshot

    app = NetdoctorApp(Path(run.path), first=Snapshot(run, tuple(diagnoses)),
                       settings=settings, follow=follow)
    app.run()


def train_in_tui(source: LiveSource, settings: RuleConfig | None) -> list[RunRecord]:
    """Train ``source`` with the app open; returns how each run ended (a fix adds a second)."""
    from netdoctor.tui.app import NetdoctorApp

    app = NetdoctorApp(live=source, settings=settings)
    app.run()
    return list(app.records)
