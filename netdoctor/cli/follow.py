"""``inspect --follow`` without a terminal UI: tail a log that another process is writing.

Each new diagnosis is announced on stderr the first time it holds (so stdout keeps only the
report), and the full report is printed once the writer is done: finished, crashed, killed or
gone. Ctrl-C stops following and prints the report of what was read so far.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from netdoctor.cli.console import print_note
from netdoctor.diagnosis import Diagnosis
from netdoctor.rules import RuleConfig, run_rules
from netdoctor.runlog import RunData, open_run


def follow(
    log: Path,
    settings: RuleConfig,
    interval: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[RunData, list[Diagnosis]]:
    """Re-read ``log`` every ``interval`` seconds until its writer is done; return the last read."""
    announced: set[tuple[str, str | None]] = set()
    last_step = -1
    while True:
        run = open_run(log)
        diagnoses = run_rules(run, settings)
        if run.n_steps and run.step_numbers[-1] != last_step:
            last_step = int(run.step_numbers[-1])
            for d in diagnoses:
                key = (d.rule, d.layer)
                if key not in announced:
                    announced.add(key)
                    where = f" layer {d.layer}" if d.layer else ""
                    print_note(f"step {last_step}: {d.severity} {d.rule} (from step {d.step}"
                               f"{where}): {d.message}")
        if run.finished or not run.writer_alive:
            return run, diagnoses
        try:
            sleep(interval)
        except KeyboardInterrupt:
            return run, diagnoses
