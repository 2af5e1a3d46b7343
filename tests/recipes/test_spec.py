"""Recipe validation: every error is one line naming the file, the dotted key, the bad value and
what is allowed; ``--set`` values are typed by the schema; a recipe survives TOML round trips."""

from __future__ import annotations

from typing import Any

import pytest

from netdoctor.errors import ConfigError
from netdoctor.recipes.loader import toml_loads
from netdoctor.recipes.spec import (
    CHOICES,
    SECTIONS,
    DataSpec,
    ModelSpec,
    Recipe,
    dotted_keys,
    parse_override,
    recipe_from_tables,
)

SOURCE = "recipes/x.toml"


def tables(**changes: dict[str, Any]) -> dict[str, Any]:
    base: dict[str, Any] = {"data": {"kind": "spirals"}, "model": {"kind": "mlp"}}
    for section, values in changes.items():
        base[section] = {**base.get(section, {}), **values}
    return base


def load(**changes: dict[str, Any]) -> Recipe:
    return recipe_from_tables(tables(**changes), "x", SOURCE)


def error_of(**changes: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        load(**changes)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{SOURCE}: ")
    return message


def test_defaults_fill_every_section() -> None:
    recipe = load()
    assert recipe.data == DataSpec(kind="spirals")
    assert recipe.model == ModelSpec(kind="mlp")
    assert recipe.optimizer.kind == "sgd" and recipe.optimizer.lr == 0.1
    assert recipe.schedule.kind == "none" and recipe.loss.kind == "auto"
    assert recipe.train.epochs == 10 and recipe.train.device == "auto"
    assert recipe.description == "" and recipe.expect == ()
    assert not recipe.is_python


def test_a_bad_choice_lists_the_allowed_values() -> None:
    message = error_of(model={"activation": "relu6"})
    assert message == (f"{SOURCE}: model.activation = 'relu6' is not one of "
                       f"{', '.join(CHOICES['model.activation'])} (did you mean 'relu'?)")


def test_a_close_choice_gets_a_suggestion_and_a_far_one_none() -> None:
    assert "did you mean 'sigmoid'?" in error_of(model={"activation": "sigmoide"})
    assert "did you mean" not in error_of(model={"activation": "swish"})


def test_an_unknown_key_lists_the_known_ones_and_suggests() -> None:
    message = error_of(model={"widht": 32})
    assert "unknown key model.widht (did you mean model.width?)" in message
    assert "known keys: kind, depth, width, activation" in message


def test_an_unknown_section_is_named() -> None:
    message = error_of(modle={"kind": "mlp"})
    assert "unknown section [modle] (did you mean [model]?)" in message
    assert "recipe, data, model, optimizer, schedule, loss, train" in message


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"train": {"epochs": "ten"}}, "train.epochs = 'ten' must be an integer"),
        ({"train": {"epochs": 2.5}}, "train.epochs = 2.5 must be an integer"),
        ({"train": {"epochs": True}}, "train.epochs = True must be an integer"),
        ({"optimizer": {"lr": "fast"}}, "optimizer.lr = 'fast' must be a number"),
        ({"data": {"normalize": "yes"}}, "data.normalize = 'yes' must be true or false"),
        ({"data": {"split": [0.5, 0.5]}}, "data.split = [0.5, 0.5] must be a list of 3 numbers"),
        ({"model": {"freeze": "hidden.0"}}, "model.freeze = 'hidden.0' must be a list of "
                                           "strings"),
        ({"optimizer": {"lr": 0}}, "optimizer.lr = 0.0 must be positive"),
        ({"model": {"dropout": 1.0}}, "model.dropout = 1.0 must be in [0, 1)"),
        ({"data": {"split": [0.5, 0.4, 0.4]}}, "must be three non-negative fractions"),
        ({"train": {"device": "gpu"}}, "train.device = 'gpu' is not one of auto, cpu, cuda, "
                                       "cuda:N, mps"),
        ({"train": {"device": "cuda:x"}}, "train.device = 'cuda:x' is not one of"),
        ({"recipe": {"expect": ["Not A Rule"]}}, "'Not A Rule' is not a rule id"),
    ],
)
def test_wrong_types_and_ranges(changes: dict[str, dict[str, Any]], needle: str) -> None:
    assert needle in error_of(**changes)


def test_cuda_with_an_index_is_valid() -> None:
    assert load(train={"device": "cuda:1"}).train.device == "cuda:1"


def test_integers_are_accepted_for_numbers() -> None:
    recipe = load(optimizer={"lr": 1})
    assert recipe.optimizer.lr == 1.0 and isinstance(recipe.optimizer.lr, float)


def test_missing_required_parts() -> None:
    with pytest.raises(ConfigError, match=r"missing section \[model\].*one of mlp, cnn"):
        recipe_from_tables({"data": {"kind": "spirals"}}, "x", SOURCE)
    with pytest.raises(ConfigError, match=r"missing key data.kind \(one of spirals, blobs"):
        recipe_from_tables({"data": {}, "model": {"kind": "mlp"}}, "x", SOURCE)


def test_cross_key_checks() -> None:
    assert "optimizer.momentum = 0.9 is for optimizer.kind = 'sgd' only" in error_of(
        optimizer={"kind": "adam", "momentum": 0.9})
    assert "model.depth = 0 must be at least 1 for model.kind = 'lstm'" in error_of(
        model={"kind": "lstm", "depth": 0})
    assert "data.path is needed for data.kind = 'csv'" in error_of(data={"kind": "csv"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("train.amp=true", ("train.amp", True)),
        ("data.normalize=no", ("data.normalize", False)),
        ("model.depth=5", ("model.depth", 5)),
        ("optimizer.lr=1e-3", ("optimizer.lr", 0.001)),
        ("optimizer.lr=2", ("optimizer.lr", 2.0)),
        ("model.activation=tanh", ("model.activation", "tanh")),
        ("model.activation='tanh'", ("model.activation", "tanh")),
        ("model.freeze=hidden.0,head", ("model.freeze", ("hidden.0", "head"))),
        ('model.freeze=["hidden.0"]', ("model.freeze", ("hidden.0",))),
        ("model.freeze=", ("model.freeze", ())),
        ("data.split=[0.8, 0.1, 0.1]", ("data.split", (0.8, 0.1, 0.1))),
        ("data.split=0.6,0.2,0.2", ("data.split", (0.6, 0.2, 0.2))),
        ("recipe.expect=nan_loss", ("recipe.expect", ("nan_loss",))),
        (" train.epochs = 3 ", ("train.epochs", 3)),
    ],
)
def test_set_values_are_typed_by_the_schema(text: str, expected: tuple[str, Any]) -> None:
    assert parse_override(text) == expected


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("model.depth=abc", "--set model.depth=abc: model.depth must be an integer, got 'abc'"),
        ("train.amp=maybe", "train.amp must be true or false, got 'maybe'"),
        ("model.depth", "expected section.key=value"),
        ("depth=3", "'depth' is not section.key"),
        ("modl.depth=3", "unknown section modl.depth (did you mean model.depth?)"),
        ("model.dept=3", "unknown key model.dept (did you mean model.depth?)"),
        ("model.activation=swish", "model.activation = 'swish' is not one of relu"),
        ("optimizer.lr=-1", "optimizer.lr = -1.0 must be positive"),
        ("optimizer.lr=inf", "optimizer.lr = inf must be a number"),
    ],
)
def test_bad_set_values_name_the_override(text: str, needle: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_override(text)
    assert needle in str(caught.value) and "\n" not in str(caught.value)


def test_with_values_validates_like_the_file() -> None:
    recipe = load()
    assert recipe.with_values({"model.width": 8}).model.width == 8  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match=r"model\.width = 0 must be at least 1"):
        recipe.with_values({"model.width": 0})
    # changes are checked together: adam with momentum 0 in one go is valid
    changed = load(optimizer={"momentum": 0.9}).with_values(
        {"optimizer.kind": "adam", "optimizer.momentum": 0.0})
    assert changed.optimizer.kind == "adam"


def test_python_recipes_have_no_data_or_model_to_set() -> None:
    recipe = recipe_from_tables({"train": {"epochs": 2}}, "p", "p.py", builder=lambda s: None)
    assert recipe.is_python and recipe.data is None and recipe.model is None
    with pytest.raises(ConfigError, match=r"model\.width cannot be set on a Python recipe"):
        recipe.with_values({"model.width": 3})
    with pytest.raises(ConfigError, match=r"a Python recipe has no \[data\] section"):
        recipe_from_tables({"data": {"kind": "spirals"}}, "p", "p.py", builder=lambda s: None)
    with pytest.raises(ConfigError, match="cannot be written as TOML"):
        recipe.to_toml()


def test_toml_round_trip_keeps_every_value() -> None:
    recipe = load(recipe={"description": 'say "hi"\\ now', "expect": ["vanishing_gradients"]},
                  model={"freeze": ["hidden.0"], "init": "normal", "init_std": 1e-5},
                  data={"split": [0.8, 0.1, 0.1]}, train={"amp": True, "epochs": 3})
    text = recipe.to_toml("written by a test\nsecond line")
    assert text.startswith("# written by a test\n# second line\n")
    again = recipe_from_tables(toml_loads(text), "x", SOURCE)
    assert again == recipe


def test_every_key_is_reachable_by_set() -> None:
    keys = dotted_keys()
    assert len(keys) == sum(len(cls.__dataclass_fields__) for cls in SECTIONS.values())
    assert {"model.init", "train.clip_grad_norm", "schedule.kind", "recipe.expect"} <= set(keys)


def test_choices_match_the_data_and_model_builders() -> None:
    from netdoctor.recipes import data, models

    assert CHOICES["data.kind"] == data.GENERATED_KINDS + data.USER_KINDS
    assert CHOICES["model.kind"] == models.MODEL_KINDS
    assert CHOICES["model.init"] == models.INITS
    assert set(CHOICES["model.activation"]) == set(models._ACTIVATIONS)


def test_the_readme_documents_every_key_with_its_default() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Recipes", 1)[1]
    block = section.split("```toml\n", 1)[1].split("```", 1)[0]
    documented = recipe_from_tables(toml_loads(block), "x", SOURCE)
    assert documented == load()  # every value shown is the default (kinds: spirals, mlp)
    shown = {f"{s}.{k}" for s, table in toml_loads(block).items() for k in table}
    assert shown == set(dotted_keys())
