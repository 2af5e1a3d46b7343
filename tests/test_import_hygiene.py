"""The analysis half never loads torch or textual (design.md: inspect starts fast, works without
torch). Checked in a fresh interpreter, since this test process may have loaded them already."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

FORBIDDEN = ("torch", "textual")
#: The trainers netdoctor integrates with: optional, and never loaded unless asked for.
TRAINERS = ("lightning", "pytorch_lightning", "transformers", "accelerate")

PROBE = """
import json, sys
{body}
print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {forbidden!r})))
"""


def loaded_after(body: str, env: dict[str, str], cwd: Path,
                 forbidden: tuple[str, ...] = FORBIDDEN) -> list[str]:
    code = PROBE.format(body=body, forbidden=set(forbidden))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, cwd=cwd, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture
def env(child_env: dict[str, str]) -> dict[str, str]:
    return child_env


def test_importing_the_analysis_half(env: dict[str, str], tmp_path: Path) -> None:
    body = """
import netdoctor, netdoctor.cli.app, netdoctor.runlog, netdoctor.report
import netdoctor.report.text, netdoctor.report.json_report, netdoctor.report.rule_docs
import netdoctor.diagnosis, netdoctor.errors, netdoctor.gate
import netdoctor.report.junit, netdoctor.report.markdown, netdoctor.report.github
import netdoctor.report.check_text
netdoctor.Diagnosis, netdoctor.Fix, netdoctor.Severity, netdoctor.__version__
"""
    assert loaded_after(body, env, tmp_path) == []


def test_importing_the_rule_engine(env: dict[str, str], tmp_path: Path) -> None:
    pytest.importorskip("netdoctor.rules")
    assert loaded_after("import netdoctor.rules", env, tmp_path) == []


def _run_cli(args: list[str]) -> str:
    return f"""
from netdoctor.cli.app import app
try:
    app({args!r}, prog_name="netdoctor")
except SystemExit as exc:
    assert exc.code in (0, None), exc.code
"""


def test_help(env: dict[str, str], tmp_path: Path) -> None:
    assert loaded_after(_run_cli(["--help"]), env, tmp_path) == []
    assert loaded_after(_run_cli(["inspect", "--help"]), env, tmp_path) == []


def test_inspect(env: dict[str, str], tmp_path: Path, small_log: Path) -> None:
    assert loaded_after(_run_cli(["inspect", str(small_log)]), env, tmp_path) == []
    assert loaded_after(_run_cli(["inspect", str(small_log), "--format", "json"]), env,
                        tmp_path) == []


def test_check(env: dict[str, str], tmp_path: Path, small_log: Path) -> None:
    assert loaded_after(_run_cli(["check", "--help"]), env, tmp_path) == []
    args = ["check", str(small_log), "--json", str(tmp_path / "r.json"),
            "--junit", str(tmp_path / "r.xml"), "--baseline", str(small_log)]
    assert loaded_after(_run_cli(args), env, tmp_path) == []


def test_rules(env: dict[str, str], tmp_path: Path) -> None:
    assert loaded_after(_run_cli(["rules"]), env, tmp_path) == []


def test_watch_is_the_name_that_loads_torch(env: dict[str, str], tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("netdoctor.capture")
    assert "torch" in loaded_after("import netdoctor; netdoctor.watch", env, tmp_path)


def test_the_trainers_are_never_loaded_unless_asked_for(env: dict[str, str],
                                                        tmp_path: Path) -> None:
    """netdoctor, its CLI, watch() and the integrations package load no trainer; Lightning's
    entry point (called for every Trainer) loads nothing while NETDOCTOR_LOG is unset."""
    body = """
import netdoctor, netdoctor.cli.app, netdoctor.integrations
from netdoctor.integrations.lightning_env import callbacks_from_env
assert callbacks_from_env() == []
"""
    env = {k: v for k, v in env.items() if k != "NETDOCTOR_LOG"}
    assert loaded_after(body, env, tmp_path, FORBIDDEN + TRAINERS) == []
    assert loaded_after(_run_cli(["rules"]), env, tmp_path, TRAINERS) == []
    if importlib.util.find_spec("torch") is not None:
        assert loaded_after("import netdoctor; netdoctor.watch", env, tmp_path, TRAINERS) == []
