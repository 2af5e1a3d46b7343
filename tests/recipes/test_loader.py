"""Finding and reading recipes: built-in names, TOML files, Python files, ``--set``."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from netdoctor.errors import ConfigError
from netdoctor.recipes import builtin_recipes, load_recipe
from netdoctor.recipes.loader import builtin_dir

REPO = Path(__file__).resolve().parents[2]

TINY = """\
[recipe]
description = "a tiny test recipe"
expect = ["vanishing_gradients"]

[data]
kind = "blobs"
samples = 60

[model]
kind = "mlp"
depth = 1
width = 8
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_builtin_recipes_are_the_repositorys_recipes_folder() -> None:
    assert builtin_dir().resolve() == (REPO / "recipes").resolve()
    found = {info.name: info for info in builtin_recipes()}
    assert {"healthy_mlp", "healthy_cnn", "healthy_lstm"} <= set(found)
    for name in ("healthy_mlp", "healthy_cnn", "healthy_lstm"):
        assert found[name].expect == () and found[name].description
        assert found[name].path == builtin_dir() / f"{name}.toml"


def test_a_builtin_loads_by_name() -> None:
    recipe = load_recipe("healthy_mlp")
    assert recipe.name == "healthy_mlp"
    assert Path(recipe.source).resolve() == (builtin_dir() / "healthy_mlp.toml").resolve()
    assert recipe.model is not None and recipe.model.kind == "mlp"


def test_a_file_loads_by_path_and_takes_overrides(tmp_path: Path) -> None:
    path = write(tmp_path, "tiny.toml", TINY)
    recipe = load_recipe(str(path), ["model.width=4", "train.epochs=2", "train.seed=7"])
    assert recipe.name == "tiny" and recipe.description == "a tiny test recipe"
    assert recipe.expect == ("vanishing_gradients",)
    assert recipe.model.width == 4  # type: ignore[union-attr]
    assert recipe.train.epochs == 2 and recipe.train.seed == 7


def test_overrides_apply_together(tmp_path: Path) -> None:
    path = write(tmp_path, "m.toml", TINY + "\n[optimizer]\nmomentum = 0.9\n")
    recipe = load_recipe(str(path), ["optimizer.kind=adam", "optimizer.momentum=0"])
    assert recipe.optimizer.kind == "adam"
    with pytest.raises(ConfigError) as caught:
        load_recipe(str(path), ["optimizer.kind=adam"])
    assert "with --set optimizer.kind=adam" in str(caught.value)


def test_a_local_file_wins_over_a_builtin_name(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "healthy_mlp", TINY)  # a file with a built-in's name, no suffix
    with pytest.raises(ConfigError, match=r"a recipe is a \.toml or a \.py file"):
        load_recipe("healthy_mlp")


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("healthy_mpl", "no recipe named 'healthy_mpl': not a file, and not a built-in recipe; "
                        "did you mean 'healthy_mlp'? built-in: "),
        ("zzz", "no recipe named 'zzz'"),
        ("missing.toml", "missing.toml: no such recipe file"),
        ("sub/missing", "sub/missing: no such recipe file"),
    ],
)
def test_unknown_recipes_are_one_line(name: str, needle: str, tmp_path: Path,
                                      monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_recipe(name)
    assert needle in str(caught.value) and "\n" not in str(caught.value)


def test_toml_syntax_errors_name_the_file_and_line(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "bad.toml", "[data]\nkind = \"spirals\"\nsamples = = 3\n")
    with pytest.raises(ConfigError) as caught:
        load_recipe("bad.toml")
    assert str(caught.value).startswith("bad.toml:3: invalid TOML: ")
    assert "column" in str(caught.value)


def test_validation_errors_name_the_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "x.toml", TINY.replace('width = 8', 'width = 8\nactivation = "relu6"'))
    with pytest.raises(ConfigError, match=r"^x\.toml: model\.activation = 'relu6' is not one "):
        load_recipe("x.toml")


def test_a_folder_is_not_a_recipe(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a folder"):
        load_recipe(str(tmp_path))


PYTHON_RECIPE = '''\
"""A linear model on two Gaussian clusters, written by hand."""
import torch
from torch import nn

RECIPE = {"train": {"epochs": 2, "batch_size": 16}, "recipe": {"expect": []}}


def build(seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(80, 3, generator=g)
    y = (x[:, 0] > 0).long()
    model = nn.Sequential(nn.Linear(3, 2))
    return model, {"train": (x[:60], y[:60]), "val": (x[60:], y[60:])}, None
'''


def test_a_python_recipe_loads(tmp_path: Path) -> None:
    path = write(tmp_path, "hand.py", PYTHON_RECIPE)
    recipe = load_recipe(str(path), ["train.epochs=3"])
    assert recipe.is_python and recipe.name == "hand"
    assert recipe.description == "A linear model on two Gaussian clusters, written by hand."
    assert recipe.train.epochs == 3 and recipe.train.batch_size == 16
    assert recipe.data is None and recipe.model is None
    with pytest.raises(ConfigError, match="cannot be set on a Python recipe"):
        load_recipe(str(path), ["model.width=3"])


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("x = 1\n", "this file has no build()"),
        ("def build(seed):\n    return (\n", ":2: Python syntax error"),
        ("import math\nmath.sqrt(-1)\n", ":2: the recipe failed while loading: ValueError"),
        ("RECIPE = [1]\ndef build(seed): pass\n", "RECIPE must be a dict of sections"),
        ("RECIPE = {'model': {}}\ndef build(seed): pass\n", "a Python recipe has no [model]"),
        ("RECIPE = {'train': {'epochs': 0}}\ndef build(seed): pass\n",
         "train.epochs = 0 must be at least 1"),
    ],
)
def test_python_recipe_errors_are_one_line(text: str, needle: str, tmp_path: Path,
                                           monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "p.py", text)
    with pytest.raises(ConfigError) as caught:
        load_recipe("p.py")
    message = str(caught.value)
    assert message.startswith("p.py") and needle in message and "\n" not in message
