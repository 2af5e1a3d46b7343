"""Shared fixtures: small run logs written with the real writer, and a stand-in rule engine.

torch is never imported here: most tests are torch-free and must stay fast. Tests that do train
get one thread (``OMP_NUM_THREADS`` for torch imported later, ``set_num_threads`` once it is).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from netdoctor.diagnosis import Diagnosis, Fix, Severity
from netdoctor.errors import ConfigError
from netdoctor.runlog.run_data import ParamInfo, SiteInfo
from netdoctor.runlog.schema import ActStat, ParamStat, RunStatus, StepField, StepFlag
from netdoctor.runlog.writer import RunLogWriter

os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(autouse=True)
def _one_torch_thread() -> None:
    """Once some test has loaded torch, keep it to one thread (the CI machine has two cores).
    Looking in sys.modules costs nothing; importing torch here would slow every test run."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() != 1:
        torch.set_num_threads(1)


# ---- the command in a child process, as a user runs it -----------------------------------------
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def child_env() -> dict[str, str]:
    """The environment for a child process: the repository importable even without an install,
    and no colour settings inherited from the shell that runs the tests."""
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


@pytest.fixture
def run_netdoctor(child_env: dict[str, str]) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``run_netdoctor(*args, cwd=PATH)``: ``python -m netdoctor ARGS`` in a child process."""

    def run(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "netdoctor", *args],
            capture_output=True, text=True, cwd=cwd, env={**child_env, **env}, timeout=120,
        )

    return run


# ---- run logs ----------------------------------------------------------------------------------
#: Sequential(Linear(4, 8), ReLU(), Linear(8, 2)) as the capture side describes it.
SITES = (
    SiteInfo(0, "0", "0", "Linear", "output", "linear", 0, (16, 8)),
    SiteInfo(1, "1", "1", "ReLU", "output", "relu", 1, (16, 8)),
    SiteInfo(2, "2", "2", "Linear", "output", "linear", 2, (16, 2)),
)
PARAMS = (
    ParamInfo(0, "0.weight", "0", (8, 4), 32, True, True),
    ParamInfo(1, "0.bias", "0", (8,), 8, True, True),
    ParamInfo(2, "2.weight", "2", (2, 8), 16, True, True),
    ParamInfo(3, "2.bias", "2", (2,), 2, True, True),
)


def default_meta() -> dict[str, Any]:
    return {
        "netdoctor_version": "0.1.0",
        "torch_version": "2.13.0",
        "python_version": "3.11.7",
        "created_at": 1_700_000_000.0,
        "device": "cpu",
        "model_class": "Sequential",
        "optimizer": {"class": "SGD", "groups": [{"lr": 0.1, "momentum": 0.9}]},
        "n_parameters": 58,
        "task": {"num_classes": 2, "chance_loss": 0.693},
        "pid": os.getpid(),
        "host": "test-host",  # not this machine: a "running" log reads as "did not finish"
    }


def write_log(
    path: Path,
    *,
    steps: int = 40,
    sample_every: int = 10,
    losses: np.ndarray | None = None,
    epochs: int = 4,
    status: RunStatus = RunStatus.FINISHED,
    end_message: str | None = None,
    meta: dict[str, Any] | None = None,
) -> Path:
    """Write a small, plausible run log of a 3-layer MLP with the real writer.

    ``losses`` replaces the default smooth decay (NaN entries are fine). A ``running`` status is
    what a killed process leaves: no end time (and a writer that is gone, unless ``meta`` names
    this host and process).
    """
    writer = RunLogWriter(path, {**default_meta(), **(meta or {})})
    writer.put_structure(SITES, PARAMS)
    step_no = np.arange(steps, dtype=np.float64)
    loss = losses if losses is not None else 0.7 * np.exp(-step_no / 20) + 0.05
    rows = np.zeros((steps, len(StepField)))
    rows[:, StepField.STEP] = step_no
    rows[:, StepField.LOSS] = loss
    rows[:, StepField.GRAD_NORM] = 1.0 / (1 + step_no)
    rows[:, StepField.LR] = 0.1
    rows[:, StepField.TIME] = 0.05 * (step_no + 1)
    rows[:, StepField.MICRO_BATCHES] = 1
    sampled = step_no % sample_every == 0
    flags = np.where(sampled, StepFlag.SAMPLED, 0) | np.where(
        np.isfinite(loss), 0, StepFlag.LOSS_NONFINITE
    )
    rows[:, StepField.FLAGS] = flags
    writer.put_steps(rows, np.full((steps, 1), 0.1))
    for step in np.flatnonzero(sampled):
        act = np.zeros((len(SITES), len(ActStat)), dtype=np.float32)
        act[:, ActStat.CALLS] = 1
        act[:, ActStat.NUMEL] = 128
        act[:, ActStat.MEAN] = [0.1, 0.4, -0.2]
        act[:, ActStat.STD] = [1.0, 0.6, 0.9]
        act[:, ActStat.ZERO_FRAC] = [0.0, 0.5, 0.0]
        act[:, ActStat.SAT_FRAC] = np.nan
        act[:, ActStat.DEAD_FRAC] = [np.nan, 0.1, np.nan]
        param = np.zeros((len(PARAMS), len(ParamStat)), dtype=np.float32)
        param[:, ParamStat.HAS_GRAD] = 1
        param[:, ParamStat.GRAD_NORM] = [0.3, 0.4, 0.5, 0.1]
        param[:, ParamStat.GRAD_NORM] /= 1 + step
        param[:, ParamStat.WEIGHT_NORM] = [2.0, 0.5, 1.5, 0.2]
        param[:, ParamStat.UPDATE_NORM] = 1e-3
        writer.put_sample(int(step), act, param)
    per_epoch = max(steps // max(epochs, 1), 1)
    for epoch in range(epochs):
        last = min((epoch + 1) * per_epoch, steps) - 1
        writer.put_epoch(epoch, last, {"train_loss": float(loss[last]),
                                       "val_loss": float(loss[last]) + 0.02 * (epoch - 1) ** 2})
    writer.commit()
    if status is RunStatus.RUNNING:
        writer.close(RunStatus.FINISHED)
        set_meta(path, status=status.value, ended_at=None, end_message=None)
    else:
        writer.close(status, end_message)
    return path


def set_meta(path: Path, **items: Any) -> None:
    """Overwrite meta keys of a closed log (None deletes the key)."""
    with sqlite3.connect(path) as conn:
        for key, value in items.items():
            if value is None:
                conn.execute("DELETE FROM meta WHERE key = ?", (key,))
            else:
                conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))
    conn.close()


@pytest.fixture
def edit_meta() -> Callable[..., None]:
    """``edit_meta(path, key=value, ...)``: rewrite meta keys of a closed log (None deletes)."""
    return set_meta


@pytest.fixture
def make_log(tmp_path: Path) -> Callable[..., Path]:
    """``make_log(path="run.sqlite", **write_log options)``: a new log, relative to tmp_path."""

    def make(path: str | Path = "run.sqlite", **options: Any) -> Path:
        return write_log(tmp_path / path, **options)

    return make


@pytest.fixture
def small_log(make_log: Callable[..., Path]) -> Path:
    return make_log()


# ---- a stand-in for netdoctor.rules --------------------------------------------------------------
@dataclass(frozen=True)
class FakeThreshold:
    name: str
    default: float
    description: str
    source: str


@dataclass(frozen=True)
class FakeRuleDoc:
    what: str
    why: str
    how_to_fix: str
    example: str


@dataclass(frozen=True)
class FakeRule:
    id: str
    severity: Severity
    title: str
    thresholds: tuple[FakeThreshold, ...]
    fixes: tuple[str, ...]
    doc: FakeRuleDoc


@dataclass(frozen=True)
class FakeConfig:
    pyproject: Path | None
    config: Path | None
    select: list[str] | None
    ignore: list[str] | None


FAKE_FIXES = {
    "grad_clipping": "Clip the gradient norm, e.g. clip_grad_norm_(model.parameters(), 1.0).",
    "lower_lr": "Lower the learning rate by 10x.",
    "he_init": "Initialise ReLU layers with He (kaiming) init.",
}
FAKE_RULES = (
    FakeRule(
        "exploding_gradients", Severity.ERROR, "Gradients grow without bound",
        (FakeThreshold("growth", 10.0, "grad norm growth factor over the window", "netdoctor"),
         FakeThreshold("window", 20.0, "steps compared", "cs231n notes")),
        ("grad_clipping", "lower_lr"),
        FakeRuleDoc("Gradient norms that grow step after step.", "Updates overshoot [badly].",
                    "Clip gradients or lower the learning rate.", "grad norm 1 -> 1e6 in 30 steps"),
    ),
    FakeRule(
        "dead_relu", Severity.WARNING, "ReLU units that never fire", (), ("he_init",),
        FakeRuleDoc("Units <= 0 for every sample.", "They stop learning.", "He init.", ""),
    ),
)


def fake_diagnoses() -> list[Diagnosis]:
    return [
        Diagnosis(
            "exploding_gradients", Severity.ERROR, 12, "0",
            "grad norm of 0 grew from 0.3 to 4.1e+06 in 12 steps [x1e7]: clip gradients",
            {"grad_norm": 4.1e6, "growth": np.float32(1.37e7), "steps": np.int64(12),
             "series": [0.3, 1.0, 30.0, 900.0, 2.7e4, 8e5, 4.1e6, float("nan")],
             "ratio": float("inf")},
            (Fix("grad_clipping", FAKE_FIXES["grad_clipping"]),
             Fix("lower_lr", FAKE_FIXES["lower_lr"])),
        ),
        Diagnosis("dead_relu", Severity.WARNING, 5, "1", "half of the units of 1 are dead",
                  {"dead_frac": 0.5}, (Fix("he_init", FAKE_FIXES["he_init"]),)),
    ]


@dataclass
class FakeRulesModule:
    """What the tests check about how the CLI called the engine."""

    module: types.ModuleType
    configs: list[FakeConfig] = field(default_factory=list)

    @staticmethod
    def diagnoses() -> list[Diagnosis]:
        """What the stand-in finds on any run: an error and a warning, in that order."""
        return fake_diagnoses()


@pytest.fixture
def fake_rules(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeRulesModule]:
    """Replace ``netdoctor.rules`` (and ``.fixes``) with a fixed, tiny engine."""
    module = types.ModuleType("netdoctor.rules")
    fixes = types.ModuleType("netdoctor.rules.fixes")
    fixes.FIXES = dict(FAKE_FIXES)  # type: ignore[attr-defined]
    state = FakeRulesModule(module)
    ids = {r.id for r in FAKE_RULES}

    def load_config(pyproject=None, config=None, select=None, ignore=None):
        def split(values):
            if values is None:
                return None
            found = [part.strip() for v in values for part in v.split(",") if part.strip()]
            for rule_id in found:
                if rule_id not in ids:
                    raise ConfigError(f"unknown rule id {rule_id!r}")
            return found

        if config is not None and not Path(config).is_file():
            raise ConfigError(f"{config}: no such config file")
        result = FakeConfig(pyproject, config, split(select), split(ignore))
        state.configs.append(result)
        return result

    def run_rules(run, config=None):
        found = fake_diagnoses()
        if config is not None and config.select is not None:
            found = [d for d in found if d.rule in config.select]
        if config is not None and config.ignore:
            found = [d for d in found if d.rule not in config.ignore]
        return found

    def get_rule(rule_id: str) -> FakeRule:
        for rule in FAKE_RULES:
            if rule.id == rule_id:
                return rule
        raise ConfigError(f"unknown rule id {rule_id!r}")

    module.load_config = load_config  # type: ignore[attr-defined]
    module.run_rules = run_rules  # type: ignore[attr-defined]
    module.get_rule = get_rule  # type: ignore[attr-defined]
    module.all_rules = lambda: FAKE_RULES  # type: ignore[attr-defined]
    module.checkup_rules = lambda: ()  # type: ignore[attr-defined]
    module.fixes = fixes  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "netdoctor.rules", module)
    monkeypatch.setitem(sys.modules, "netdoctor.rules.fixes", fixes)
    yield state


@pytest.fixture
def log_parts() -> tuple[tuple[SiteInfo, ...], tuple[ParamInfo, ...], dict[str, Any]]:
    """(sites, params, meta) of the small MLP, for tests that drive a RunLogWriter themselves."""
    return SITES, PARAMS, default_meta()
