"""`netdoctor demo`: with a stand-in demo module (fast), and once for real (trains a model)."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest
from typer.testing import CliRunner

from netdoctor.cli.app import app

runner = CliRunner()


@pytest.fixture
def fake_demos(monkeypatch: pytest.MonkeyPatch, fake_rules, make_log) -> list[tuple[str, Path]]:
    """Replace ``netdoctor.capture.demos``; a 'training' writes a small log with the real writer."""
    calls: list[tuple[str, Path]] = []

    def run_demo(name: str, log: Path) -> None:
        calls.append((name, log))
        make_log(Path(log).resolve())

    module = types.ModuleType("netdoctor.capture.demos")
    module.DEMOS = {"exploding": "gradients grow into inf", "healthy": "nothing to report"}  # type: ignore[attr-defined]
    module.run_demo = run_demo  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "netdoctor.capture.demos", module)
    return calls


def test_default_demo_writes_runs_demo_exploding(
    fake_demos: list[tuple[str, Path]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["demo"])
    assert result.exit_code == 0, result.output
    assert fake_demos == [("exploding", Path("runs") / "demo-exploding.sqlite")]
    assert (tmp_path / "runs" / "demo-exploding.sqlite").is_file()
    assert "exploding_gradients" in result.stdout  # the report, on stdout
    assert "demo-exploding.sqlite" in result.stderr  # the progress note, on stderr
    assert "demo-exploding.sqlite" not in result.stdout.split("\n", 1)[1]


def test_named_demo_and_log(fake_demos: list[tuple[str, Path]], tmp_path: Path) -> None:
    log = tmp_path / "mine.sqlite"
    result = runner.invoke(app, ["demo", "healthy", "--log", str(log)])
    assert result.exit_code == 0, result.output
    assert fake_demos == [("healthy", log)]


def test_unknown_demo_lists_the_names(fake_demos: list[tuple[str, Path]]) -> None:
    result = runner.invoke(app, ["demo", "nope"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "exploding" in result.stderr and "healthy" in result.stderr
    assert fake_demos == []


def test_without_torch_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = __import__

    def no_torch(name: str, *args, **kwargs):  # the import fails as it does without torch
        if name == "netdoctor.capture.demos":
            raise ModuleNotFoundError("No module named 'torch'", name="torch")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr("builtins.__import__", no_torch)
    result = runner.invoke(app, ["demo"])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert "needs PyTorch" in result.stderr


def test_demos_follow_the_cli_contract() -> None:
    """The command shows ``DEMOS[name]`` as the demo's one-line description."""
    pytest.importorskip("torch")
    from netdoctor.capture.demos import DEMOS

    assert "exploding" in DEMOS
    assert all(isinstance(text, str) for text in DEMOS.values())


def test_real_demo_trains_and_reports(tmp_path: Path, run_netdoctor) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("netdoctor.capture.demos")
    log = tmp_path / "demo.sqlite"
    result = run_netdoctor("demo", "exploding", "--log", str(log), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert log.is_file()
    assert "exploding_gradients" in result.stdout
    assert "<function" not in result.stderr
