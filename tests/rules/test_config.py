"""load_config: pyproject, a --config file, CLI lists; every mistake is one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest

from netdoctor.errors import ConfigError
from netdoctor.rules import RuleConfig, all_rules, get_rule, load_config


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


PYPROJECT = """
[project]
name = "demo"

[tool.netdoctor]
ignore = ["underfitting"]
fail_on = "warning"   # belongs to the CLI: left alone here

[tool.netdoctor.thresholds.overfitting]
patience = 5
min_rise = 0.2
"""


def test_defaults_without_files():
    config = load_config()
    assert config == RuleConfig()
    assert [r.id for r in config.rules()] == [r.id for r in all_rules()]


def test_pyproject_table(tmp_path):
    config = load_config(pyproject=write(tmp_path, "pyproject.toml", PYPROJECT))
    assert config.ignore == frozenset({"underfitting"}) and config.select is None
    assert config.thresholds == {"overfitting": {"patience": 5.0, "min_rise": 0.2}}
    values = config.values(get_rule("overfitting"))
    assert values["patience"] == 5.0 and values["gap"] == 0.1  # untouched default
    assert "underfitting" not in [r.id for r in config.rules()]


def test_config_file_then_cli_override_pyproject(tmp_path):
    pyproject = write(tmp_path, "pyproject.toml", PYPROJECT)
    extra = write(
        tmp_path,
        "netdoctor.toml",
        'select = ["overfitting", "nan_loss"]\nignore = "nan_loss"\n'
        "[thresholds.overfitting]\npatience = 2\n",
    )
    config = load_config(pyproject=pyproject, config=extra, select=["overfitting,underfitting"])
    assert config.select == frozenset({"overfitting", "underfitting"})
    assert config.ignore == frozenset({"underfitting", "nan_loss"})
    assert config.thresholds["overfitting"] == {"patience": 2.0, "min_rise": 0.2}
    assert [r.id for r in config.rules()] == ["overfitting"]


def test_pyproject_without_a_netdoctor_table(tmp_path):
    path = write(tmp_path, "pyproject.toml", '[project]\nname = "x"\n')
    assert load_config(pyproject=path) == RuleConfig()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[tool.netdoctor]\nselect = ["nan_los"]\n',
            "pyproject.toml: tool.netdoctor.select: unknown rule id 'nan_los' (known: nan_loss,",
        ),
        (
            "[tool.netdoctor.thresholds.overfitting]\npatiense = 3\n",
            "pyproject.toml: [tool.netdoctor.thresholds.overfitting] unknown threshold "
            "'patiense' for rule overfitting (known: patience,",
        ),
        (
            "[tool.netdoctor.thresholds.overfit]\npatience = 3\n",
            "pyproject.toml: [tool.netdoctor.thresholds.overfit] unknown rule id 'overfit'",
        ),
        (
            '[tool.netdoctor.thresholds.overfitting]\npatience = "three"\n',
            "pyproject.toml: [tool.netdoctor.thresholds.overfitting] patience: expected a "
            "number, got 'three'",
        ),
        (
            "[tool.netdoctor.thresholds.overfitting]\npatience = true\n",
            "patience: expected a number, got True",
        ),
        ("[tool.netdoctor]\nselect = [1]\n", "select: expected a list of rule ids, got 1"),
        ("[tool.netdoctor\n", "pyproject.toml: invalid TOML"),
    ],
)
def test_mistakes_name_the_file_and_key(tmp_path, text, message):
    path = write(tmp_path, "pyproject.toml", text)
    with pytest.raises(ConfigError) as caught:
        load_config(pyproject=path)
    assert message in str(caught.value)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_config_file_keys_are_top_level(tmp_path):
    path = write(tmp_path, "nd.toml", "[thresholds.nan_loss]\nwindoww = 3\n")
    with pytest.raises(ConfigError, match=r"nd.toml: \[thresholds.nan_loss\] unknown threshold"):
        load_config(config=path)


def test_missing_file_and_unknown_cli_ids(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_config(config=tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="--ignore: unknown rule id 'dead_relus'"):
        load_config(ignore=["dead_relus"])
