"""Overhead of netdoctor.watch() on real training steps, as a ratio to the bare loop.

Configurations (see CONFIGS) run interleaved in rounds, so that a busy machine slows them alike;
each round times a fixed number of steps after a warm-up. Ratios are per round against that
round's bare time; the table shows min / median / max over rounds. Run from the repo root:

    python benchmarks/overhead.py                # all workloads, 5 rounds
    python benchmarks/overhead.py --rounds 9 --workloads mlp cnn --json out.json

Measured with torch on one thread by default (``--threads``), as the test suite runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import netdoctor
from netdoctor.capture import SamplingSchedule


@dataclass(frozen=True)
class Workload:
    name: str
    build: Callable[[], nn.Module]
    batch: Callable[[], tuple[torch.Tensor, torch.Tensor]]
    steps: int


class LSTMNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(32, 128, num_layers=2, batch_first=True)
        self.head = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)  # (B, T, H)
        return self.head(out[:, -1])


def _mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                         nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))


def _cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.Flatten(),
        nn.Linear(64 * 8 * 8, 128), nn.ReLU(), nn.Linear(128, 10))


def _deep_narrow() -> nn.Module:
    layers: list[nn.Module] = []
    for _ in range(50):
        layers += [nn.Linear(32, 32), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(32, 10))


WORKLOADS = {
    "mlp": Workload("mlp 784-512x3-10 b128", _mlp,
                    lambda: (torch.randn(128, 784), torch.randint(0, 10, (128,))), 40),
    "cnn": Workload("cnn 3conv+2fc 3x32x32 b64", _cnn,
                    lambda: (torch.randn(64, 3, 32, 32), torch.randint(0, 10, (64,))), 15),
    "lstm": Workload("lstm 2x128 seq50 b32", LSTMNet,
                     lambda: (torch.randn(32, 50, 32), torch.randint(0, 10, (32,))), 15),
    "deep": Workload("deep narrow 50x(32) b32", _deep_narrow,
                     lambda: (torch.randn(32, 32), torch.randint(0, 10, (32,))), 60),
}

#: name -> sampling schedule (None: no monitor). ``watch`` is the default schedule over the timed
#: steps, which sit mostly in its dense first phase; ``steady`` is the default's interval after
#: step ~1600 (one full sample every 50 steps): the cost of a long run.
CONFIGS: dict[str, SamplingSchedule | None] = {
    "bare": None,
    "watch": SamplingSchedule(),
    "steady": SamplingSchedule.every(50),
    "every_step": SamplingSchedule.every(1),
}


def _time_config(work: Workload, config: str, log_dir: Path, warmup: int = 5) -> float:
    """Seconds per step over ``work.steps`` steps (after warm-up), for one configuration."""
    torch.manual_seed(0)
    model = work.build()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    batches = [work.batch() for _ in range(4)]
    monitor = None
    schedule = CONFIGS[config]
    if schedule is not None:
        monitor = netdoctor.watch(model, opt, log=log_dir / f"{config}.sqlite", schedule=schedule)
    start = 0.0
    for i in range(warmup + work.steps):
        if i == warmup:
            start = time.perf_counter()
        x, y = batches[i % len(batches)]
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        if monitor is not None:
            monitor.step(loss)
    elapsed = time.perf_counter() - start
    if monitor is not None:
        monitor.close()
    return elapsed / work.steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--workloads", nargs="+", choices=sorted(WORKLOADS),
                        default=list(WORKLOADS))
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.workloads:
            work = WORKLOADS[name]
            times: dict[str, list[float]] = {c: [] for c in CONFIGS}
            for _ in range(args.rounds):
                for config in CONFIGS:
                    times[config].append(_time_config(work, config, Path(tmp)))
            results[name] = times
    report = {"threads": args.threads, "rounds": args.rounds, "torch": torch.__version__,
              "workloads": {}}
    names = list(CONFIGS)[1:]
    print(f"{'workload':28} {'bare ms/step':>12}  " + "  ".join(f"{n:>20}" for n in names))
    for name, times in results.items():
        bare = times["bare"]
        row = {"bare_ms": statistics.median(bare) * 1e3}
        cells = []
        for config in names:
            ratios = sorted(t / b for t, b in zip(times[config], bare, strict=True))
            row[config] = {"min": ratios[0], "median": statistics.median(ratios),
                           "max": ratios[-1]}
            cells.append(f"{ratios[0]:.2f}/{statistics.median(ratios):.2f}/{ratios[-1]:.2f}x")
        report["workloads"][name] = row
        print(f"{WORKLOADS[name].name:28} {row['bare_ms']:12.1f}  "
              + "  ".join(f"{c:>20}" for c in cells))
    print("ratios are min/median/max over rounds, against the bare loop of the same round")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
