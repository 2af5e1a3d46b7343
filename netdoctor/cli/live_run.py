"""A recipe run as the TUI's live source: the trainer behind ``netdoctor.tui.live.LiveSource``.

The TUI never imports torch; ``netdoctor run`` builds one of these from the recipe and hands it
over. It trains with ``netdoctor.recipes.train`` (in the app's worker thread), controls the run
through the trainer's thread-safe ``Controls``, and re-runs with a fix through ``apply_fix``:
the fixed run writes a log of its own next to the first, so both can be compared and kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from netdoctor.recipes import Progress, Recipe, TrainResult
    from netdoctor.recipes.trainer import Controls
    from netdoctor.rules import RuleConfig


def _controls() -> Controls:
    from netdoctor.recipes.trainer import Controls

    return Controls()


@dataclass
class RecipeRun:
    """One training run of ``recipe`` writing ``log``; ``fixes`` applied so far, in order."""

    recipe: Recipe
    log: Path
    max_steps: int | None = None
    max_time: float | None = None
    rules: RuleConfig | None = None
    fixes: tuple[str, ...] = ()
    controls: Controls = field(default_factory=_controls)

    @property
    def name(self) -> str:
        return " + ".join((self.recipe.name, *self.fixes))

    def start(self, on_progress: Callable[[Progress], None]) -> TrainResult:
        from netdoctor.recipes import train

        return train(self.recipe, self.log, on_progress=on_progress, controls=self.controls,
                     max_steps=self.max_steps, max_time=self.max_time, rules=self.rules)

    def pause(self) -> None:
        self.controls.pause()

    def resume(self) -> None:
        self.controls.resume()

    def stop(self) -> None:
        self.controls.stop()

    def with_fix(self, fix_id: str) -> RecipeRun:
        """The recipe patched by ``fix_id``, logging to ``<log>.<fix_id>.sqlite``; ConfigError
        when the fix has no patch or changes nothing in this recipe."""
        from netdoctor.recipes import apply_fix

        fixed = apply_fix(self.recipe, fix_id)
        log = self.log.with_name(f"{self.log.stem}.{fix_id}{self.log.suffix or '.sqlite'}")
        return RecipeRun(fixed, log, self.max_steps, self.max_time, self.rules,
                         (*self.fixes, fix_id))
