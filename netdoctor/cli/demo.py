"""``netdoctor demo [NAME]``: train a small built-in model under ``watch()`` and diagnose it.

The only command that imports torch, and only when it runs: ``netdoctor --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from netdoctor.cli.console import print_note
from netdoctor.cli.errors import fail, user_errors
from netdoctor.cli.inspect import View, show_report

DEFAULT_DEMO = "exploding"


@user_errors
def demo_command(
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="Which demo; an unknown name lists them.")
    ] = DEFAULT_DEMO,
    log: Annotated[
        Path | None,
        typer.Option("--log", metavar="PATH", help="Where to write the run log.  "
                     "[default: runs/demo-NAME.sqlite]", show_default=False),
    ] = None,
) -> None:
    """Train a built-in example under watch() and diagnose it.

    Each demo is a small hand-written training loop with one classic problem (or none); it
    trains for a few seconds on the CPU, writes its run log, and prints the same report as
    `netdoctor inspect`. Needs PyTorch.
    """
    try:
        from netdoctor.capture.demos import DEMOS, run_demo
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] == "torch":
            fail("`netdoctor demo` trains a model and needs PyTorch: pip install torch")
        raise
    if name not in DEMOS:
        fail(f"no demo named {name!r}; choose one of: {', '.join(sorted(DEMOS))}")
    log = log if log is not None else Path("runs") / f"demo-{name}.sqlite"
    print_note(f"netdoctor: training demo {name!r} ({DEMOS[name]}); run log: {log}")
    run_demo(name, log)

    from netdoctor.rules import run_rules
    from netdoctor.runlog import open_run

    run = open_run(log)
    # Default rule settings on purpose: a demo shows what netdoctor finds out of the box.
    show_report(run, run_rules(run), View.TEXT)
