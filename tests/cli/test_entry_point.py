"""`python -m netdoctor` in a child process: the real rule engine, text and JSON, start-up time."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

ANSI = re.compile(r"\x1b\[")


def test_inspect_text(small_log: Path, tmp_path: Path, run_netdoctor) -> None:
    result = run_netdoctor("inspect", str(small_log), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "finished" in result.stdout
    assert "Layers" in result.stdout
    assert not ANSI.search(result.stdout)  # a pipe gets plain text


def test_inspect_json(small_log: Path, tmp_path: Path, run_netdoctor) -> None:
    result = run_netdoctor("inspect", str(small_log), "--format", "json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    report = json.loads(result.stdout)
    assert set(report) == {"run", "diagnoses"}
    run = report["run"]
    for key in ("path", "status", "steps", "epochs", "started", "ended", "device", "model",
                "optimizer", "netdoctor_version", "final_loss", "best_val_loss"):
        assert key in run
    assert run["status"] == "finished" and run["steps"] == 40
    for diagnosis in report["diagnoses"]:
        assert set(diagnosis) == {"rule", "severity", "step", "layer", "message", "evidence",
                                  "fixes"}
        assert diagnosis["severity"] in ("error", "warning", "info")
        assert all(set(fix) == {"id", "text"} for fix in diagnosis["fixes"])


def test_nan_run_gives_strict_json(make_log, tmp_path: Path, run_netdoctor) -> None:
    import numpy as np

    losses = 0.7 * np.exp(-np.arange(40) / 20)
    losses[25:] = np.nan
    log = make_log("nan.sqlite", losses=losses)
    result = run_netdoctor("inspect", str(log), "--format", "json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "NaN" not in result.stdout and "Infinity" not in result.stdout
    report = json.loads(result.stdout)
    assert report["run"]["final_loss"] is None


def test_version(tmp_path: Path, run_netdoctor) -> None:
    result = run_netdoctor("--version", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.startswith("netdoctor ")


def test_start_up_time(small_log: Path, tmp_path: Path, run_netdoctor) -> None:
    """Measured and printed (`pytest -s` shows it), not asserted: machines differ."""
    timings = {}
    for label, args in (("--version", ["--version"]), ("--help", ["--help"]),
                        ("inspect", ["inspect", str(small_log)]),
                        ("inspect --format json", ["inspect", str(small_log), "--format", "json"])):
        start = time.perf_counter()
        result = run_netdoctor(*args, cwd=tmp_path)
        timings[label] = time.perf_counter() - start
        assert result.returncode == 0, result.stderr
    print("\nnetdoctor start-up (wall, child process):",
          ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in timings.items()))
