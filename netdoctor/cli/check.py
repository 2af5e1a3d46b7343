"""``netdoctor check TARGET``: the headless CI gate, exit code by severity.

Reads the run, applies the rules, prints the plain report (stdout holds only the report) and
exits 0 when nothing at or above ``--fail-on`` was found, 1 when something was, 2 for bad usage
or unreadable input. On request it also writes the JSON and JUnit reports; under GitHub Actions
it annotates the run and appends a Markdown summary to ``$GITHUB_STEP_SUMMARY``.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from netdoctor.cli import options
from netdoctor.cli.console import print_report, write_ci_commands
from netdoctor.cli.errors import fail, user_errors
from netdoctor.cli.exit_codes import ExitCode
from netdoctor.cli.settings import fail_on_setting, rule_config
from netdoctor.errors import NetdoctorError, RunLogError
from netdoctor.gate import CheckResult, FailOn

if TYPE_CHECKING:  # pragma: no cover
    from netdoctor.cli.target import RecipeBudget
    from netdoctor.rules import RuleConfig


@user_errors
def check_command(
    target: Annotated[
        str,
        typer.Argument(metavar="TARGET", help="The run log (.sqlite) to check, or a recipe "
                       "(built-in name, .toml or .py) to train and check.", show_default=False),
    ],
    fail_on: Annotated[
        FailOn | None,
        typer.Option("--fail-on", case_sensitive=False, help="Fail on findings of this "
                     "severity or worse; also `fail_on` in the settings.  [default: error]",
                     show_default=False),
    ] = None,
    exit_zero: Annotated[
        bool,
        typer.Option("--exit-zero", help="Exit 0 even when findings fail the check (bad usage "
                     "or input still exits 2)."),
    ] = False,
    json_path: Annotated[
        Path | None,
        typer.Option("--json", metavar="PATH", help="Also write the JSON report to PATH.",
                     show_default=False),
    ] = None,
    junit_path: Annotated[
        Path | None,
        typer.Option("--junit", metavar="PATH", help="Also write a JUnit XML report (one "
                     "testcase per rule) to PATH, for CI test views.", show_default=False),
    ] = None,
    baseline: Annotated[
        Path | None,
        typer.Option("--baseline", metavar="LOG", help="Compare with this known-good run: fail "
                     "only on findings it did not have, or on a final loss regression.",
                     show_default=False),
    ] = None,
    max_regression: Annotated[
        float,
        typer.Option("--max-regression", metavar="FRACTION", min=0.0, help="With --baseline: "
                     "the largest allowed rise of the final loss, relative (0.1 = 10 %)."),
    ] = 0.10,
    max_steps: Annotated[
        int | None,
        typer.Option("--max-steps", min=1, metavar="N", help="Recipe TARGET: stop training "
                     "after N optimizer steps.", show_default=False),
    ] = None,
    max_time: Annotated[
        float | None,
        typer.Option("--max-time", metavar="SECONDS", help="Recipe TARGET: stop training after "
                     "this much training time.", show_default=False),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", metavar="KEY=VALUE", help="Recipe TARGET: override a recipe key "
                     "(repeatable).", show_default=False),
    ] = None,
    select: options.Select = None,
    ignore: options.Ignore = None,
    config: options.Config = None,
) -> None:
    """Check a run for CI: exit 1 when a finding at or above --fail-on is found.

    Prints the same report as `netdoctor inspect` and the verdict. The final loss compared with
    --baseline is the last epoch's val_loss when both runs have one, else train_loss, else the
    last step's loss. A recipe TARGET is trained first (headless, within --max-steps and
    --max-time; the report says when a budget ended it). Exit codes: 0 passed, 1 failed, 2 bad
    usage or unreadable input.
    """
    if not math.isfinite(max_regression):
        fail(f"--max-regression must be a finite number, got {max_regression}")
    if max_time is not None and not (math.isfinite(max_time) and max_time > 0):
        fail(f"--max-time must be a positive number of seconds, got {max_time}")
    settings = rule_config(select, ignore, config)
    threshold = fail_on or fail_on_setting(config) or FailOn.ERROR
    from netdoctor.cli.target import RecipeBudget

    budget = RecipeBudget(tuple(set_ or ()), max_steps, max_time)
    result = run_check(target, settings, threshold, baseline, max_regression, budget)

    write_files(result, json_path, junit_path)  # first: one that fails is exit 2, no report

    from netdoctor.report.check_text import render_check, verdict

    print_report(render_check(result))
    print_report(verdict(result), one_line=True)
    if os.environ.get("GITHUB_ACTIONS", "").lower() == "true":
        from netdoctor.report.github import render_annotations

        write_ci_commands(render_annotations(result))
    if not result.passed and not exit_zero:
        raise typer.Exit(ExitCode.FINDINGS)


def run_check(
    target: str,
    settings: RuleConfig,
    threshold: FailOn,
    baseline: Path | None,
    max_regression: float,
    budget: RecipeBudget | None = None,
) -> CheckResult:
    """Read the run (and the baseline), run the selected rules on both, build the verdict."""
    from netdoctor.cli.target import resolve_target
    from netdoctor.gate import compare_baseline
    from netdoctor.rules import all_rules, run_rules
    from netdoctor.runlog import open_run

    started = time.perf_counter()
    run = resolve_target(target, budget)
    diagnoses = run_rules(run, settings)
    comparison = None
    if baseline is not None:
        try:
            base_run = open_run(baseline)
        except RunLogError as exc:
            raise NetdoctorError(f"--baseline {exc}") from None
        comparison = compare_baseline(run, diagnoses, base_run, run_rules(base_run, settings),
                                      threshold, max_regression)
    ran = tuple(r.id for r in settings.rules())
    skipped = tuple(r.id for r in all_rules() if r.id not in ran)
    return CheckResult(run, tuple(diagnoses), threshold, ran, skipped, comparison,
                       time.perf_counter() - started)


def write_files(result: CheckResult, json_path: Path | None, junit_path: Path | None) -> None:
    """The report files asked for, and the step summary when GitHub Actions asks for one."""
    if json_path is not None:
        from netdoctor.report.json_report import render_json

        _write(json_path, render_json(result.run, result.diagnoses, result.baseline) + "\n",
               "--json")
    if junit_path is not None:
        from netdoctor.report.junit import render_junit

        _write(junit_path, render_junit(result), "--junit")
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        from netdoctor.report.markdown import render_markdown

        _write(Path(summary), render_markdown(result), "GITHUB_STEP_SUMMARY", append=True)


def _write(path: Path, text: str, what: str, append: bool = False) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a" if append else "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise NetdoctorError(f"{path}: cannot write the {what} file ({exc.strerror})") from None
