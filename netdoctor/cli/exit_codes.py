"""Exit codes of every netdoctor command (design.md; the same as ruff's)."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0  # done; nothing at or above the failure threshold
    FINDINGS = 1  # `check`: a diagnosis at or above --fail-on
    USAGE = 2  # bad usage or unreadable input: one line on stderr says which
