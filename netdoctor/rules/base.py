"""The records a rule is made of: its thresholds, its documentation, and the rule itself.

Kept apart from ``registry`` so that rule modules can import these types while the registry
imports the rule modules (no import cycle). ``netdoctor.rules.registry`` re-exports all three.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from netdoctor.diagnosis import Diagnosis, Severity
from netdoctor.runlog.run_data import RunData

#: What every rule's ``check`` looks like: a pure function of the run and its threshold values.
CheckFn = Callable[[RunData, Mapping[str, float]], list[Diagnosis]]


@dataclass(frozen=True, slots=True)
class Threshold:
    """A named, documented number a rule compares against; users may override it.

    ``source`` says where the default comes from (a paper, a tool, or "netdoctor" when it is
    ours), so that a person can judge whether it suits their model before changing it.
    """

    name: str
    default: float
    description: str
    source: str


@dataclass(frozen=True, slots=True)
class RuleDoc:
    """Fixed documentation sections, ruff-style: ``netdoctor rules ID`` prints them in order."""

    what: str
    why: str
    how_to_fix: str
    example: str


@dataclass(frozen=True, slots=True)
class Rule:
    """One diagnosis rule: data (id, severity, thresholds, fix ids, docs) plus a pure check.

    ``check`` receives the run and the threshold values by name (defaults merged with the
    user's overrides) and returns zero or more diagnoses; it never prints and never raises to
    signal a finding.
    """

    id: str
    severity: Severity
    title: str
    thresholds: tuple[Threshold, ...]
    fixes: tuple[str, ...]
    doc: RuleDoc
    check: CheckFn

    def defaults(self) -> dict[str, float]:
        """Threshold name -> default value."""
        return {t.name: t.default for t in self.thresholds}

    def threshold_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.thresholds)
