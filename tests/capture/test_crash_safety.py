"""Real processes killed mid-run: the log stays readable up to its last flush."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from netdoctor.runlog import open_run
from netdoctor.runlog.schema import RunStatus

ROOT = Path(__file__).resolve().parents[2]

TRAIN = """
import sys, torch, torch.nn.functional as F
from torch import nn
import netdoctor
torch.set_num_threads(1)
model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 1))
opt = torch.optim.SGD(model.parameters(), lr=0.01)
monitor = netdoctor.watch(model, opt, log=sys.argv[1], flush_every=8, flush_seconds=0.05)
step = 0
while True:
    opt.zero_grad()
    loss = F.mse_loss(model(torch.randn(16, 8)), torch.randn(16, 1))
    loss.backward()
    opt.step()
    monitor.step(loss)
    step += 1
    if step == 30:
        print("ready", flush=True)
    {tail}
"""


def _start(log: Path, tail: str = "") -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    code = textwrap.dedent(TRAIN).replace("{tail}", tail)
    return subprocess.Popen([sys.executable, "-c", code, str(log)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_sigkill_mid_run_leaves_a_readable_log(tmp_path):
    log = tmp_path / "killed.sqlite"
    proc = _start(log)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.3)  # keep training (and flushing) for a while
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    run = open_run(log)
    assert run.n_steps >= 30
    assert (run.step_numbers == range(run.n_steps)).all()  # no holes, no partial chunk
    assert run.status is RunStatus.RUNNING and not run.writer_alive  # i.e. did not finish
    assert len(run.sites) > 0 and len(run.sample_steps) > 0


def test_uncaught_exception_without_close_records_the_crash(tmp_path):
    log = tmp_path / "crashed.sqlite"
    proc = _start(log, tail="if step == 40: raise ValueError('shapes do not match')")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "ValueError: shapes do not match" in err  # the user's traceback is untouched
    run = open_run(log)
    assert run.status is RunStatus.CRASHED
    assert run.meta["end_message"] == "ValueError: shapes do not match"
    assert run.n_steps == 40


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT delivery is POSIX")
def test_ctrl_c_without_close_records_an_interrupted_run(tmp_path):
    """A real SIGINT (Ctrl-C) in a script that never calls close(): the log says interrupted,
    keeps every flushed step, and the rules still run on it."""
    log = tmp_path / "interrupted.sqlite"
    proc = _start(log)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "KeyboardInterrupt" in err
    run = open_run(log)
    assert run.status is RunStatus.INTERRUPTED
    assert "interrupted" in run.meta["end_message"]
    assert run.n_steps >= 30 and (run.step_numbers == range(run.n_steps)).all()
    report = subprocess.run([sys.executable, "-m", "netdoctor", "inspect", str(log),
                             "--format", "json"], capture_output=True, text=True, timeout=60)
    assert report.returncode == 0, report.stderr
    assert json.loads(report.stdout)["run"]["status"] == "interrupted"


def test_log_is_readable_while_the_writer_runs(tmp_path):
    log = tmp_path / "live.sqlite"
    proc = _start(log)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        time.sleep(0.2)
        first = open_run(log)
        time.sleep(0.3)
        second = open_run(log)
        assert first.writer_alive and first.status is RunStatus.RUNNING
        assert second.n_steps > first.n_steps >= 8
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
def test_file_size_limit_hit_mid_run_keeps_training_and_the_log(tmp_path):
    """A real RLIMIT_FSIZE (a full disk, as the process sees it): training goes on to the end,
    one warning names the problem, and what was written before stays readable."""
    log = tmp_path / "limited.sqlite"
    limit = 96 * 1024
    tail = """if step == 400:
        print("done", monitor.steps, flush=True)
        monitor.close()
        break"""
    code = ("import resource\n"
            f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))\n"
            + textwrap.dedent(TRAIN).replace("{tail}", tail))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code, str(log)], capture_output=True,
                          text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "done 400" in proc.stdout  # every step trained
    warnings = [line for line in proc.stderr.splitlines() if "netdoctor" in line]
    assert len(warnings) == 1, proc.stderr
    assert "writing" in warnings[0] and "failed" in warnings[0], warnings
    assert "training continues" in warnings[0]
    run = open_run(log)  # readable: SQLite rolled back the commit that did not fit
    assert 8 <= run.n_steps < 400
    assert (run.step_numbers == range(run.n_steps)).all()
