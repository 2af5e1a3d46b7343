"""What ``netdoctor check TARGET`` checks: TARGET resolved to the run it names.

This is the one place where a recipe run will plug in (issue #4): ``resolve_target`` will train
the recipe headless under its budget (``--max-steps``, ``--max-time``, added with it) and return
the run log it wrote, read like any other. Until then a TARGET that is not a run log is a usage
error that says so, while a run log that is wrong (missing, foreign, truncated) gets the
reader's own one-line error.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from netdoctor.errors import NetdoctorError

if TYPE_CHECKING:  # pragma: no cover
    from netdoctor.runlog import RunData

#: File names that say "run log" even when the file is missing or broken: the reader's error
#: ("no such file", "truncated") then helps more than "recipes are not supported yet".
LOG_SUFFIXES = (".sqlite", ".sqlite3", ".db")


class RecipeNotSupportedError(NetdoctorError):
    """TARGET names a recipe, and ``check`` cannot train recipes yet."""


def resolve_target(target: str) -> RunData:
    """The run that ``target`` names, loaded; NetdoctorError (exit 2) when there is none."""
    from netdoctor.runlog import open_run

    path = Path(target)
    if is_recipe(path):
        raise RecipeNotSupportedError(
            f"{target}: not a run log; checking a recipe is not supported yet: train under "
            "netdoctor.watch(..., log=PATH) and check that log"
        )
    return open_run(path)


def is_recipe(path: Path) -> bool:
    """A recipe file (``.toml``), or a name that is no file and does not look like a log."""
    if path.suffix.lower() == ".toml":
        return True
    return not path.exists() and path.suffix.lower() not in LOG_SUFFIXES
