"""The records every part of netdoctor agrees on: a diagnosis and the fixes it suggests.

Kept free of torch and of any output format: rules build these, the report, JSON, JUnit and TUI
layers only read them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Severity(str, enum.Enum):
    """How bad a finding is. Ordered: ``ERROR`` outranks ``WARNING`` outranks ``INFO``."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        """Larger is worse; used for sorting and for ``--fail-on``."""
        return {"info": 0, "warning": 1, "error": 2}[self.value]

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class Fix:
    """One remedy: a stable id (design.md's fix ids) and a text that says what to change."""

    id: str
    text: str

    def to_json(self) -> dict[str, str]:
        return {"id": self.id, "text": self.text}


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """A rule's finding on one run.

    ``step`` is the first optimizer step at which the evidence held; ``layer`` is the module's
    qualified name when the problem lives in one layer. ``evidence`` holds the numbers behind the
    message so that a person (or a test) can check them; ``fixes`` are ranked, most promising first.
    """

    rule: str
    severity: Severity
    step: int | None
    layer: str | None
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    fixes: tuple[Fix, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "severity": self.severity.value,
            "step": self.step,
            "layer": self.layer,
            "message": self.message,
            "evidence": _json_safe(self.evidence),
            "fixes": [f.to_json() for f in self.fixes],
        }


def _json_safe(value: Any) -> Any:
    """Make evidence strict-JSON: non-finite floats become strings ("nan", "inf", "-inf")."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if number != number:
        return "nan"
    if number in (float("inf"), float("-inf")):
        return "inf" if number > 0 else "-inf"
    if hasattr(value, "dtype") and "int" in str(value.dtype):
        return int(value)
    return number
