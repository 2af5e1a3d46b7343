"""Run the selected rules on a run and order what they found.

Order: a root cause first with its consequences right after it (an explosion, then the NaN it
ended in), then by severity (error, warning, info), then by the step where the evidence first
held, then by the rules' documented order. A rule that raises does not cost the report: its
exception becomes an info diagnosis, and the other rules still run.
"""

from __future__ import annotations

import dataclasses
import math
from types import MappingProxyType

from netdoctor.diagnosis import Diagnosis, Severity
from netdoctor.rules.base import Rule
from netdoctor.rules.config import RuleConfig
from netdoctor.rules.registry import CAUSES, all_rules
from netdoctor.runlog.run_data import RunData


def run_rules(run: RunData, config: RuleConfig | None = None) -> list[Diagnosis]:
    """Every selected rule's diagnoses on ``run``, causes first (see the module docstring)."""
    config = config or RuleConfig()
    found: list[Diagnosis] = []
    for rule in config.rules():
        values = MappingProxyType(config.values(rule))
        try:
            found.extend(rule.check(run, values))
        except Exception as exc:  # a broken rule must not take the whole report down
            found.append(_failed(rule, exc))
    return sort_diagnoses(found)


def _failed(rule: Rule, exc: Exception) -> Diagnosis:
    detail = str(exc) or type(exc).__name__
    return Diagnosis(
        rule=rule.id,
        severity=Severity.INFO,
        step=None,
        layer=None,
        message=(
            f"rule {rule.id} failed on this run ({type(exc).__name__}: {detail}), so its "
            "finding is missing: please report it"
        ),
        evidence={"exception": type(exc).__name__, "detail": detail},
    )


def sort_diagnoses(diagnoses: list[Diagnosis]) -> list[Diagnosis]:
    """Causes first, each followed by its consequences; then severity, step, rule order.

    Each diagnosis hangs under the first of its possible causes (``CAUSES``, most immediate
    first) that was found on this run; the roots are ordered by severity, step and rule order,
    and each is followed by what it caused, ordered the same way, depth first. A consequence
    gets ``caused_by`` (the cause's rule id) in its evidence.
    """
    order = {r.id: i for i, r in enumerate(all_rules())}

    def own(d: Diagnosis) -> tuple[int, float, int]:
        step = math.inf if d.step is None else float(d.step)
        return (-d.severity.rank, step, order.get(d.rule, len(order)))

    by_rule: dict[str, Diagnosis] = {}
    for d in sorted(diagnoses, key=own):
        if d.severity is not Severity.INFO:  # a failed rule's note is neither cause nor effect
            by_rule.setdefault(d.rule, d)  # a rule's most important finding stands for it
    children: dict[int, list[Diagnosis]] = {}
    roots: list[Diagnosis] = []
    for d in diagnoses:
        cause = next((by_rule[c] for c in CAUSES.get(d.rule, ()) if c in by_rule), None)
        if cause is None or d.severity is Severity.INFO:
            roots.append(d)
        else:
            children.setdefault(id(cause), []).append(d)
    result: list[Diagnosis] = []

    def emit(d: Diagnosis, cause: Diagnosis | None) -> None:
        shown = d
        if cause is not None:  # say so in the evidence: reports and JSON can link the two
            shown = dataclasses.replace(d, evidence={**d.evidence, "caused_by": cause.rule})
        result.append(shown)
        for child in sorted(children.get(id(d), []), key=own):
            emit(child, d)

    for root in sorted(roots, key=own):
        emit(root, None)
    return result
