"""The cause -> consequence table: known ids, no cycles, and what a person reads first."""

from __future__ import annotations

from netdoctor.diagnosis import Diagnosis, Severity
from netdoctor.rules import registry
from netdoctor.rules.engine import sort_diagnoses


def _cycle(causes) -> list[str] | None:
    """A cycle in the graph consequence -> cause, as the list of ids around it; None if none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(rule: str) -> list[str] | None:
        if state.get(rule) == 1:
            return [*path[path.index(rule) :], rule]
        if state.get(rule) == 2:
            return None
        state[rule] = 1
        path.append(rule)
        for cause in causes.get(rule, ()):
            found = visit(cause)
            if found:
                return found
        path.pop()
        state[rule] = 2
        return None

    for rule in list(causes):
        found = visit(rule)
        if found:
            return found
    return None


def test_the_cycle_finder_finds_cycles():
    assert _cycle({"a": ("b",), "b": ("c",), "c": ("a",)}) == ["a", "b", "c", "a"]
    assert _cycle({"a": ("b", "c"), "b": ("c",)}) is None


def test_causes_have_no_cycle_and_name_registered_rules():
    assert _cycle(registry.CAUSES) is None
    known = set(registry.rule_ids())
    for consequence, causes in registry.CAUSES.items():
        assert consequence in known, consequence
        assert set(causes) <= known, (consequence, set(causes) - known)
        assert consequence not in causes and len(set(causes)) == len(causes)


def _d(rule: str, severity: Severity = Severity.WARNING, step: int = 0) -> Diagnosis:
    return Diagnosis(rule, severity, step, None, rule, {})


def test_raw_inputs_come_first_and_their_chain_follows():
    found = [
        _d("underfitting"),
        _d("vanishing_gradients", step=2),
        _d("dead_relu", step=1),
        _d("exploding_gradients", Severity.ERROR, step=0),
        _d("unnormalized_inputs"),
    ]
    ordered = sort_diagnoses(found)
    assert [d.rule for d in ordered] == [
        "unnormalized_inputs",
        "exploding_gradients",
        "dead_relu",
        "vanishing_gradients",
        "underfitting",
    ]
    assert [d.evidence.get("caused_by") for d in ordered] == [
        None,
        "unnormalized_inputs",
        "exploding_gradients",
        "dead_relu",
        "vanishing_gradients",
    ]


def test_a_bad_init_explains_saturated_units_and_the_gradients_they_stop():
    ordered = sort_diagnoses(
        [_d("vanishing_gradients"), _d("saturated_activations"), _d("poor_init")]
    )
    assert [d.rule for d in ordered] == [
        "poor_init",
        "saturated_activations",
        "vanishing_gradients",
    ]
    assert ordered[2].evidence["caused_by"] == "saturated_activations"
