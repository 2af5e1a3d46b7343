"""Options shared by the commands that run rules (``inspect``, ``check``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

Select = Annotated[
    list[str] | None,
    typer.Option(
        "--select",
        metavar="IDS",
        help="Run only these rules (ids, comma-separated or repeated); "
        "replaces `select` from the settings files.",
        show_default=False,
    ),
]
Ignore = Annotated[
    list[str] | None,
    typer.Option(
        "--ignore",
        metavar="IDS",
        help="Skip these rules (ids, comma-separated or repeated); "
        "added to `ignore` from the settings files.",
        show_default=False,
    ),
]
Config = Annotated[
    Path | None,
    typer.Option(
        "--config",
        metavar="PATH",
        help="Also read rule settings (select, ignore, thresholds at top level) from this TOML "
        "file; it wins over [tool.netdoctor] of the nearest pyproject.toml.",
        show_default=False,
    ),
]
