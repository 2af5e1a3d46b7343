"""Rule settings for a command: ``[tool.netdoctor]`` of the nearest pyproject.toml, then flags.

The pyproject.toml is found the way ruff finds its own: from the current directory upward, the
first pyproject.toml that has a ``[tool.netdoctor]`` table. The rule engine
(``netdoctor.rules.load_config``) reads it, then a ``--config`` file, then the flags, later ones
winning; it also splits comma-separated ids. ``fail_on`` (for ``check``) is read here, from the
same two places: the rule engine leaves keys it does not know alone.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from netdoctor.errors import ConfigError
from netdoctor.gate import FailOn

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

if TYPE_CHECKING:  # pragma: no cover
    from netdoctor.rules import RuleConfig


def rule_config(
    select: list[str] | None = None,
    ignore: list[str] | None = None,
    config: Path | None = None,
    cwd: Path | None = None,
) -> RuleConfig:
    """The rule configuration in force; raises ConfigError (bad file, unknown rule id...)."""
    from netdoctor.rules import load_config  # the engine loads only when a command needs it

    pyproject = find_pyproject(cwd or Path.cwd())
    return load_config(pyproject=pyproject, config=config, select=select, ignore=ignore)


def fail_on_setting(config: Path | None = None, cwd: Path | None = None) -> FailOn | None:
    """``fail_on`` from ``[tool.netdoctor]``, then from the top level of ``config`` (it wins)."""
    found: FailOn | None = None
    pyproject = find_pyproject(cwd or Path.cwd())
    if pyproject is not None:
        tool = _load(pyproject).get("tool", {})
        table = tool.get("netdoctor", {}) if isinstance(tool, dict) else {}
        if isinstance(table, dict) and "fail_on" in table:
            found = _fail_on(table["fail_on"], f"{pyproject}: tool.netdoctor.fail_on")
    if config is not None:
        data = _load(config)
        if "fail_on" in data:
            found = _fail_on(data["fail_on"], f"{config}: fail_on")
    return found


def _fail_on(value: Any, where: str) -> FailOn:
    choices = ", ".join(repr(f.value) for f in FailOn)
    if isinstance(value, str):
        try:
            return FailOn(value.lower())
        except ValueError:
            pass
    raise ConfigError(f"{where}: expected one of {choices}, got {value!r}")


def _load(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read it ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML ({exc})") from None


def find_pyproject(start: Path) -> Path | None:
    """The nearest pyproject.toml at or above ``start`` with a ``[tool.netdoctor]`` table."""
    for folder in (start, *start.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file() and _has_netdoctor_table(candidate):
            return candidate
    return None


def _has_netdoctor_table(path: Path) -> bool:
    tool = _load(path).get("tool")
    return isinstance(tool, dict) and "netdoctor" in tool

