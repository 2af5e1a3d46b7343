"""Training throughput with the TUI open, as a ratio to the same run headless (target >= 0.9).

Each round runs ``netdoctor run RECIPE --max-steps N`` twice, as a user would: once with
``--headless``, once with the app open in a pseudo-terminal (whose output this script reads, as
a terminal would). The throughput of each is read from its run log, over the steps after a
warm-up (the first steps are sampled densely and build the data): optimizer steps per second of
training time, so start-up and the app's drawing before and after training do not count.
Rounds interleave the two, in alternating order, so that a busy machine slows them alike; the
ratio is per round, and the median over rounds is the number to quote.

    python benchmarks/tui_throughput.py                     # healthy_mlp, 5 rounds
    python benchmarks/tui_throughput.py --recipes healthy_mlp healthy_cnn --rounds 5 \\
        --steps 2000 --json tui.json
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import pty
import select
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

import numpy as np

from netdoctor.errors import RunLogError
from netdoctor.runlog import open_run
from netdoctor.runlog.schema import StepField

WARMUP_STEPS = 100


def throughput(log: Path, warmup: int = WARMUP_STEPS) -> float:
    """Optimizer steps per second of training, after ``warmup`` steps."""
    run = open_run(log)
    times = run.series(StepField.TIME)[warmup:]
    steps = run.step_numbers[warmup:]
    if steps.size < 2 or not np.isfinite(times).all():
        raise SystemExit(f"{log}: too few steps after the warm-up ({steps.size})")
    return float(steps[-1] - steps[0]) / float(times[-1] - times[0])


def command(recipe: str, steps: int, log: Path, headless: bool) -> list[str]:
    args = [sys.executable, "-m", "netdoctor", "run", recipe, "--max-steps", str(steps),
            "--set", "train.epochs=100000", "--log", str(log)]
    return [*args, "--headless"] if headless else args


def run_headless(recipe: str, steps: int, log: Path) -> float:
    subprocess.run(command(recipe, steps, log, headless=True), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return throughput(log)


def run_in_app(recipe: str, steps: int, log: Path, size: tuple[int, int] = (120, 36)) -> float:
    """The app in a pseudo-terminal; ``q`` once the log says training ended."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the CLI, with the pty as its terminal
        os.execv(sys.executable, command(recipe, steps, log, headless=False))
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))
    sent_quit = False
    deadline = time.monotonic() + 600
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                try:
                    if not os.read(fd, 1 << 16):
                        break
                except OSError:  # the app exited and closed the terminal
                    break
            if not sent_quit and _finished(log):
                os.write(fd, b"q")
                sent_quit = True
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"netdoctor run (TUI) exited with {os.waitstatus_to_exitcode(status)}")
    return throughput(log)


def _finished(log: Path) -> bool:
    try:
        return open_run(log).finished
    except RunLogError:  # not created yet
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipes", nargs="+", default=["healthy_mlp"])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    report: dict[str, object] = {"steps": args.steps, "warmup": WARMUP_STEPS, "recipes": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for recipe in args.recipes:
            rows = []
            for r in range(args.rounds):
                logs = Path(tmp) / f"{recipe}-{r}-h.sqlite", Path(tmp) / f"{recipe}-{r}-tui.sqlite"
                if r % 2:  # alternate the order, so that a drifting machine load cancels out
                    app = run_in_app(recipe, args.steps, logs[1])
                    headless = run_headless(recipe, args.steps, logs[0])
                else:
                    headless = run_headless(recipe, args.steps, logs[0])
                    app = run_in_app(recipe, args.steps, logs[1])
                rows.append({"headless_steps_per_s": headless, "tui_steps_per_s": app,
                             "ratio": app / headless})
                print(f"{recipe} round {r + 1}: headless {headless:.1f} steps/s, "
                      f"TUI {app:.1f} steps/s, ratio {app / headless:.3f}", flush=True)
            ratios = [row["ratio"] for row in rows]
            summary = {"rounds": rows, "ratio_min": min(ratios),
                       "ratio_median": statistics.median(ratios), "ratio_max": max(ratios)}
            report["recipes"][recipe] = summary  # type: ignore[index]
            print(f"{recipe}: TUI / headless throughput ratio, median {summary['ratio_median']:.3f}"
                  f" (min {summary['ratio_min']:.3f}, max {summary['ratio_max']:.3f})")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
