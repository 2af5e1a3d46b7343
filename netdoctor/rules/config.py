"""Which rules run and with which thresholds: pyproject.toml, a --config file, CLI flags.

Sources apply in that order, later ones winning: ``select`` is replaced, ``ignore`` lists add
up, thresholds are overridden name by name. Every mistake (unknown rule id, unknown threshold
name, a value that is not a number) is a ConfigError of one line that names the file and key.
Keys other than select/ignore/thresholds are left alone: they belong to other settings.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from netdoctor.errors import ConfigError
from netdoctor.rules.base import Rule
from netdoctor.rules.registry import all_rules, get_rule, rule_ids


@dataclass(frozen=True)
class RuleConfig:
    """The rule selection and threshold overrides (rule id -> threshold name -> value)."""

    select: frozenset[str] | None = None
    ignore: frozenset[str] = frozenset()
    thresholds: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    def rules(self) -> tuple[Rule, ...]:
        """The selected rules, in documented order; ConfigError for an unknown id."""
        for rule_id in (self.select or frozenset()) | self.ignore:
            get_rule(rule_id)
        for rule_id in self.thresholds:
            self.values(get_rule(rule_id))  # unknown names fail here, selected or not
        return tuple(
            r
            for r in all_rules()
            if (self.select is None or r.id in self.select) and r.id not in self.ignore
        )

    def values(self, rule: Rule) -> dict[str, float]:
        """Threshold values for ``rule``: defaults, then overrides; ConfigError for a bad name."""
        values = rule.defaults()
        for name, value in self.thresholds.get(rule.id, {}).items():
            if name not in values:
                raise ConfigError(_unknown_threshold(rule, name))
            values[name] = float(value)
        return values


def load_config(
    pyproject: Path | None = None,
    config: Path | None = None,
    select: Iterable[str] | None = None,
    ignore: Iterable[str] | None = None,
) -> RuleConfig:
    """Merge [tool.netdoctor] of ``pyproject``, then ``config`` (top level), then CLI lists."""
    state = _State()
    if pyproject is not None:
        tool = _read(pyproject).get("tool", {})
        table = tool.get("netdoctor", {}) if isinstance(tool, dict) else {}
        state.apply(table, pyproject, "tool.netdoctor")
    if config is not None:
        state.apply(_read(config), config, "")
    if select is not None:
        state.select = _ids(_as_list(select), "--select")
    if ignore is not None:
        state.ignore |= _ids(_as_list(ignore), "--ignore")
    return RuleConfig(
        None if state.select is None else frozenset(state.select),
        frozenset(state.ignore),
        {k: dict(v) for k, v in state.thresholds.items()},
    )


@dataclass
class _State:
    select: set[str] | None = None
    ignore: set[str] = field(default_factory=set)
    thresholds: dict[str, dict[str, float]] = field(default_factory=dict)

    def apply(self, table: Any, path: Path, prefix: str) -> None:
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: [{prefix}] must be a table")
        key = f"{prefix}." if prefix else ""
        if "select" in table:
            self.select = _ids(table["select"], f"{path}: {key}select")
        if "ignore" in table:
            self.ignore |= _ids(table["ignore"], f"{path}: {key}ignore")
        thresholds = table.get("thresholds", {})
        if not isinstance(thresholds, dict):
            raise ConfigError(f"{path}: {key}thresholds must be a table of [rule_id] tables")
        for rule_id, values in thresholds.items():
            where = f"{path}: [{key}thresholds.{rule_id}]"
            try:
                rule = get_rule(rule_id)
            except ConfigError as exc:
                raise ConfigError(f"{where} {exc}") from None
            if not isinstance(values, dict):
                raise ConfigError(f"{where} must be a table of name = number")
            for name, value in values.items():
                if name not in rule.threshold_names():
                    raise ConfigError(f"{where} {_unknown_threshold(rule, name)}")
                self.thresholds.setdefault(rule_id, {})[name] = _number(value, f"{where} {name}")


def _read(path: Path) -> dict[str, Any]:
    try:
        with Path(path).open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the file ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML ({exc})") from None


def _as_list(value: Iterable[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _ids(value: Any, where: str) -> set[str]:
    """Rule ids from a list of ids or comma-separated ids; ConfigError for an unknown one."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple, set, frozenset)):
        raise ConfigError(f"{where}: expected a list of rule ids, got {value!r}")
    ids: set[str] = set()
    for item in items:
        if not isinstance(item, str):
            raise ConfigError(f"{where}: expected a list of rule ids, got {item!r}")
        for part in (p.strip() for p in item.split(",")):
            if part and part not in rule_ids():
                known = ", ".join(rule_ids())
                raise ConfigError(f"{where}: unknown rule id {part!r} (known: {known})")
            if part:
                ids.add(part)
    return ids


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    return float(value)


def _unknown_threshold(rule: Rule, name: str) -> str:
    known = ", ".join(rule.threshold_names())
    return f"unknown threshold {name!r} for rule {rule.id} (known: {known})"
