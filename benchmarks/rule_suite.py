"""Precision and recall of the rules over labelled runs: built-in recipes and hand-written loops.

    python benchmarks/rule_suite.py [--only NAME ...] [--json out.json] [--min-precision 0.95]
                                    [--min-recall 0.95]

A labelled run says which rule ids it must produce at warning or error level (a healthy run: none).
The cases are
- every built-in recipe (``netdoctor recipes``), labelled by its ``expect`` list, trained at its
  default size;
- every ``benchmarks/labelled/*.py`` script: a hand-written loop under ``netdoctor.watch`` that
  exposes ``EXPECT`` (rule ids) and ``train(log: Path) -> list[Diagnosis]``.
For each rule: true positives (expected and found), false negatives (expected, missed) and false
positives (found, not expected); micro-averaged precision and recall over all of them; and the
false alarms on healthy runs. Exit 1 when a minimum is not met.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LABELLED = Path(__file__).resolve().parent / "labelled"
LOUD = ("error", "warning")


@dataclass(frozen=True)
class Case:
    name: str
    kind: str  # "recipe" | "loop"
    expect: frozenset[str]
    run: Callable[[Path], Sequence[object]]  # log path -> diagnoses


@dataclass
class Outcome:
    case: Case
    found: frozenset[str]
    seconds: float
    error: str | None = None

    @property
    def missed(self) -> frozenset[str]:
        return self.case.expect - self.found

    @property
    def extra(self) -> frozenset[str]:
        return self.found - self.case.expect


@dataclass
class Score:
    tp: dict[str, int] = field(default_factory=dict)
    fp: dict[str, int] = field(default_factory=dict)
    fn: dict[str, int] = field(default_factory=dict)

    def add(self, outcome: Outcome) -> None:
        for rule in outcome.case.expect & outcome.found:
            self.tp[rule] = self.tp.get(rule, 0) + 1
        for rule in outcome.extra:
            self.fp[rule] = self.fp.get(rule, 0) + 1
        for rule in outcome.missed:
            self.fn[rule] = self.fn.get(rule, 0) + 1

    @staticmethod
    def ratio(num: int, den: int) -> float:
        return num / den if den else 1.0

    def precision(self, rule: str | None = None) -> float:
        tp = sum(self.tp.values()) if rule is None else self.tp.get(rule, 0)
        fp = sum(self.fp.values()) if rule is None else self.fp.get(rule, 0)
        return self.ratio(tp, tp + fp)

    def recall(self, rule: str | None = None) -> float:
        tp = sum(self.tp.values()) if rule is None else self.tp.get(rule, 0)
        fn = sum(self.fn.values()) if rule is None else self.fn.get(rule, 0)
        return self.ratio(tp, tp + fn)

    def rules(self) -> list[str]:
        return sorted(set(self.tp) | set(self.fp) | set(self.fn))


def loud_rules(diagnoses: Iterable[object]) -> frozenset[str]:
    return frozenset(d.rule for d in diagnoses if str(d.severity) in LOUD)  # type: ignore[attr-defined]


def recipe_cases() -> list[Case]:
    from netdoctor.recipes import builtin_recipes, load_recipe, train

    cases = []
    for info in builtin_recipes():
        def run(log: Path, name: str = info.name) -> Sequence[object]:
            return train(load_recipe(name), log).diagnoses

        cases.append(Case(info.name, "recipe", frozenset(info.expect), run))
    return cases


def loop_cases(directory: Path = LABELLED) -> list[Case]:
    """Every labelled loop; one that does not import becomes a case that fails with its error."""
    cases = []
    for path in sorted(directory.glob("*.py")):
        try:
            spec = importlib.util.spec_from_file_location(f"labelled_{path.stem}", path)
            assert spec and spec.loader
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            cases.append(Case(path.stem, "loop", frozenset(module.EXPECT), module.train))
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}"

            def broken(log: Path, message: str = message) -> Sequence[object]:
                raise RuntimeError(f"cannot load the loop ({message})")

            cases.append(Case(path.stem, "loop", frozenset(), broken))
    return cases


def evaluate(cases: Sequence[Case], workdir: Path,
             progress: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    outcomes = []
    for case in cases:
        start = time.perf_counter()
        try:
            found = loud_rules(case.run(workdir / f"{case.kind}-{case.name}.sqlite"))
            outcome = Outcome(case, found, time.perf_counter() - start)
        except Exception as exc:  # a case that cannot run is reported, not fatal
            outcome = Outcome(case, frozenset(), time.perf_counter() - start,
                              f"{type(exc).__name__}: {exc}")
        outcomes.append(outcome)
        if progress:
            progress(outcome)
    return outcomes


def summary(outcomes: Sequence[Outcome]) -> dict[str, object]:
    score = Score()
    for outcome in outcomes:
        score.add(outcome)
    healthy = [o for o in outcomes if not o.case.expect]
    return {
        "cases": len(outcomes),
        "precision": score.precision(),
        "recall": score.recall(),
        "healthy_runs": len(healthy),
        "false_alarms_on_healthy": sum(len(o.found) for o in healthy),
        "errors": [f"{o.case.name}: {o.error}" for o in outcomes if o.error],
        "per_rule": {
            rule: {"tp": score.tp.get(rule, 0), "fp": score.fp.get(rule, 0),
                   "fn": score.fn.get(rule, 0), "precision": score.precision(rule),
                   "recall": score.recall(rule)}
            for rule in score.rules()
        },
        "cases_detail": [
            {"name": o.case.name, "kind": o.case.kind, "expect": sorted(o.case.expect),
             "found": sorted(o.found), "seconds": round(o.seconds, 2), "error": o.error}
            for o in outcomes
        ],
    }


def _line(outcome: Outcome) -> str:
    mark = "ok  " if not (outcome.missed or outcome.extra or outcome.error) else "MISS"
    parts = [f"{mark} {outcome.case.kind:6} {outcome.case.name:32} {outcome.seconds:5.1f}s"]
    parts.append("expect " + (", ".join(sorted(outcome.case.expect)) or "nothing"))
    if outcome.missed:
        parts.append("missed " + ", ".join(sorted(outcome.missed)))
    if outcome.extra:
        parts.append("extra " + ", ".join(sorted(outcome.extra)))
    if outcome.error:
        parts.append("error " + outcome.error)
    return " · ".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="case names to run (default: all)")
    parser.add_argument("--no-recipes", action="store_true")
    parser.add_argument("--no-loops", action="store_true")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep-logs", type=Path, metavar="DIR",
                        help="write the run logs here (to inspect a miss) instead of a temp dir")
    parser.add_argument("--min-precision", type=float, default=0.0)
    parser.add_argument("--min-recall", type=float, default=0.0)
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    cases = ([] if args.no_recipes else recipe_cases()) + ([] if args.no_loops else loop_cases())
    if args.only:
        cases = [c for c in cases if c.name in set(args.only)]
    def show(outcome: Outcome) -> None:
        print(_line(outcome), flush=True)

    if args.keep_logs:
        args.keep_logs.mkdir(parents=True, exist_ok=True)
        outcomes = evaluate(cases, args.keep_logs, progress=show)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            outcomes = evaluate(cases, Path(tmp), progress=show)
    result = summary(outcomes)
    print()
    print(f"{'rule':28} {'tp':>3} {'fp':>3} {'fn':>3} {'precision':>9} {'recall':>6}")
    for rule, row in result["per_rule"].items():  # type: ignore[union-attr]
        print(f"{rule:28} {row['tp']:>3} {row['fp']:>3} {row['fn']:>3} "
              f"{row['precision']:>9.2f} {row['recall']:>6.2f}")
    print(f"\n{result['cases']} labelled runs: precision {result['precision']:.2f}, "
          f"recall {result['recall']:.2f}, false alarms on {result['healthy_runs']} healthy "
          f"runs: {result['false_alarms_on_healthy']}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    ok = (result["precision"] >= args.min_precision and result["recall"] >= args.min_recall
          and not result["errors"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main())
