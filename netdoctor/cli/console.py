"""The one place that makes rich Consoles and writes to stdout or stderr.

stdout carries only the report or the data asked for; errors and progress go to stderr. Colour
follows rich's reading of the environment, which is the convention ruff and others follow:
``NO_COLOR`` (non-empty) turns colour off, ``FORCE_COLOR`` (non-empty) turns styling on even
into a pipe, and output that is not a terminal is plain text without escape codes.
"""

from __future__ import annotations

import sys

from rich.console import Console, RenderableType


def stdout_console() -> Console:
    # highlight=False: no guessing colours for numbers and paths inside our own texts.
    return Console(highlight=False)


def stderr_console() -> Console:
    return Console(stderr=True, highlight=False)


def print_report(renderable: RenderableType, one_line: bool = False) -> None:
    """A rich report to stdout; ``one_line`` text is never wrapped or cropped (a verdict)."""
    stdout_console().print(renderable, soft_wrap=one_line)


def write_data(text: str) -> None:
    """Machine-readable output (JSON) to stdout, byte for byte, never styled or wrapped."""
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


def write_ci_commands(text: str) -> None:
    """Commands for a CI runner (GitHub's ``::error::`` lines) to stderr, raw and unwrapped.

    The GitHub runner reads workflow commands from stderr as from stdout, and stdout carries
    only the report.
    """
    if text:
        sys.stderr.write(text if text.endswith("\n") else text + "\n")
        sys.stderr.flush()


def print_error(message: str) -> None:
    """``netdoctor: error: <message>`` as exactly one line on stderr."""
    one_line = " ".join(message.split())
    stderr_console().print(
        f"netdoctor: error: {one_line}", markup=False, soft_wrap=True, style="red"
    )


def print_note(message: str) -> None:
    """A progress note for the person at the terminal (stderr, so stdout stays data)."""
    stderr_console().print(message, markup=False, soft_wrap=True, style="dim")
