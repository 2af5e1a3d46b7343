"""User errors in the CLI: one line on stderr, exit code 2, never a traceback.

Bugs in netdoctor itself are not caught here: their traceback is what a bug report needs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NoReturn, ParamSpec, TypeVar

import typer

from netdoctor.cli.console import print_error
from netdoctor.cli.exit_codes import ExitCode
from netdoctor.errors import NetdoctorError

P = ParamSpec("P")
R = TypeVar("R")


def fail(message: str) -> NoReturn:
    print_error(message)
    raise typer.Exit(ExitCode.USAGE)


def user_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Wrap a command so that any ``NetdoctorError`` it raises ends as ``fail(str(error))``."""

    @functools.wraps(command)  # typer reads the signature through __wrapped__
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except NetdoctorError as exc:
            fail(str(exc))

    return wrapper
