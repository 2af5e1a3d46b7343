"""How healthy a layer looks, judged with the rules' own thresholds.

The TUI colours a layer row; it does not diagnose. So the bands it colours by are the thresholds
of the rules that judge the same quantity (``dead_relu.dead_fraction``, ``lr_too_high.high_update``
...), read through the user's rule settings: a threshold changed in ``[tool.netdoctor]`` changes
the colours too, and no number here can drift away from the rules.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from netdoctor.diagnosis import Severity
from netdoctor.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from netdoctor.rules import RuleConfig


class Health(str, enum.Enum):
    """A layer's colour; the value is the CSS class and the word shown without colour."""

    UNKNOWN = "unknown"  # nothing measured yet
    OK = "ok"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return {"unknown": 0, "ok": 1, "warning": 2, "error": 3}[self.value]

    @classmethod
    def of(cls, severity: Severity) -> Health:
        if severity is Severity.ERROR:
            return cls.ERROR
        return cls.WARNING if severity is Severity.WARNING else cls.OK


def worst(*levels: Health) -> Health:
    return max(levels, key=lambda h: h.rank, default=Health.UNKNOWN)


@dataclass(frozen=True, slots=True)
class HealthBands:
    """Where a layer statistic turns from fine to worth a look. None: no rule judges it."""

    dead_fraction: float | None = None
    saturated_fraction: float | None = None
    low_update: float | None = None
    high_update: float | None = None

    @classmethod
    def from_rules(cls, config: RuleConfig | None = None) -> HealthBands:
        """The thresholds of the rules that judge each statistic, with the user's overrides."""
        return cls(
            dead_fraction=_threshold(config, "dead_relu", "dead_fraction"),
            saturated_fraction=_threshold(config, "saturated_activations", "saturated_fraction"),
            low_update=_threshold(config, "lr_too_low", "low_update"),
            high_update=_threshold(config, "lr_too_high", "high_update"),
        )

    def judge(
        self, dead: float | None, saturated: float | None, update_ratio: float | None
    ) -> list[str]:
        """Why these statistics are worth a look (empty: they are not)."""
        reasons = []
        if _above(dead, self.dead_fraction):
            reasons.append(f"dead {dead:.0%} ≥ {self.dead_fraction:.0%}")
        if _above(saturated, self.saturated_fraction):
            reasons.append(f"saturated {saturated:.0%} ≥ {self.saturated_fraction:.0%}")
        if _above(update_ratio, self.high_update):
            reasons.append(f"update ratio {update_ratio:.1e} ≥ {self.high_update:.0e}")
        if (update_ratio is not None and self.low_update is not None
                and 0 < update_ratio < self.low_update):
            reasons.append(f"update ratio {update_ratio:.1e} < {self.low_update:.0e}")
        return reasons


def _above(value: float | None, limit: float | None) -> bool:
    return value is not None and limit is not None and math.isfinite(value) and value >= limit


def _threshold(config: RuleConfig | None, rule_id: str, name: str) -> float | None:
    try:
        from netdoctor.rules import get_rule

        rule = get_rule(rule_id)
        values = config.values(rule) if config is not None else rule.defaults()
    except (ConfigError, ImportError, AttributeError):  # a rule set without that rule
        return None
    value = values.get(name)
    return float(value) if value is not None else None
