"""What ``netdoctor check TARGET`` checks: TARGET resolved to the run it names.

A run log is read as it is. A recipe (a built-in name, a .toml or a .py file) is trained
headless under the check's budget (``--max-steps``, ``--max-time``) and the run log it wrote is
read like any other; when a budget ended the run, the log's end message (shown in the report)
says so. A run log that is wrong (missing, foreign, truncated) gets the reader's own one-line
error, a recipe that is wrong the recipe loader's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from netdoctor.runlog import RunData

#: File names that say "run log" even when the file is missing or broken: the reader's error
#: ("no such file", "truncated") then helps more than "no recipe named ...".
LOG_SUFFIXES = (".sqlite", ".sqlite3", ".db")


@dataclass(frozen=True)
class RecipeBudget:
    """How a recipe TARGET is trained: ``--set`` overrides and the budgets."""

    overrides: Sequence[str] = ()
    max_steps: int | None = None
    max_time: float | None = None


def resolve_target(target: str, budget: RecipeBudget | None = None) -> RunData:
    """The run that ``target`` names, loaded (a recipe is trained first); NetdoctorError
    (exit 2) when there is none."""
    from netdoctor.runlog import open_run

    path = Path(target)
    if is_recipe(path):
        from netdoctor.cli.run import train_for_check

        budget = budget or RecipeBudget()
        path = train_for_check(target, budget.overrides, budget.max_steps, budget.max_time)
    return open_run(path)


def is_recipe(path: Path) -> bool:
    """A recipe file (``.toml``, ``.py``), or a name that is no file and does not look like a
    log."""
    if path.suffix.lower() in (".toml", ".py"):
        return True
    return not path.exists() and path.suffix.lower() not in LOG_SUFFIXES
