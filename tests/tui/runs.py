"""Synthetic run logs for the TUI tests, written with the real writer, deterministic to the bit.

The TUI's tests must not move when the rules or the recorded sample runs change, so they draw
from logs made here: a small MLP whose gradients vanish towards the input, one whose gradients
explode into NaN, and a healthy one. ``RunWriter`` writes step by step, for tests that watch a
log grow (``--follow``, a fake live run).
"""

from __future__ import annotations

import json
import math
import os
import socket
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np

from netdoctor.diagnosis import Diagnosis, Fix, Severity
from netdoctor.runlog.run_data import ParamInfo, RunData, SiteInfo
from netdoctor.runlog.schema import ActStat, ParamStat, RunStatus, StepField, StepFlag
from netdoctor.runlog.writer import RunLogWriter

PATTERNS = ("vanishing", "exploding", "healthy")
SAMPLE_EVERY = 4
STEPS_PER_EPOCH = 20


def structure(depth: int) -> tuple[tuple[SiteInfo, ...], tuple[ParamInfo, ...]]:
    """fc0, act0, fc1, act1, ..., head: Linear layers with tanh between them."""
    sites, params = [], []
    order = 0
    for i in range(depth):
        sites.append(SiteInfo(len(sites), f"fc{i}", f"fc{i}", "Linear", "output", "linear",
                              order, (32, 16)))
        sites.append(SiteInfo(len(sites), f"act{i}", f"act{i}", "Tanh", "output", "tanh",
                              order + 1, (32, 16)))
        order += 2
        for kind, shape in (("weight", (16, 16)), ("bias", (16,))):
            params.append(ParamInfo(len(params), f"fc{i}.{kind}", f"fc{i}", shape,
                                    int(np.prod(shape)), True, True))
    sites.append(SiteInfo(len(sites), "head", "head", "Linear", "output", "linear", order,
                          (32, 3)))
    for kind, shape in (("weight", (3, 16)), ("bias", (3,))):
        params.append(ParamInfo(len(params), f"head.{kind}", "head", shape,
                                int(np.prod(shape)), True, True))
    return tuple(sites), tuple(params)


def meta(name: str, pattern: str, live: bool) -> dict[str, Any]:
    """Fixed facts; ``live`` names this process as the writer (so the log reads as running)."""
    return {
        "netdoctor_version": "0.1.0",
        "torch_version": "2.13.0",
        "python_version": "3.11.7",
        "created_at": 1_700_000_000.0,
        "device": "cpu",
        "model_class": "MLP",
        "optimizer": {"class": "SGD", "groups": [{"lr": 0.1, "momentum": 0.0}]},
        "n_parameters": 1000,
        "task": {"num_classes": 3, "chance_loss": math.log(3)},
        "recipe": {"name": name},
        "pattern": pattern,  # for fixed_rules
        "batch_size": 32,
        "pid": os.getpid(),
        "host": socket.gethostname() if live else "elsewhere",
    }


class RunWriter:
    """Writes one synthetic run, a stretch of steps at a time."""

    def __init__(self, path: Path, pattern: str, depth: int = 4, live: bool = False,
                 name: str | None = None) -> None:
        assert pattern in PATTERNS
        self.pattern, self.depth = pattern, depth
        self.sites, self.params = structure(depth)
        self.writer = RunLogWriter(path, meta(name or pattern, pattern, live))
        self.writer.put_structure(self.sites, self.params)
        self.writer.commit()
        self.next_step = 0
        self.rng = np.random.default_rng(0)

    # ---- the run's numbers -------------------------------------------------------------------
    def loss(self, step: int) -> float:
        wobble = 0.01 * math.sin(step * 1.7)
        if self.pattern == "vanishing":
            return math.log(3) + wobble
        if self.pattern == "exploding":
            return math.inf if step >= 60 else 1.1 * 1.15**step + wobble
        return 0.9 * math.exp(-step / 40) + 0.15 + wobble

    def grad(self, step: int, layer: int) -> float:
        """Gradient norm of layer ``layer`` (0 = first; ``depth`` = head)."""
        depth = self.depth
        if self.pattern == "vanishing":
            return 10.0 ** (-2.0 * (depth - layer)) * (1 + 0.2 * math.sin(step + layer))
        if self.pattern == "exploding":
            return math.nan if step >= 60 else 0.5 * 1.3**step * (1 + 0.1 * layer)
        return 0.3 * (1 + 0.3 * math.sin(step / 5 + layer)) / (1 + step / 100)

    # ---- writing -----------------------------------------------------------------------------
    def write(self, steps: int) -> None:
        first = self.next_step
        numbers = np.arange(first, first + steps, dtype=np.float64)
        rows = np.zeros((steps, len(StepField)))
        rows[:, StepField.STEP] = numbers
        losses = np.array([self.loss(int(s)) for s in numbers])
        rows[:, StepField.LOSS] = losses
        rows[:, StepField.GRAD_NORM] = [self.grad(int(s), self.depth) for s in numbers]
        rows[:, StepField.LR] = 0.1
        rows[:, StepField.TIME] = 0.02 * (numbers + 1)
        rows[:, StepField.MICRO_BATCHES] = 1
        sampled = numbers % SAMPLE_EVERY == 0
        flags = np.where(sampled, StepFlag.SAMPLED, 0)
        flags = flags | np.where(np.isfinite(losses), 0, StepFlag.LOSS_NONFINITE)
        rows[:, StepField.FLAGS] = flags
        self.writer.put_steps(rows, np.full((steps, 1), 0.1))
        for step in numbers[sampled].astype(int):
            self.writer.put_sample(int(step), *self._sample(int(step)))
        for step in numbers.astype(int):
            if (step + 1) % STEPS_PER_EPOCH == 0:
                loss = self.loss(step)
                self.writer.put_epoch(step // STEPS_PER_EPOCH, step, {
                    "train_loss": loss, "val_loss": loss + 0.05,
                    "train_acc": 0.34 if self.pattern != "healthy" else 0.9,
                    "val_acc": 0.33 if self.pattern != "healthy" else 0.88,
                })
        self.writer.wait()  # committed when this returns: a reader sees every step written
        self.next_step += steps

    def _sample(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        act = np.zeros((len(self.sites), len(ActStat)), dtype=np.float32)
        act[:, ActStat.CALLS] = 1
        act[:, ActStat.NUMEL] = 512
        bad = self.pattern == "exploding" and step >= 60
        for site in self.sites:
            linear = site.module_type == "Linear"
            spread = 0.5 + 0.1 * math.sin(step / 7 + site.idx)
            act[site.idx, ActStat.MEAN] = math.nan if bad else 0.02 * site.idx - 0.05
            act[site.idx, ActStat.STD] = math.nan if bad else spread * (1.5 if linear else 0.7)
            act[site.idx, ActStat.ZERO_FRAC] = 0.0
            act[site.idx, ActStat.SAT_FRAC] = math.nan if linear else (
                0.6 if self.pattern == "vanishing" else 0.05)
            act[site.idx, ActStat.DEAD_FRAC] = math.nan
        param = np.zeros((len(self.params), len(ParamStat)), dtype=np.float32)
        for p in self.params:
            layer = self.depth if p.module == "head" else int(p.module[2:])
            grad = self.grad(step, layer) * (1.0 if p.name.endswith("weight") else 0.3)
            param[p.idx, ParamStat.HAS_GRAD] = 1
            param[p.idx, ParamStat.GRAD_NORM] = grad
            param[p.idx, ParamStat.WEIGHT_NORM] = 2.0
            param[p.idx, ParamStat.UPDATE_NORM] = 0.1 * grad if math.isfinite(grad) else math.nan
            param[p.idx, ParamStat.UNIT_SPREAD] = 1.0 if p.name.endswith("weight") else math.nan
        return act, param

    def close(self, status: RunStatus = RunStatus.FINISHED, message: str | None = None) -> None:
        self.writer.close(status, message)


def write_run(path: Path, pattern: str, steps: int = 120, depth: int = 4,
              status: RunStatus = RunStatus.FINISHED, message: str | None = None) -> Path:
    run = RunWriter(path, pattern, depth)
    run.write(steps)
    run.close(status, message)
    # the writer stamps the end with the clock: make it the last step's time, for snapshots
    ended = meta("", pattern, False)["created_at"] + 0.02 * steps
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'ended_at'", (json.dumps(ended),))
    conn.close()
    return path


def diagnoses_for(pattern: str) -> list[Diagnosis]:
    """Fixed diagnoses for each synthetic run: snapshots must not follow the rules' changes."""
    if pattern == "vanishing":
        return [
            Diagnosis("vanishing_gradients", Severity.WARNING, 0, "fc0",
                      "RMS gradient of fc0 fell to 6e-10 (last layer head 0.06, ratio 1e-08): "
                      "use ReLU with He init, or add batchnorm",
                      {"layer": "fc0", "ratio": 1e-8, "vanishing_layers": ["fc0", "fc1"]},
                      (Fix("relu_activation", "replace nn.Tanh() with nn.ReLU()"),
                       Fix("he_init", "initialise with He init"))),
            Diagnosis("underfitting", Severity.WARNING, 40, None,
                      "train loss is 1.1 after 120 steps, 100 % of the chance loss",
                      {"chance_loss": 1.0986, "final_loss": 1.1},
                      (Fix("more_capacity", "give the model more capacity"),)),
        ]
    if pattern == "exploding":
        return [
            Diagnosis("exploding_gradients", Severity.ERROR, 12, "fc0",
                      "grad norm grew ×1.3 every step from 0.5 to 2.6e+06: clip gradients",
                      {"layer": "fc0", "growth_per_step": 1.3},
                      (Fix("grad_clipping", "clip the gradient norm at 1.0"),
                       Fix("lower_lr", "divide the learning rate by 10"))),
            Diagnosis("nan_loss", Severity.ERROR, 60, None,
                      "the loss became non-finite at step 60 after the gradients exploded",
                      {"step": 60, "params": ["fc0.weight", "fc1.weight"]},
                      (Fix("lower_lr", "divide the learning rate by 10"),)),
        ]
    return []


def fixed_rules(run: RunData) -> list[Diagnosis]:
    """A stand-in rule engine for the app: the pattern's diagnoses that have begun by the last
    step the run holds (so that they appear as a live run or a replay reaches them)."""
    last = int(run.step_numbers[-1]) if run.n_steps else -1
    pattern = str(run.meta.get("pattern", ""))
    return [d for d in diagnoses_for(pattern) if d.step is None or d.step <= last]
