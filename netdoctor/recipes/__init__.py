"""Recipes: a training run described in a file (TOML, or Python for your own model and data),
trained under ``netdoctor.watch`` and patched by the fixes the doctor suggests.

``load_recipe``, ``builtin_recipes`` and ``apply_fix`` need no torch; ``train`` (and the
trainer's records) import it when first used, so that ``netdoctor recipes`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from netdoctor.recipes.loader import RecipeInfo, builtin_recipes, load_recipe
from netdoctor.recipes.patches import Patch, apply_fix, patch_for
from netdoctor.recipes.spec import Recipe

if TYPE_CHECKING:  # pragma: no cover
    from netdoctor.recipes.trainer import Controls, Progress, TrainResult, train

_TRAINER_NAMES = ("Controls", "Progress", "TrainResult", "train")


def __getattr__(name: str) -> Any:
    if name in _TRAINER_NAMES:
        from netdoctor.recipes import trainer

        return getattr(trainer, name)
    raise AttributeError(f"module 'netdoctor.recipes' has no attribute {name!r}")


__all__ = ["Controls", "Patch", "Progress", "Recipe", "RecipeInfo", "TrainResult", "apply_fix",
           "builtin_recipes", "load_recipe", "patch_for", "train"]
