"""Rules: pure functions of a run log that turn it into diagnoses with evidence and fixes.

Imports numpy and the standard library only (never torch or textual), so that ``netdoctor
inspect`` and ``netdoctor check LOG`` start fast and work where torch is not installed.
"""

from netdoctor.rules.config import RuleConfig, load_config
from netdoctor.rules.engine import run_rules
from netdoctor.rules.fixes import FIXES, fix
from netdoctor.rules.registry import Rule, RuleDoc, Threshold, all_rules, get_rule

__all__ = [
    "FIXES",
    "Rule",
    "RuleConfig",
    "RuleDoc",
    "Threshold",
    "all_rules",
    "fix",
    "get_rule",
    "load_config",
    "run_rules",
]
