"""Domain exceptions. The CLI turns each into one line on stderr and exit code 2."""

from __future__ import annotations

from pathlib import Path


class NetdoctorError(Exception):
    """Base of every error that is the user's input, not a netdoctor bug."""


class RunLogError(NetdoctorError):
    """A run log that cannot be read: missing, not SQLite, foreign, truncated or too new."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class ConfigError(NetdoctorError):
    """A bad rule selection or threshold (unknown id, unknown name, wrong type)."""
