"""`netdoctor run RECIPE`: real (tiny) training, headless, in process and as a child process;
Ctrl-C sent to a real process leaves a readable log."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from netdoctor.cli.app import app
from netdoctor.cli.run import RecipeSource, RunView, choose_run_view, progress_line
from netdoctor.recipes import load_recipe
from netdoctor.runlog import open_run
from netdoctor.runlog.schema import RunStatus

runner = CliRunner()

#: Shortcuts that make any built-in recipe train in well under a second.
SMALL = ["--set", "data.samples=200", "--epochs", "1"]

TINY = """\
[data]
kind = "blobs"
samples = 120

[model]
kind = "mlp"
depth = 1
width = 8

[train]
epochs = 2
batch_size = 16
"""


def run(*args: str) -> object:
    return runner.invoke(app, ["run", *args])


def one_line_error(result: object) -> str:
    assert result.exit_code == 2, result.output  # type: ignore[attr-defined]
    assert result.stdout == ""  # type: ignore[attr-defined]
    lines = result.stderr.splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 1 and lines[0].startswith("netdoctor: error: ")
    return lines[0]


def test_headless_run_prints_progress_report_and_log_path(tmp_path: Path) -> None:
    log = tmp_path / "mlp.sqlite"
    result = run("healthy_mlp", "--headless", *SMALL, "--log", str(log), "--seed", "2")
    assert result.exit_code == 0, result.output
    assert "status" in result.stdout and "finished" in result.stdout  # the inspect report
    assert "Diagnoses" in result.stdout
    assert "epoch 1/1  step 5/5" in result.stderr  # progress: one line per epoch off a tty
    assert f"run log: {log}" in result.stderr.splitlines()[-1]
    data = open_run(log)
    assert data.status is RunStatus.FINISHED
    assert data.meta["recipe"]["name"] == "healthy_mlp" and data.meta["recipe"]["seed"] == 2


def test_default_log_is_runs_recipe_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny.toml").write_text(TINY)
    result = run("tiny.toml", "--headless")
    assert result.exit_code == 0, result.output
    logs = list((tmp_path / "runs").glob("tiny-*.sqlite"))
    assert len(logs) == 1 and open_run(logs[0]).n_steps == 2 * 6


def test_fix_and_budget_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny.toml").write_text(TINY)
    result = run("tiny.toml", "--fix", "he_init", "--fix", "dropout", "--max-steps", "3",
                 "--log", "x.sqlite")
    assert result.exit_code == 0, result.output
    assert "stopped by the max_steps budget (3 steps)" in result.stdout  # the report says so
    settings = open_run(tmp_path / "x.sqlite").meta["recipe"]["settings"]
    assert settings["model"]["init"] == "he" and settings["model"]["dropout"] == 0.3


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["no_such_recipe"], "no recipe named 'no_such_recipe'"),
        (["healthy_mlp", "--devices", "2"], "not supported yet (issue 7)"),
        (["healthy_mlp", "--set", "model.depth=deep"], "model.depth must be an integer"),
        (["healthy_mlp", "--set", "model.activation=relu6"], "is not one of relu"),
        (["healthy_mlp", "--fix", "more_data"], "no recipe patch for fix 'more_data'"),
        (["healthy_mlp", "--fix", "he_init"], "fix he_init changes nothing"),
        (["healthy_mlp", "--max-time", "0"], "--max-time must be a positive number"),
        (["healthy_mlp", "--device", "tpu"], "train.device = 'tpu' is not one of"),
    ],
)
def test_user_errors_are_one_line_exit_2(args: list[str], needle: str, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert needle in one_line_error(run(*args))
    assert not (tmp_path / "runs").exists()


def test_a_device_this_machine_lacks_is_a_clear_error(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    monkeypatch.chdir(tmp_path)
    assert "CUDA is not available" in one_line_error(run("healthy_mlp", "--device", "cuda"))


def test_the_tui_for_a_terminal_unless_headless() -> None:
    assert choose_run_view(headless=False, stdout_is_terminal=True) is RunView.TUI
    assert choose_run_view(headless=True, stdout_is_terminal=True) is RunView.HEADLESS
    assert choose_run_view(headless=False, stdout_is_terminal=False) is RunView.HEADLESS


def test_progress_line() -> None:
    from netdoctor.recipes.trainer import Progress

    line = progress_line(Progress(2, 5, 40, 100, 0.51234, None, 0.8, None, 1234.5, 3.0, 75.0))
    assert line == ("epoch 2/5  step 40/100  loss 0.5123  val —  acc 0.800  1,234 samples/s  "
                    "ETA 1:15")


def test_recipe_source_drives_a_run_for_the_tui(tmp_path: Path) -> None:
    recipe = load_recipe("healthy_mlp", ["data.samples=200", "train.epochs=200"])
    source = RecipeSource(recipe, tmp_path / "live.sqlite")
    assert source.name == "healthy_mlp" and source.log == tmp_path / "live.sqlite"
    seen: list[object] = []
    results: list[object] = []
    worker = threading.Thread(target=lambda: results.append(source.start(seen.append)))
    worker.start()
    while not seen and worker.is_alive():
        time.sleep(0.01)
    source.pause()
    source.resume()
    source.stop()
    worker.join(30)
    assert results and results[0].stopped == "stopped"  # type: ignore[attr-defined]
    fixed = source.with_fix("dropout")
    assert fixed.log == tmp_path / "live-dropout.sqlite"
    assert fixed.recipe.model.dropout == 0.3  # type: ignore[union-attr]


def test_run_as_a_child_process(tmp_path: Path, run_netdoctor) -> None:
    result = run_netdoctor("run", "healthy_cnn", "--headless", *SMALL, "--log", "cnn.sqlite",
                           cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "finished" in result.stdout and "run log: cnn.sqlite" in result.stderr
    assert open_run(tmp_path / "cnn.sqlite").status is RunStatus.FINISHED


def test_ctrl_c_stops_cleanly_with_the_log_intact(tmp_path: Path, child_env) -> None:
    (tmp_path / "long.toml").write_text(TINY.replace("epochs = 2", "epochs = 100000"))
    child = subprocess.Popen(
        [sys.executable, "-m", "netdoctor", "run", "long.toml", "--headless", "--log",
         "long.sqlite"],
        cwd=tmp_path, env=child_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stderr is not None
        for line in child.stderr:  # wait for training to be under way
            if line.startswith("epoch 3/"):
                break
        child.send_signal(signal.SIGINT)
        stdout, stderr = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 130, stderr
    assert "interrupted" in stdout and "Traceback" not in stderr  # the report of what was seen
    assert "run log: long.sqlite" in stderr
    data = open_run(tmp_path / "long.sqlite")
    assert data.status is RunStatus.INTERRUPTED and data.n_steps >= 3 * 6
    assert data.meta["stopped"] == "interrupted"


PYTHON_RECIPE = '''\
"""Your own model and data: a two-layer net on a hand-made dataset, from a DataLoader."""
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

RECIPE = {"train": {"epochs": 2}, "optimizer": {"kind": "adam", "lr": 0.01}}


def build(seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(200, 5, generator=g)
    y = (x[:, 0] * x[:, 1] > 0).long()
    model = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 2))
    train = DataLoader(TensorDataset(x[:150], y[:150]), batch_size=25, shuffle=True,
                       generator=g)
    return model, {"train": train, "val": (x[150:175], y[150:175]),
                   "test": (x[175:], y[175:])}, None
'''


def test_a_python_recipe_file_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.py").write_text(PYTHON_RECIPE)
    result = run("mine.py", "--headless", "--log", "mine.sqlite", "--epochs", "3")
    assert result.exit_code == 0, result.output
    assert "epoch 3/3  step 18/18" in result.stderr
    data = open_run(tmp_path / "mine.sqlite")
    assert data.status is RunStatus.FINISHED and data.n_steps == 18
    assert data.meta["recipe"]["python"] is True
    assert data.meta["optimizer"]["class"] == "Adam"  # built from RECIPE's [optimizer]
    assert set(data.meta["final_metrics"]) == {"train_loss", "train_acc", "val_loss", "val_acc",
                                               "test_loss", "test_acc"}
