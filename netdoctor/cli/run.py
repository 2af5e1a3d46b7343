"""``netdoctor run RECIPE``: train a recipe while the doctor watches, then report.

Headless (``--headless``, or stdout not a terminal): progress on stderr, the report on stdout,
the log path last. Otherwise the interactive view (``netdoctor.tui``, chosen in
``choose_run_view``) trains in a worker thread through ``RecipeSource``: one recipe run with the
trainer's ``Controls``, which it can start, pause, stop and re-run with a fix.

torch is imported only when training starts, so ``netdoctor --help`` stays fast.
"""

from __future__ import annotations

import contextlib
import enum
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from netdoctor.cli import options
from netdoctor.cli.console import print_note, stderr_console
from netdoctor.cli.errors import fail, user_errors
from netdoctor.cli.inspect import interactive_terminal
from netdoctor.cli.settings import rule_config

if TYPE_CHECKING:  # pragma: no cover
    from netdoctor.recipes import Recipe
    from netdoctor.recipes.trainer import Controls, Progress, TrainResult
    from netdoctor.rules import RuleConfig

#: Exit status of a run ended by Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130


class RunView(str, enum.Enum):
    HEADLESS = "headless"
    TUI = "tui"


def choose_run_view(headless: bool, stdout_is_terminal: bool) -> RunView:
    """design.md: the TUI when stdout is a terminal and ``--headless`` is not given."""
    if headless or not stdout_is_terminal:
        return RunView.HEADLESS
    return RunView.TUI


# ---- options shared by run, fix and check --------------------------------------------------------
SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", metavar="KEY=VALUE", help="Override a recipe key, e.g. --set "
                 "optimizer.lr=0.01 (repeatable; typed by the recipe schema).",
                 show_default=False),
]
SeedOption = Annotated[
    int | None,
    typer.Option("--seed", min=0, help="Seed for the data, the weights and the shuffling "
                 "(train.seed).", show_default=False),
]
MaxStepsOption = Annotated[
    int | None,
    typer.Option("--max-steps", min=1, metavar="N", help="Stop after N optimizer steps.",
                 show_default=False),
]
MaxTimeOption = Annotated[
    float | None,
    typer.Option("--max-time", metavar="SECONDS", help="Stop after this much training time.",
                 show_default=False),
]


def overrides_for(
    sets: Sequence[str] | None, *, epochs: int | None = None, seed: int | None = None,
    device: str | None = None,
) -> list[str]:
    """The ``--set`` texts, with the shortcut flags as the keys they stand for (flags last, so
    ``--epochs 3`` wins over ``--set train.epochs=5``)."""
    found = list(sets or [])
    if epochs is not None:
        found.append(f"train.epochs={epochs}")
    if seed is not None:
        found.append(f"train.seed={seed}")
    if device is not None:
        found.append(f"train.device={device}")
    return found


def default_log(recipe_name: str, suffix: str = "") -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{recipe_name}-{stamp}{suffix}.sqlite"


def check_budget(max_time: float | None) -> None:
    if max_time is not None and not (math.isfinite(max_time) and max_time > 0):
        fail(f"--max-time must be a positive number of seconds, got {max_time}")


def trainer_module() -> Any:
    """``netdoctor.recipes.trainer``, or a one-line error when torch is not installed."""
    try:
        from netdoctor.recipes import trainer
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] == "torch":
            fail("training a recipe needs PyTorch: pip install torch")
        raise
    return trainer


def check_device(recipe: Recipe) -> None:
    """A device this machine lacks is a one-line error before anything is printed or trained."""
    trainer_module().resolve_device(recipe.train.device, f"{recipe.source}: train.device")


# ---- progress on stderr --------------------------------------------------------------------------
def _fmt(value: float | None, digits: int = 4) -> str:
    if value is None:
        return "—"
    return f"{value:.{digits}g}" if math.isfinite(value) else str(value)


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}:{secs:02d}"


def progress_line(p: Progress) -> str:
    """One line: epoch, step, losses, accuracy, speed, time left."""
    total = f"/{p.total_steps}" if p.total_steps else ""
    parts = [f"epoch {p.epoch}/{p.epochs}", f"step {p.step}{total}", f"loss {_fmt(p.loss)}",
             f"val {_fmt(p.val_loss)}"]
    if p.val_acc is not None:
        parts.append(f"val acc {p.val_acc:.3f}")
    elif p.train_acc is not None:
        parts.append(f"acc {p.train_acc:.3f}")
    parts += [f"{p.samples_per_s:,.0f} samples/s", f"ETA {_eta(p.eta_s)}"]
    return "  ".join(parts)


class HeadlessProgress:
    """Progress on stderr: a live rich bar on a terminal, one line per epoch otherwise (a CI log
    must not fill with redraws)."""

    def __init__(self, description: str) -> None:
        self._console = stderr_console()
        self._live = self._console.is_terminal
        self._description = description
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> HeadlessProgress:
        if self._live:
            from rich.progress import BarColumn, Progress, TextColumn

            self._bar = Progress(TextColumn("{task.description}"), BarColumn(),
                                 TextColumn("{task.fields[line]}"), console=self._console,
                                 transient=False)
            self._task = self._bar.add_task(self._description, total=None, line="")
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def __call__(self, p: Progress) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=p.step, total=p.total_steps or None,
                             line=progress_line(p))
        elif p.epoch_end:  # not a terminal: one line per epoch, no redraws
            self._console.print(progress_line(p), markup=False, highlight=False, soft_wrap=True)


# ---- running a recipe ----------------------------------------------------------------------------
@contextlib.contextmanager
def recipe_threads(recipe: Recipe) -> Iterator[None]:
    """One CPU thread for a TOML recipe, unless OMP_NUM_THREADS says otherwise.

    Their models are small: splitting a 64-wide matmul across threads gains nothing and, on a
    busy machine, threads that wait for each other made a run 20x slower in our measurements.
    A Python recipe's model may be large, so it keeps torch's default.
    """
    if recipe.is_python or os.environ.get("OMP_NUM_THREADS"):
        yield
        return
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def run_headless(recipe: Recipe, log: Path, settings: RuleConfig, *,
                 max_steps: int | None = None, max_time: float | None = None,
                 quiet: bool = False) -> TrainResult:
    """Train with progress on stderr (none when ``quiet``); the result (Ctrl-C included)."""
    trainer = trainer_module()
    with recipe_threads(recipe), HeadlessProgress(f"{recipe.name}") as progress:
        return trainer.train(recipe, log, on_progress=None if quiet else progress,
                             max_steps=max_steps, max_time=max_time, rules=settings)


def report_result(result: TrainResult) -> None:
    """The inspect report on stdout, then (stderr) how it ended and where the log is."""
    from netdoctor.cli.inspect import View, show_report
    from netdoctor.runlog import open_run

    for note in result.notes:
        print_note(f"netdoctor: note: {note}")
    show_report(open_run(result.log), result.diagnoses, View.TEXT)
    if result.message:
        print_note(f"netdoctor: {result.message}")
    if result.checkpoint is not None:
        print_note(f"netdoctor: best weights (state_dict): {result.checkpoint}")
    print_note(f"netdoctor: run log: {result.log}  (netdoctor inspect {result.log})")


@user_errors
def run_command(
    recipe: Annotated[
        str, typer.Argument(metavar="RECIPE", help="A built-in recipe name (see `netdoctor "
                            "recipes`) or a recipe file (.toml or .py).", show_default=False),
    ],
    headless: Annotated[
        bool, typer.Option("--headless", help="No interactive view: progress on stderr, the "
                           "report on stdout."),
    ] = False,
    device: Annotated[
        str | None,
        typer.Option("--device", metavar="DEVICE", help="auto, cpu, cuda, cuda:N or mps "
                     "(train.device).", show_default=False),
    ] = None,
    devices: Annotated[
        int, typer.Option("--devices", min=1, metavar="N", help="Devices to train on."),
    ] = 1,
    epochs: Annotated[
        int | None, typer.Option("--epochs", min=1, metavar="N", help="Epochs (train.epochs).",
                                 show_default=False),
    ] = None,
    set_: SetOption = None,
    log: Annotated[
        Path | None,
        typer.Option("--log", metavar="PATH", help="Where to write the run log.  [default: "
                     "runs/RECIPE-TIME.sqlite]", show_default=False),
    ] = None,
    seed: SeedOption = None,
    fix: Annotated[
        list[str] | None,
        typer.Option("--fix", metavar="ID", help="Apply the recipe patch of this fix id first "
                     "(repeatable); see `netdoctor rules` for the ids.", show_default=False),
    ] = None,
    max_steps: MaxStepsOption = None,
    max_time: MaxTimeOption = None,
    select: options.Select = None,
    ignore: options.Ignore = None,
    config: options.Config = None,
) -> None:
    """Train a recipe while netdoctor watches, then print the diagnoses.

    Progress goes to stderr, the report (the same as `netdoctor inspect`) to stdout, and the run
    log is kept. Ctrl-C stops cleanly: the log is closed and what was seen is reported (exit
    130). Exit codes: 0 trained (whatever was found), 2 bad usage or recipe.
    """
    if devices > 1:
        fail(f"--devices {devices}: training on several devices is not supported yet (issue 7); "
             "use one device (--device cuda:N picks which)")
    check_budget(max_time)
    from netdoctor.recipes import apply_fix, load_recipe

    loaded = load_recipe(recipe, overrides_for(set_, epochs=epochs, seed=seed, device=device))
    for fix_id in fix or []:
        loaded = apply_fix(loaded, fix_id)
    settings = rule_config(select, ignore, config)
    log = log if log is not None else default_log(loaded.name)
    view = choose_run_view(headless, interactive_terminal())
    check_device(loaded)
    if view is RunView.TUI:
        run_in_tui(loaded, log, settings, max_steps=max_steps, max_time=max_time)
        return
    print_note(f"netdoctor: training recipe {loaded.name!r} ({loaded.source}); run log: {log}")
    try:
        result = run_headless(loaded, log, settings, max_steps=max_steps, max_time=max_time)
    except KeyboardInterrupt:  # while the data or the model were being built: no log yet
        print_note("netdoctor: interrupted before training started; no run log was written")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    report_result(result)
    if result.stopped == "interrupted":
        raise typer.Exit(EXIT_INTERRUPTED)


def run_in_tui(recipe: Recipe, log: Path, settings: RuleConfig, *,
               max_steps: int | None = None, max_time: float | None = None) -> None:
    """Train in the interactive view (``netdoctor.tui``); when it closes, say where each run's
    log is (a fix applied in the app adds a run). A run that crashed ends as one line, exit 2,
    as it does headless."""
    from netdoctor.tui import train_in_tui

    with recipe_threads(recipe):
        records = train_in_tui(RecipeSource(recipe, log, settings, max_steps, max_time), settings)
    for record in records:
        print_note(f"netdoctor: {record.label}: {record.stopped}; run log: {record.log}  "
                   f"(netdoctor inspect {record.log})")
    if records and records[-1].error is not None:
        fail(records[-1].error)


# ---- for check and the TUI -----------------------------------------------------------------------
def train_for_check(target: str, overrides: Sequence[str], max_steps: int | None,
                    max_time: float | None) -> Path:
    """``netdoctor check RECIPE``: train headless and quietly (stdout holds only the report)
    under the budgets; the run log it wrote."""
    from netdoctor.recipes import load_recipe

    recipe = load_recipe(target, overrides)
    check_device(recipe)
    log = default_log(recipe.name, "-check")
    budget = ", ".join(b for b in (f"max {max_steps} steps" if max_steps else "",
                                   f"max {max_time:g} s" if max_time else "") if b)
    print_note(f"netdoctor: training recipe {recipe.name!r} for the check"
               f"{f' ({budget})' if budget else ''}; run log: {log}")
    trainer = trainer_module()
    with recipe_threads(recipe):
        result = trainer.train(recipe, log, max_steps=max_steps, max_time=max_time)
    if result.stopped == "interrupted":
        raise typer.Exit(EXIT_INTERRUPTED)
    return log


class RecipeSource:
    """One recipe run for the TUI (``netdoctor.tui.live.LiveSource``): ``start`` trains on the
    caller's thread; ``pause``/``resume``/``stop`` come from the UI thread."""

    def __init__(self, recipe: Recipe, log: Path, settings: RuleConfig | None = None,
                 max_steps: int | None = None, max_time: float | None = None) -> None:
        self._recipe = recipe
        self._log = log
        self._settings = settings
        self._max_steps = max_steps
        self._max_time = max_time
        self._controls: Controls = trainer_module().Controls()

    @property
    def name(self) -> str:
        return self._recipe.name

    @property
    def log(self) -> Path:
        return self._log

    @property
    def recipe(self) -> Recipe:
        return self._recipe

    def start(self, on_progress: Callable[[Any], None]) -> TrainResult:
        result: TrainResult = trainer_module().train(
            self._recipe, self._log, on_progress=on_progress, controls=self._controls,
            max_steps=self._max_steps, max_time=self._max_time, rules=self._settings)
        return result

    def pause(self) -> None:
        self._controls.pause()

    def resume(self) -> None:
        self._controls.resume()

    def stop(self) -> None:
        self._controls.stop()

    def with_fix(self, fix_id: str) -> RecipeSource:
        from netdoctor.recipes import apply_fix

        fixed = apply_fix(self._recipe, fix_id)
        log = self._log.with_name(f"{self._log.stem}-{fix_id}{self._log.suffix}")
        return RecipeSource(fixed, log, self._settings, self._max_steps, self._max_time)
