"""The JUnit XML report of a check, the format CI systems show in their test UI.

One ``<testcase>`` per rule (name: the rule id; classname: ``netdoctor.<rule id>``), so a test
UI lists which health checks passed, as it lists unit tests:

- a rule with findings that fail the check → ``<failure>``: the first finding's message as the
  attribute, every failing finding (message, step, layer, evidence, fixes) in the body;
- a rule whose findings do not fail it (below ``--fail-on``, or known in the baseline) passes
  and carries them in ``<system-out>``;
- a rule that was not selected → ``<skipped>``.

With ``--baseline`` one more testcase, ``final_loss`` in ``netdoctor.baseline``, passes or fails
on the loss comparison. Rules run together, so no per-rule time is measured: testcases carry
time 0 and the suite the time of the whole check (pytest does the same for setup time).
Built with ElementTree, which escapes; characters XML 1.0 cannot hold are dropped.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import datetime, timezone

from netdoctor.diagnosis import Diagnosis
from netdoctor.gate import CheckResult
from netdoctor.report.plain import diagnosis_text

#: Characters XML 1.0 forbids even escaped (C0 controls but tab, newline, carriage return).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def render_junit(result: CheckResult, timestamp: datetime | None = None) -> str:
    """The JUnit XML document (with its declaration) for one check."""
    suite = ET.Element("testsuite", name=_xml(f"netdoctor check {result.run.path}"))
    properties = ET.SubElement(suite, "properties")
    for name, text in _properties(result):
        ET.SubElement(properties, "property", name=name, value=_xml(text))

    counts = {"tests": 0, "failures": 0, "skipped": 0, "errors": 0}
    by_rule: dict[str, list[Diagnosis]] = {}
    for d in result.diagnoses:
        by_rule.setdefault(d.rule, []).append(d)
    ran = list(dict.fromkeys([*result.ran, *by_rule]))  # a rule id the registry lacks: still shown
    for rule in ran:
        case = _testcase(suite, rule, f"netdoctor.{rule}")
        counts["tests"] += 1
        failing = [d for d in by_rule.get(rule, []) if result.is_failing(d)]
        passing = [d for d in by_rule.get(rule, []) if not result.is_failing(d)]
        if failing:
            counts["failures"] += 1
            more = f" (and {len(failing) - 1} more)" if len(failing) > 1 else ""
            failure = ET.SubElement(case, "failure", message=_xml(failing[0].message + more),
                                    type=failing[0].severity.value)
            failure.text = _xml(_bodies(failing))
        if passing:
            out = ET.SubElement(case, "system-out")
            note = _not_failing_note(result, passing)
            out.text = _xml(f"{note}\n\n{_bodies(passing)}")
    for rule in result.skipped:
        case = _testcase(suite, rule, f"netdoctor.{rule}")
        ET.SubElement(case, "skipped", message="rule not selected (--select/--ignore/settings)")
        counts["tests"] += 1
        counts["skipped"] += 1
    comparison = result.baseline
    if comparison is not None:
        case = _testcase(suite, "final_loss", "netdoctor.baseline")
        counts["tests"] += 1
        if comparison.loss is None:
            ET.SubElement(case, "system-out").text = _xml(comparison.loss_note or "")
        elif comparison.loss.regressed:
            counts["failures"] += 1
            failure = ET.SubElement(case, "failure", message=_xml(comparison.loss.describe()),
                                    type="regression")
            failure.text = _xml(f"{comparison.loss.describe()}\nbaseline: {comparison.path}")
        else:
            ET.SubElement(case, "system-out").text = _xml(comparison.loss.describe())

    stamp = timestamp or datetime.now(timezone.utc)
    time = f"{result.elapsed_s:.3f}"
    totals = {key: str(count) for key, count in counts.items()} | {"time": time}
    for key, text in totals.items():
        suite.set(key, text)
    suite.set("timestamp", stamp.isoformat(timespec="seconds"))
    root = ET.Element("testsuites", {"name": "netdoctor", **totals})
    root.append(suite)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _testcase(suite: ET.Element, name: str, classname: str) -> ET.Element:
    return ET.SubElement(suite, "testcase", name=name, classname=classname, time="0")


def _properties(result: CheckResult) -> list[tuple[str, str]]:
    props = [("run", result.run.path), ("status", str(result.run.status.value)),
             ("steps", str(result.run.n_steps)), ("fail_on", result.fail_on.value)]
    if result.baseline is not None:
        props.append(("baseline", result.baseline.path))
    return props


def _bodies(diagnoses: list[Diagnosis]) -> str:
    return "\n\n".join(diagnosis_text(d) for d in diagnoses)


def _not_failing_note(result: CheckResult, passing: list[Diagnosis]) -> str:
    if result.baseline is not None and any(result.fail_on.catches(d) for d in passing):
        return (f"also in the baseline ({result.baseline.path}) at or above "
                f"{result.fail_on.value}: accepted, not failing")
    return f"below --fail-on {result.fail_on.value}: reported, not failing"


def _xml(text: str) -> str:
    return _NOT_XML.sub("", text)
