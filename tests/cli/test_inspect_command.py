"""`netdoctor inspect` with a stand-in rule engine: formats, rule selection, settings lookup."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from netdoctor.cli.app import app
from netdoctor.cli.inspect import OutputFormat, View, choose_view
from netdoctor.cli.settings import find_pyproject

runner = CliRunner()


@pytest.fixture(autouse=True)
def _rules(fake_rules):
    return fake_rules


def test_text_report(small_log: Path) -> None:
    result = runner.invoke(app, ["inspect", str(small_log)])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "finished" in out
    assert "exploding_gradients" in out and "dead_relu" in out
    assert "[x1e7]" in out  # message text is not read as markup
    assert "grad_clipping" in out and "Lower the learning rate" in out
    assert "Sequential" in out and "SGD" in out
    assert result.stderr == ""


def test_explicit_text_format(small_log: Path) -> None:
    result = runner.invoke(app, ["inspect", str(small_log), "--format", "text"])
    assert result.exit_code == 0
    assert "exploding_gradients" in result.stdout


def test_json_report_is_alone_on_stdout(small_log: Path) -> None:
    result = runner.invoke(app, ["inspect", str(small_log), "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)  # stdout is one JSON document and nothing else
    assert set(report) == {"run", "diagnoses"}
    assert report["run"]["path"] == str(small_log)
    assert [d["rule"] for d in report["diagnoses"]] == ["exploding_gradients", "dead_relu"]
    first = report["diagnoses"][0]
    assert set(first) == {"rule", "severity", "step", "layer", "message", "evidence", "fixes"}
    assert first["fixes"][0] == {"id": "grad_clipping", "text": first["fixes"][0]["text"]}
    assert result.stderr == ""


def test_format_is_case_insensitive(small_log: Path) -> None:
    result = runner.invoke(app, ["inspect", str(small_log), "--format", "JSON"])
    assert result.exit_code == 0
    json.loads(result.stdout)


def test_bad_format_is_a_usage_error(small_log: Path) -> None:
    result = runner.invoke(app, ["inspect", str(small_log), "--format", "xml"])
    assert result.exit_code == 2
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--select", "dead_relu"], ["dead_relu"]),
        (["--ignore", "dead_relu"], ["exploding_gradients"]),
        (["--select", "dead_relu,exploding_gradients"], ["exploding_gradients", "dead_relu"]),
        (["--select", "dead_relu", "--select", "exploding_gradients"],
         ["exploding_gradients", "dead_relu"]),
        (["--select", "dead_relu,exploding_gradients", "--ignore", "exploding_gradients"],
         ["dead_relu"]),
    ],
)
def test_select_and_ignore(small_log: Path, flags: list[str], expected: list[str]) -> None:
    result = runner.invoke(app, ["inspect", str(small_log), "--format", "json", *flags])
    assert result.exit_code == 0, result.output
    assert [d["rule"] for d in json.loads(result.stdout)["diagnoses"]] == expected


@pytest.mark.parametrize("flag", ["--select", "--ignore"])
def test_unknown_rule_id_is_one_line_exit_2(small_log: Path, flag: str) -> None:
    result = runner.invoke(app, ["inspect", str(small_log), flag, "no_such_rule"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == "netdoctor: error: unknown rule id 'no_such_rule'\n"


def test_settings_come_from_the_nearest_pyproject_with_a_netdoctor_table(
    small_log: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_rules
) -> None:
    project = tmp_path / "project"
    (project / "src" / "pkg").mkdir(parents=True)
    (project / "pyproject.toml").write_text('[tool.netdoctor]\nignore = ["dead_relu"]\n')
    # a nearer pyproject without the table does not hide the project's settings (ruff does this)
    (project / "src" / "pyproject.toml").write_text('[project]\nname = "x"\n')
    monkeypatch.chdir(project / "src" / "pkg")
    result = runner.invoke(app, ["inspect", str(small_log), "--select", "dead_relu"])
    assert result.exit_code == 0, result.output
    config = fake_rules.configs[-1]
    assert config.pyproject == project / "pyproject.toml"
    assert config.select == ["dead_relu"] and config.ignore is None and config.config is None


def test_config_file_and_pyproject_both_go_to_the_engine(
    small_log: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_rules
) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.netdoctor]\n")
    settings = tmp_path / "netdoctor.toml"
    settings.write_text("ignore = []\n")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["inspect", str(small_log), "--config", str(settings)])
    assert result.exit_code == 0, result.output
    assert fake_rules.configs[-1].pyproject == tmp_path / "pyproject.toml"
    assert fake_rules.configs[-1].config == settings


def test_missing_config_file_is_one_line(small_log: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["inspect", str(small_log), "--config", str(tmp_path / "no.toml")])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("netdoctor: error: ")


def test_broken_pyproject_is_one_line(
    small_log: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.netdoctor\nselect = \n")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["inspect", str(small_log)])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert "pyproject.toml: invalid TOML" in result.stderr


def test_find_pyproject_skips_files_without_a_table(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.ruff]\nline-length = 100\n")
    assert find_pyproject(tmp_path) != tmp_path / "pyproject.toml"


def test_view_seam_picks_the_tui_for_a_terminal_without_format() -> None:
    assert choose_view(None, stdout_is_terminal=False) is View.TEXT
    assert choose_view(None, stdout_is_terminal=True) is View.TUI
    assert choose_view(OutputFormat.TEXT, stdout_is_terminal=True) is View.TEXT
    assert choose_view(OutputFormat.JSON, stdout_is_terminal=True) is View.JSON
