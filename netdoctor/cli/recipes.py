"""``netdoctor recipes``: the built-in recipes, one line each, with what each one shows."""

from __future__ import annotations

from rich.text import Text

from netdoctor.cli.console import print_note, print_report
from netdoctor.cli.errors import user_errors


@user_errors
def recipes_command() -> None:
    """List the built-in recipes and the diagnoses each one is meant to show.

    Run one with `netdoctor run NAME --headless`. To start your own, copy a file from the
    folder named at the end (stderr) and run it by its path.
    """
    from netdoctor.recipes import builtin_recipes
    from netdoctor.recipes.loader import builtin_dir

    found = builtin_recipes()
    width = max((len(info.name) for info in found), default=0)
    for info in found:
        shows = ", ".join(info.expect) if info.expect else "healthy: no warning or error"
        line = Text(f"{info.name:<{width}}  ", style="bold")
        line.append(info.description or "(no description)")
        line.append(f"  [{shows}]", style="dim")
        print_report(line, one_line=True)
    print_note(f"netdoctor: built-in recipe files: {builtin_dir()}")
