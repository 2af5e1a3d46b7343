"""Rules: pure functions of a run log that turn it into diagnoses with evidence and fixes.

Imports numpy and the standard library only (never torch or textual), so that ``netdoctor
inspect`` and ``netdoctor check LOG`` start fast and work where torch is not installed.
"""

from netdoctor.rules.config import RuleConfig, load_config
from netdoctor.rules.engine import run_rules
from netdoctor.rules.fixes import FIXES, fix
from netdoctor.rules.registry import Rule, RuleDoc, Threshold, all_rules, get_rule


def checkup_rules() -> tuple[Rule, ...]:
    """Checks only ``netdoctor.checkup`` can make (documented like rules, never run on a log)."""
    from netdoctor.rules.checkup_checks import checkup_rules as rules

    return rules()


__all__ = [
    "FIXES",
    "Rule",
    "RuleConfig",
    "RuleDoc",
    "Threshold",
    "all_rules",
    "checkup_rules",
    "fix",
    "get_rule",
    "load_config",
    "run_rules",
]
