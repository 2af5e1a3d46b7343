"""The TUI never loads torch (it runs where torch is not installed); its package entry point
does not even load textual, so that the CLI can import it for free."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PROBE = """
import json, sys
{body}
print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & {{'torch', 'textual'}})))
"""


def loaded_after(body: str, env: dict[str, str], cwd: Path) -> list[str]:
    result = subprocess.run([sys.executable, "-c", PROBE.format(body=body)], capture_output=True,
                            text=True, env=env, cwd=cwd, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_app_loads_textual_but_never_torch(child_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    body = """
import pkgutil, importlib, netdoctor.tui
for module in pkgutil.walk_packages(netdoctor.tui.__path__, "netdoctor.tui."):
    importlib.import_module(module.name)
import netdoctor.cli.run  # the seam that builds the live source
"""
    assert loaded_after(body, child_env, tmp_path) == ["textual"]


def test_the_package_entry_point_loads_neither(child_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert loaded_after("import netdoctor.tui", child_env, tmp_path) == []
