"""``netdoctor fix RECIPE``: diagnose, apply the top fix, re-run, and show that it worked.

A suggested fix is a hypothesis; re-running with it is the test. Each round trains the recipe
with the same seed before and after one patch, so the table compares like with like: the
diagnoses, the final losses and accuracies, the test accuracy. Rounds chain until the run is
healthy (no warning or error) or ``--max-rounds`` is reached.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from netdoctor.cli import options
from netdoctor.cli.console import print_note, print_report
from netdoctor.cli.errors import user_errors
from netdoctor.cli.exit_codes import ExitCode
from netdoctor.cli.run import (
    EXIT_INTERRUPTED,
    MaxStepsOption,
    MaxTimeOption,
    SeedOption,
    SetOption,
    check_budget,
    check_device,
    overrides_for,
    run_headless,
)
from netdoctor.cli.settings import rule_config
from netdoctor.errors import ConfigError, NetdoctorError

if TYPE_CHECKING:  # pragma: no cover
    from netdoctor.diagnosis import Diagnosis
    from netdoctor.recipes import Patch, Recipe
    from netdoctor.recipes.trainer import TrainResult

#: Severities a healthy run has none of.
UNHEALTHY = ("error", "warning")


def problems(diagnoses: Sequence[Diagnosis]) -> list[Diagnosis]:
    return [d for d in diagnoses if d.severity.value in UNHEALTHY]


def choose_patch(recipe: Recipe, diagnoses: Sequence[Diagnosis]) -> Patch | None:
    """The top fix of the top diagnosis (errors and warnings, in the rules' order) that has a
    recipe patch changing something in this recipe."""
    from netdoctor.recipes import patch_for

    for diagnosis in problems(diagnoses):
        for fix in diagnosis.fixes:
            try:
                patch = patch_for(recipe, fix.id)
            except ConfigError:  # a fix id with no recipe patch
                continue
            if patch is not None:
                return patch
    return None


def _diagnoses_text(diagnoses: Sequence[Diagnosis]) -> Text:
    if not diagnoses:
        return Text("none", style="green")
    text = Text()
    for i, d in enumerate(diagnoses):
        if i:
            text.append("\n")
        style = {"error": "red", "warning": "yellow"}.get(d.severity.value, "dim")
        text.append(f"{d.rule} ({d.severity.value})", style=style)
    return text


def _metric(result: TrainResult, key: str) -> str:
    value = result.metrics.get(key)
    if value is None:
        return "—"
    if not math.isfinite(value):
        return str(value)
    return f"{value:.3f}" if key.endswith("_acc") else f"{value:.4g}"


def comparison_table(round_no: int, patch: Patch, before: TrainResult,
                     after: TrainResult) -> Table:
    """Before/after one patch: diagnoses, final metrics, how each run ended."""
    table = Table(title=f"round {round_no}: fix {patch.fix_id}  ({patch.describe()})",
                  title_justify="left", title_style="bold")
    table.add_column("")
    table.add_column("before")
    table.add_column("after")
    table.add_row("diagnoses", _diagnoses_text(before.diagnoses),
                  _diagnoses_text(after.diagnoses))
    for key, label in (("train_loss", "train loss"), ("val_loss", "val loss"),
                       ("train_acc", "train accuracy"), ("val_acc", "val accuracy"),
                       ("test_acc", "test accuracy"), ("test_loss", "test loss")):
        if key in before.metrics or key in after.metrics:
            table.add_row(label, _metric(before, key), _metric(after, key))
    table.add_row("ended", before.stopped, after.stopped)
    return table


@user_errors
def fix_command(
    recipe: Annotated[
        str, typer.Argument(metavar="RECIPE", help="A built-in recipe name or a TOML recipe "
                            "file.", show_default=False),
    ],
    max_rounds: Annotated[
        int, typer.Option("--max-rounds", min=1, metavar="N", help="Fixes to try at most, "
                          "one per round."),
    ] = 3,
    write: Annotated[
        Path | None,
        typer.Option("--write", metavar="PATH", help="Write the patched recipe (TOML) here.",
                     show_default=False),
    ] = None,
    set_: SetOption = None,
    seed: SeedOption = None,
    max_steps: MaxStepsOption = None,
    max_time: MaxTimeOption = None,
    select: options.Select = None,
    ignore: options.Ignore = None,
    config: options.Config = None,
) -> None:
    """Run a recipe, apply the top suggested fix, re-run, and compare: proven fixes.

    Each round takes the first fix of the first warning or error that has a recipe patch,
    trains again with the same seed, and prints a before/after table. It stops when the run is
    healthy or after --max-rounds. Exit codes: 0 healthy at the end, 1 still unhealthy, 2 bad
    usage or recipe, 130 interrupted.
    """
    check_budget(max_time)
    from netdoctor.recipes import load_recipe

    current = load_recipe(recipe, overrides_for(set_, seed=seed))
    if current.is_python:
        raise ConfigError(f"{current.source}: `netdoctor fix` patches TOML recipes; a Python "
                          "recipe's model is code (run it with `netdoctor run` and apply the "
                          "suggested fix in the file)")
    settings = rule_config(select, ignore, config)
    check_device(current)
    stamp = time.strftime("%Y%m%d-%H%M%S")

    def train(candidate: Recipe, round_no: int) -> TrainResult:
        log = Path("runs") / f"{current.name}-{stamp}-fix{round_no}.sqlite"
        print_note(f"netdoctor: round {round_no}: training {candidate.name!r}; run log: {log}")
        result = run_headless(candidate, log, settings, max_steps=max_steps, max_time=max_time)
        if result.stopped == "interrupted":
            print_note(f"netdoctor: interrupted; run log: {log}")
            raise typer.Exit(EXIT_INTERRUPTED)
        return result

    result = train(current, 0)
    applied: list[Patch] = []
    for round_no in range(1, max_rounds + 1):
        if not problems(result.diagnoses):
            break
        patch = choose_patch(current, result.diagnoses)
        if patch is None:
            print_note("netdoctor: no recipe patch for the remaining diagnoses: "
                       + ", ".join(d.rule for d in problems(result.diagnoses)))
            break
        after = train(patch.recipe, round_no)
        print_report(comparison_table(round_no, patch, result, after))
        print_report(Text())
        applied.append(patch)
        current, result = patch.recipe, after

    healthy = not problems(result.diagnoses)
    fixes = ", ".join(p.fix_id for p in applied) or "none"
    if healthy:
        verdict = Text(f"healthy after {len(applied)} fix{'es' if len(applied) != 1 else ''}: "
                       f"{fixes}", style="green")
    else:
        remaining = ", ".join(d.rule for d in problems(result.diagnoses))
        verdict = Text(f"still unhealthy after {len(applied)} fix"
                       f"{'es' if len(applied) != 1 else ''} ({fixes}): {remaining}",
                       style="red")
    print_report(verdict, one_line=True)
    if write is not None:  # it "expects" what it now produces
        expect = tuple(dict.fromkeys(d.rule for d in problems(result.diagnoses)))
        described = current.description
        if applied:
            described = (f"{described} (fixed: {fixes})" if described else f"fixed: {fixes}")
        _write_recipe(write, current.with_values({"recipe.expect": expect,
                                                  "recipe.description": described}),
                      recipe, applied)
    if not healthy:
        raise typer.Exit(ExitCode.FINDINGS)


def _write_recipe(path: Path, recipe: Recipe, original: str, applied: Sequence[Patch]) -> None:
    header = [f"Written by `netdoctor fix {original}`."]
    header += [f"fix {p.fix_id}: {p.describe()}" for p in applied] or ["no fix was applied"]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(recipe.to_toml("\n".join(header)), encoding="utf-8")
    except OSError as exc:
        raise NetdoctorError(f"{path}: cannot write the recipe ({exc.strerror})") from None
    print_note(f"netdoctor: patched recipe written to {path}")
