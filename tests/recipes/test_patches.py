"""Fix ids as recipe patches: every catalogue fix has one, each changes what its text says, a
patch that would change nothing is not applicable, Python recipes are refused."""

from __future__ import annotations

from typing import Any

import pytest

from netdoctor.errors import ConfigError
from netdoctor.recipes import apply_fix, patch_for
from netdoctor.recipes.patches import PATCHES
from netdoctor.recipes.spec import Recipe, recipe_from_tables
from netdoctor.rules.fixes import FIXES

#: A recipe where every fix has something to change.
EVERYTHING_WRONG: dict[str, Any] = {
    "data": {"kind": "spirals", "normalize": False, "input_scale": 50.0},
    "model": {"kind": "mlp", "depth": 1, "width": 16, "activation": "sigmoid",
              "init": "zeros", "freeze": ["hidden.0"], "output_softmax": True},
    "optimizer": {"kind": "sgd", "lr": 0.1},
    "loss": {"kind": "manual_log_softmax"},
    "train": {"epochs": 4},
}


def recipe(**changes: dict[str, Any]) -> Recipe:
    tables = {k: dict(v) for k, v in EVERYTHING_WRONG.items()}
    for section, values in changes.items():
        tables.setdefault(section, {}).update(values)
    return recipe_from_tables(tables, "x", "recipes/x.toml")


#: design.md's fix ids: each is a change of settings, so each has a recipe patch. (Later fixes
#: such as check_targets or sync_replicas change code, which no recipe key expresses.)
DESIGN_FIX_IDS = {
    "he_init", "xavier_init", "batchnorm", "grad_clipping", "lr_decay", "lower_lr", "raise_lr",
    "early_stopping", "dropout", "weight_decay", "relu_activation", "leaky_relu",
    "residual_connections", "normalize_inputs", "stable_loss", "adam", "more_capacity",
    "train_longer", "data_augmentation", "unfreeze_parameters", "break_symmetry",
}


def test_every_design_fix_id_has_a_patch_and_every_patch_a_fix() -> None:
    assert set(PATCHES) == DESIGN_FIX_IDS
    assert set(PATCHES) <= set(FIXES)


@pytest.mark.parametrize("fix_id", sorted(PATCHES))
def test_every_patch_changes_a_valid_recipe(fix_id: str) -> None:
    before = recipe()
    patch = patch_for(before, fix_id)
    assert patch is not None and patch.changes and patch.fix_id == fix_id
    for change in patch.changes:
        assert before.get(change.key) == change.before
        assert patch.recipe.get(change.key) == change.after != change.before
    assert apply_fix(before, fix_id) == patch.recipe
    assert patch.recipe.source == before.source and patch.recipe.name == before.name


@pytest.mark.parametrize(
    ("fix_id", "changes", "described"),
    [
        ("he_init", {}, "model.init: 'zeros' -> 'he'"),
        ("xavier_init", {}, "model.init: 'zeros' -> 'xavier'"),
        ("batchnorm", {}, "model.batchnorm: False -> True"),
        ("grad_clipping", {}, "train.clip_grad_norm: 0.0 -> 1.0"),
        ("grad_clipping", {"train": {"clip_grad_norm": 5.0}}, "train.clip_grad_norm: 5.0 -> 1.0"),
        ("lr_decay", {}, "schedule.kind: 'none' -> 'exponential'"),
        ("lr_decay", {"schedule": {"kind": "exponential"}}, "schedule.gamma: 0.9 -> 0.81"),
        ("lr_decay", {"schedule": {"kind": "step", "gamma": 0.5}}, "schedule.gamma: 0.5 -> 0.25"),
        ("lr_decay", {"schedule": {"kind": "plateau"}}, "schedule.factor: 0.5 -> 0.25"),
        ("lower_lr", {}, "optimizer.lr: 0.1 -> 0.01"),
        ("raise_lr", {"optimizer": {"lr": 1e-4}}, "optimizer.lr: 0.0001 -> 0.001"),
        ("early_stopping", {}, "train.early_stopping: 0 -> 3"),
        ("dropout", {}, "model.dropout: 0.0 -> 0.3"),
        ("weight_decay", {}, "optimizer.weight_decay: 0.0 -> 0.0005"),
        ("relu_activation", {}, "model.activation: 'sigmoid' -> 'relu'"),
        ("leaky_relu", {}, "model.activation: 'sigmoid' -> 'leaky_relu'"),
        ("residual_connections", {}, "model.residual: False -> True"),
        ("normalize_inputs", {}, "data.normalize: False -> True; data.input_scale: 50.0 -> 1.0"),
        ("stable_loss", {}, "loss.kind: 'manual_log_softmax' -> 'auto'; model.output_softmax: "
                            "True -> False"),
        ("adam", {}, "optimizer.kind: 'sgd' -> 'adam'; optimizer.lr: 0.1 -> 0.001"),
        ("more_capacity", {}, "model.width: 16 -> 32; model.depth: 1 -> 2"),
        ("more_capacity", {"model": {"depth": 3}}, "model.width: 16 -> 32"),
        ("train_longer", {}, "train.epochs: 4 -> 8"),
        ("data_augmentation", {}, "data.augment: False -> True"),
        ("unfreeze_parameters", {}, "model.freeze: ['hidden.0'] -> []"),
        ("break_symmetry", {}, "model.init: 'zeros' -> 'default'"),
        ("break_symmetry", {"model": {"activation": "relu"}}, "model.init: 'zeros' -> 'he'"),
    ],
)
def test_patches_describe_their_change(fix_id: str, changes: dict[str, dict[str, Any]],
                                       described: str) -> None:
    patch = patch_for(recipe(**changes), fix_id)
    assert patch is not None and patch.describe() == described


def test_adam_resets_momentum_it_does_not_use() -> None:
    patched = apply_fix(recipe(optimizer={"momentum": 0.9}), "adam")
    assert patched.optimizer.kind == "adam" and patched.optimizer.momentum == 0.0


@pytest.mark.parametrize(
    ("fix_id", "changes"),
    [
        ("he_init", {"model": {"init": "he"}}),
        ("grad_clipping", {"train": {"clip_grad_norm": 0.5}}),
        ("lr_decay", {"schedule": {"kind": "cosine"}}),
        ("residual_connections", {"model": {"kind": "resmlp"}}),
        ("break_symmetry", {"model": {"init": "normal", "init_std": 0.01}}),
        ("unfreeze_parameters", {"model": {"freeze": []}}),
        ("stable_loss", {"loss": {"kind": "auto"}, "model": {"output_softmax": False}}),
    ],
)
def test_a_patch_that_changes_nothing_is_not_applicable(
        fix_id: str, changes: dict[str, dict[str, Any]]) -> None:
    before = recipe(**changes)
    assert patch_for(before, fix_id) is None
    with pytest.raises(ConfigError, match=f"fix {fix_id} changes nothing in this recipe"):
        apply_fix(before, fix_id)


def test_patches_chain() -> None:
    twice = apply_fix(apply_fix(recipe(), "lower_lr"), "lower_lr")
    assert twice.optimizer.lr == 0.001


def test_unknown_fix_ids_and_python_recipes_are_refused() -> None:
    with pytest.raises(ConfigError, match="no recipe patch for fix 'more_data'"):
        apply_fix(recipe(), "more_data")
    python = recipe_from_tables({}, "p", "p.py", builder=lambda seed: None)
    with pytest.raises(ConfigError) as caught:
        apply_fix(python, "he_init")
    assert "p.py: a Python recipe cannot be patched" in str(caught.value)
    assert "kaiming_normal_" in str(caught.value)  # the fix's text says what to change
