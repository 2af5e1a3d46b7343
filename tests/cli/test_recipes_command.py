"""`netdoctor recipes`: one line per built-in recipe, with the diagnoses it is meant to show."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from netdoctor.cli.app import app
from netdoctor.recipes import builtin_recipes

runner = CliRunner()


def test_lists_every_builtin_recipe_on_one_line() -> None:
    result = runner.invoke(app, ["recipes"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    infos = builtin_recipes()
    assert len(lines) == len(infos) >= 3
    for line, info in zip(lines, infos, strict=True):
        assert line.startswith(info.name + " ") and info.description in line
        shows = ", ".join(info.expect) if info.expect else "healthy: no warning or error"
        assert line.endswith(f"[{shows}]")
    assert "built-in recipe files: " in result.stderr


def test_listing_recipes_never_imports_torch(tmp_path: Path, child_env: dict[str, str]) -> None:
    code = ("import sys; from netdoctor.cli.app import main; sys.argv = ['netdoctor', 'recipes']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=tmp_path, env=child_env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "healthy_mlp" in result.stdout
