"""How fast the analysis half is on a big run: open, rules, reports, and the CLI's cold start.

    python benchmarks/analysis.py [--steps 100000] [--layers 100] [--json out.json]

Writes a run log of a ``--layers``-deep MLP trained ``--steps`` steps (Linear + ReLU per layer,
default sampling schedule, one flush every 64 steps: what ``watch()`` writes) with the real writer,
then times, each the best of ``--repeat`` tries:
- ``open_run`` (SQLite to numpy), every rule, the JSON report, in this process;
- ``netdoctor inspect --format json LOG`` as a user runs it (a fresh process);
- the cold start of ``netdoctor inspect`` on a small log, next to ``python -c pass``.
Targets (issue 8): open + all rules <= 1 s, log <= 200 MB, small-log cold start <= 0.3 s.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from netdoctor.capture.schedule import SamplingSchedule  # noqa: E402
from netdoctor.runlog.run_data import ParamInfo, SiteInfo  # noqa: E402
from netdoctor.runlog.schema import ActStat, ParamStat, RunStatus, StepField, StepFlag  # noqa: E402
from netdoctor.runlog.writer import RunLogWriter  # noqa: E402

FLUSH = 64


def structure(layers: int, width: int) -> tuple[list[SiteInfo], list[ParamInfo]]:
    sites, params = [], []
    for i in range(layers):
        order = 2 * i
        sites.append(SiteInfo(len(sites), f"fc{i}", f"fc{i}", "Linear", "output", "linear",
                              order, (128, width)))
        sites.append(SiteInfo(len(sites), f"act{i}", f"act{i}", "ReLU", "output", "relu",
                              order + 1, (128, width)))
        for kind, shape in (("weight", (width, width)), ("bias", (width,))):
            params.append(ParamInfo(len(params), f"fc{i}.{kind}", f"fc{i}", shape,
                                    math.prod(shape), True, True))
    return sites, params


def write_big_log(path: Path, steps: int, layers: int) -> float:
    """The log of a plausible, healthy run; returns seconds spent writing it."""
    start = time.perf_counter()
    rng = np.random.default_rng(0)
    sites, params = structure(layers, width=64)
    meta = {"created_at": time.time(), "device": "cpu", "model_class": "MLP",
            "optimizer": {"class": "SGD", "groups": [{"lr": 0.05}]},
            "task": {"num_classes": 10, "chance_loss": math.log(10)}}
    writer = RunLogWriter(path, meta)
    writer.put_structure(sites, params)
    schedule = SamplingSchedule()
    for first in range(0, steps, FLUSH):
        n = min(FLUSH, steps - first)
        step_no = np.arange(first, first + n, dtype=np.float64)
        rows = np.zeros((n, len(StepField)))
        rows[:, StepField.STEP] = step_no
        rows[:, StepField.LOSS] = 2.3 * np.exp(-step_no / 20000) + 0.1 + 0.02 * rng.random(n)
        rows[:, StepField.GRAD_NORM] = 1.0 + 0.1 * rng.random(n)
        rows[:, StepField.LR] = 0.05
        rows[:, StepField.TIME] = 0.01 * (step_no + 1)
        rows[:, StepField.MICRO_BATCHES] = 1
        sampled = [schedule.is_sampled(int(s)) for s in step_no]
        rows[:, StepField.FLAGS] = np.where(sampled, StepFlag.SAMPLED, 0)
        writer.put_steps(rows, np.full((n, 1), 0.05))
        for step in step_no[sampled]:
            act = np.zeros((len(sites), len(ActStat)), dtype=np.float32)
            act[:, ActStat.CALLS] = 1
            act[:, ActStat.NUMEL] = 128 * 64
            act[:, ActStat.MEAN] = rng.normal(0.2, 0.05, len(sites))
            act[:, ActStat.STD] = rng.uniform(0.8, 1.2, len(sites))
            act[:, ActStat.MIN] = -3
            act[:, ActStat.MAX] = 3
            act[:, ActStat.ABSMAX] = 3
            act[:, ActStat.ZERO_FRAC] = np.where(np.arange(len(sites)) % 2, 0.5, 0.0)
            act[:, ActStat.SAT_FRAC] = np.nan
            act[:, ActStat.DEAD_FRAC] = np.where(np.arange(len(sites)) % 2, 0.02, np.nan)
            param = np.zeros((len(params), len(ParamStat)), dtype=np.float32)
            param[:, ParamStat.HAS_GRAD] = 1
            param[:, ParamStat.GRAD_NORM] = rng.uniform(0.05, 0.2, len(params))
            param[:, ParamStat.WEIGHT_NORM] = rng.uniform(4, 6, len(params))
            param[:, ParamStat.UPDATE_NORM] = param[:, ParamStat.WEIGHT_NORM] * 1e-3
            param[:, ParamStat.UNIT_SPREAD] = np.where(np.arange(len(params)) % 2, np.nan, 1.0)
            writer.put_sample(int(step), act, param)
        if (first // FLUSH) % 100 == 99:
            epoch = first // (FLUSH * 100)
            writer.put_epoch(epoch, first + n - 1, {"train_loss": float(rows[-1, 1]),
                                                   "val_loss": float(rows[-1, 1]) + 0.05})
        writer.commit()
    writer.close(RunStatus.FINISHED)
    return time.perf_counter() - start


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def run_cli(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "netdoctor", *args], check=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--layers", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    from netdoctor.report.json_report import render_json
    from netdoctor.rules import run_rules
    from netdoctor.runlog import open_run

    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "big.sqlite"
        small = Path(tmp) / "small.sqlite"
        write_s = write_big_log(big, args.steps, args.layers)
        write_big_log(small, 200, 3)
        run = open_run(big)
        results = {
            "steps": args.steps,
            "layers": args.layers,
            "sampled_steps": int(run.sample_steps.size),
            "log_mb": big.stat().st_size / 2**20,
            "write_s": write_s,
            "open_s": best_of(args.repeat, lambda: open_run(big)),
            "rules_s": best_of(args.repeat, lambda: run_rules(run)),
            "json_report_s": best_of(args.repeat, lambda: render_json(run, run_rules(run))),
            "inspect_json_big_s": best_of(args.repeat,
                                          lambda: run_cli("inspect", "--format", "json", str(big))),
            "inspect_small_s": best_of(args.repeat, lambda: run_cli("inspect", str(small))),
            "python_pass_s": best_of(args.repeat, lambda: subprocess.run(
                [sys.executable, "-c", "pass"], check=True)),
        }
        results["open_and_rules_s"] = results["open_s"] + results["rules_s"]
    width = max(len(k) for k in results)
    for key, value in results.items():
        shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        print(f"{key:<{width}}  {shown}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
