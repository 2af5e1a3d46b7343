"""The rules netdoctor knows, in their documented order, and the cause-consequence table.

Order (``all_rules()``): nan_loss, exploding_gradients, vanishing_gradients, overfitting,
underfitting, the order of design.md's rule ids. Reports list rules in this order when
nothing else (cause, severity, step) separates two diagnoses.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from netdoctor.errors import ConfigError
from netdoctor.rules import exploding, nonfinite, overfitting, underfitting, vanishing
from netdoctor.rules.base import Rule, RuleDoc, Threshold

__all__ = ["CAUSES", "Rule", "RuleDoc", "Threshold", "all_rules", "get_rule", "rule_ids"]

_RULES: tuple[Rule, ...] = (
    nonfinite.RULE,
    exploding.RULE,
    vanishing.RULE,
    overfitting.RULE,
    underfitting.RULE,
)
_BY_ID: Mapping[str, Rule] = MappingProxyType({r.id: r for r in _RULES})

#: Consequence rule id -> rule ids that can be its root cause. When both fire on one run, the
#: engine lists the cause first and its consequence right after it: a NaN that ends an explosion
#: is explained by the explosion, and so are gates saturated by it (gradients then vanish); a net
#: that cannot learn because its gradients vanish or exploded is explained by that.
CAUSES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "nan_loss": ("exploding_gradients",),
        "vanishing_gradients": ("exploding_gradients",),
        "underfitting": ("vanishing_gradients", "exploding_gradients"),
    }
)


def all_rules() -> tuple[Rule, ...]:
    """Every rule, in the documented order."""
    return _RULES


def rule_ids() -> tuple[str, ...]:
    return tuple(r.id for r in _RULES)


def get_rule(rule_id: str) -> Rule:
    """The rule called ``rule_id``; ConfigError naming the known ids when there is none."""
    try:
        return _BY_ID[rule_id]
    except KeyError:
        raise ConfigError(f"unknown rule id {rule_id!r} (known: {', '.join(rule_ids())})") from None
