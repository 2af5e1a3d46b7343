"""The JUnit XML emitter, read back with a parser: testcases, counts, failures and escaping."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path

import pytest

from netdoctor.diagnosis import Diagnosis, Fix, Severity
from netdoctor.gate import CheckResult, FailOn, compare_baseline
from netdoctor.report.junit import render_junit
from netdoctor.runlog import open_run

ERROR = Diagnosis("exploding_gradients", Severity.ERROR, 12, "0",
                  "grad norm grew <fast> & \"far\"", {"growth": 1e7, "steps": 12},
                  (Fix("grad_clipping", "clip it"), Fix("lower_lr", "lower it")))
ERROR_2 = Diagnosis("exploding_gradients", Severity.ERROR, 20, "2", "also layer 2", {}, ())
WARNING = Diagnosis("overfitting", Severity.WARNING, 30, None, "val loss rises\x00\x1b",
                    {"gap": 0.4}, (Fix("early_stopping", "stop early"),))
RULES = ("nan_loss", "exploding_gradients", "vanishing_gradients", "overfitting")


def result(log: Path, diagnoses: list[Diagnosis], fail_on: FailOn = FailOn.ERROR,
           skipped: tuple[str, ...] = ("underfitting",)) -> CheckResult:
    return CheckResult(open_run(log), tuple(diagnoses), fail_on, RULES, skipped, None, 0.25)


def parse(text: str) -> tuple[ET.Element, ET.Element, dict[str, ET.Element]]:
    root = ET.fromstring(text.encode())
    suite = root.find("testsuite")
    assert suite is not None
    return root, suite, {c.get("name", ""): c for c in suite.findall("testcase")}


def test_one_testcase_per_rule_and_consistent_counts(small_log: Path) -> None:
    root, suite, cases = parse(render_junit(result(small_log, [ERROR, ERROR_2, WARNING])))
    assert root.tag == "testsuites"
    assert list(cases) == [*RULES, "underfitting"]
    assert all(c.get("classname") == f"netdoctor.{name}" for name, c in cases.items())
    for element in (root, suite):
        assert element.get("tests") == "5"
        assert element.get("failures") == "1"
        assert element.get("skipped") == "1"
        assert element.get("errors") == "0"
        assert element.get("time") == "0.250"
    counted = sum(c.find("failure") is not None for c in cases.values())
    assert counted == int(suite.get("failures", "-1"))
    assert cases["underfitting"].find("skipped") is not None
    assert cases["nan_loss"].find("failure") is None and cases["nan_loss"].find("skipped") is None


def test_failure_carries_message_and_details(small_log: Path) -> None:
    _, _, cases = parse(render_junit(result(small_log, [ERROR, ERROR_2, WARNING])))
    failure = cases["exploding_gradients"].find("failure")
    assert failure is not None
    assert failure.get("message") == 'grad norm grew <fast> & "far" (and 1 more)'
    assert failure.get("type") == "error"
    body = failure.text or ""
    assert "error exploding_gradients at step 12, layer 0" in body
    assert "growth: 1e+07" in body and "1. grad_clipping: clip it" in body
    assert "error exploding_gradients at step 20, layer 2" in body


def test_below_threshold_passes_with_system_out(small_log: Path) -> None:
    _, _, cases = parse(render_junit(result(small_log, [WARNING])))
    case = cases["overfitting"]
    assert case.find("failure") is None
    out = case.findtext("system-out") or ""
    assert "below --fail-on error" in out and "stop early" in out
    assert "\x00" not in out and "\x1b" not in out  # dropped: XML 1.0 cannot hold them


def test_fail_on_warning_fails_the_warning(small_log: Path) -> None:
    root, _, cases = parse(render_junit(result(small_log, [WARNING], FailOn.WARNING)))
    assert cases["overfitting"].find("failure") is not None
    assert root.get("failures") == "1"


def test_baseline_testcase(small_log: Path, make_log) -> None:
    run = open_run(small_log)
    comparison = compare_baseline(run, [ERROR], open_run(make_log("base.sqlite")), [ERROR],
                                  FailOn.ERROR, 0.1)
    checked = CheckResult(run, (ERROR,), FailOn.ERROR, RULES, (), comparison, 0.0)
    root, suite, cases = parse(render_junit(checked))
    # the error is known in the baseline: it passes, and says why
    assert cases["exploding_gradients"].find("failure") is None
    assert "also in the baseline" in (cases["exploding_gradients"].findtext("system-out") or "")
    assert cases["final_loss"].get("classname") == "netdoctor.baseline"
    assert cases["final_loss"].find("failure") is None  # the same losses
    assert root.get("tests") == str(len(RULES) + 1) and root.get("failures") == "0"
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["baseline"] == str(make_log("base.sqlite"))
    assert props["fail_on"] == "error"


@pytest.mark.parametrize("diagnoses", [[], [ERROR, WARNING]])
def test_timestamp_and_declaration(small_log: Path, diagnoses: list[Diagnosis]) -> None:
    stamp = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    text = render_junit(result(small_log, diagnoses), timestamp=stamp)
    assert text.startswith("<?xml")
    _, suite, _ = parse(text)
    assert suite.get("timestamp") == "2025-01-02T03:04:05+00:00"
