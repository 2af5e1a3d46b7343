"""Domain exceptions. The CLI turns each into one line on stderr and exit code 2."""

from __future__ import annotations

import re
from pathlib import Path

#: Longest problem text kept: SQLite may quote a whole damaged schema back at us.
_MAX_PROBLEM = 300


class NetdoctorError(Exception):
    """Base of every error that is the user's input, not a netdoctor bug."""


class RunLogError(NetdoctorError):
    """A run log that cannot be read: missing, not SQLite, foreign, truncated or too new."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        self.problem = one_line(problem)
        super().__init__(f"{self.path}: {self.problem}")


def one_line(text: str, limit: int = _MAX_PROBLEM) -> str:
    """``text`` as one short line: user errors are one line on stderr, whatever they quote."""
    flat = re.sub(r"\s+", " ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class ConfigError(NetdoctorError):
    """A bad rule selection or threshold (unknown id, unknown name, wrong type)."""


class TrainingError(NetdoctorError):
    """The training code failed (a Python recipe's model or data): one line naming where; the
    run log keeps what was recorded (status "crashed")."""
