"""Kill real training processes at random moments; every log must stay readable.

    python benchmarks/kill_runs.py --kills 50 --seed 0

Each round starts a small training script under ``netdoctor.watch`` (flushing often), waits a
random time and sends SIGKILL. ``--from watch`` (the default) draws the moment from after
``watch()`` returned — the first steps, flushes, epochs, mid-run — and every log must open with
``open_run``, read up to its last flush with no holes. ``--from imports`` draws it from before
``watch()`` is called, so some kills land while the log is being created: each outcome is classed
by what the process had printed, and a process that died before ``watch()`` returned must leave
no log at all and no half-made file next to it (the schema is built in a side file and renamed).
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from netdoctor.errors import RunLogError  # noqa: E402
from netdoctor.runlog import open_run  # noqa: E402
from netdoctor.runlog.schema import RunStatus  # noqa: E402
from netdoctor.runlog.writer import RunLogWriter  # noqa: E402

TRAIN = """
import sys, time
t0 = time.perf_counter()
import torch, torch.nn.functional as F
from torch import nn
import netdoctor
torch.set_num_threads(1)
model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 1))
opt = torch.optim.SGD(model.parameters(), lr=0.01)
print("importing took", time.perf_counter() - t0, flush=True)
monitor = netdoctor.watch(model, opt, log=sys.argv[1], flush_every=4, flush_seconds=0.02)
print("watching", flush=True)
for epoch in range(1000):
    for _ in range(20):
        opt.zero_grad()
        loss = F.mse_loss(model(torch.randn(16, 8)), torch.randn(16, 1))
        loss.backward()
        opt.step()
        monitor.step(loss)
    monitor.epoch(train_loss=float(loss))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-delay", type=float, default=1.5,
                        help="longest wait before the kill (seconds)")
    parser.add_argument("--from", dest="start", choices=("watch", "imports"), default="watch",
                        help="draw the kill moment from after watch() returned, or from before "
                             "it is called (kills during log creation)")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    outcomes: collections.Counter[str] = collections.Counter()
    failures: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for kill in range(args.kills):
            log = Path(tmp) / f"run{kill}.sqlite"
            proc = subprocess.Popen([sys.executable, "-c", TRAIN, str(log)],
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
            assert proc.stdout is not None
            proc.stdout.readline()  # imports done
            if args.start == "watch":
                proc.stdout.readline()  # watch() returned: the log exists
            time.sleep(rng.uniform(0, args.max_delay))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            watching = args.start == "watch" or "watching" in proc.stdout.read().decode()
            if list(log.parent.glob(f".{log.name}.*")):
                # Killed while creating the log: the next run on this path must clear the side file.
                RunLogWriter(log, {}).close(RunStatus.FINISHED)
                log.unlink()
                if list(log.parent.glob(f".{log.name}.*")):
                    failures.append(f"kill {kill}: the next run left the side file in place")
                outcomes["killed while creating the log, side file cleared by the next run"] += 1
                continue
            if not log.exists():
                if watching:
                    outcomes["log missing after watch() returned"] += 1
                    failures.append(f"kill {kill}: no log although watch() had returned")
                else:
                    outcomes["killed before watch() returned, no log (nothing half-made)"] += 1
                continue
            try:
                run = open_run(log)
            except RunLogError as exc:
                outcomes["unreadable"] += 1
                failures.append(f"kill {kill}: {exc}")
                continue
            outcomes["readable"] += 1
            if run.n_steps and not (run.step_numbers == range(run.n_steps)).all():
                failures.append(f"kill {kill}: steps with holes")
    print(f"{args.kills} runs killed: " + ", ".join(f"{n} {k}" for k, n in outcomes.items()))
    for failure in failures:
        print("  " + failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
