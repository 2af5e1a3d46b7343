"""Every fix id of the catalogue (``netdoctor.rules.fixes``) as a change to a recipe.

A diagnosis says what to change; a patch makes that change in a recipe, so that ``netdoctor
fix`` can re-run it and show, with numbers, whether the fix worked. Each patch is the textbook
first step for its fix (He init, clip the norm at 1, lr / 10, dropout 0.3...), not a search:
a fix that needs tuning shows it by leaving the diagnosis in place, and the next round tries
again (``lower_lr`` twice is lr / 100).

A patch that would change nothing (``he_init`` on a recipe that already uses He init) is not
applicable: ``netdoctor fix`` then tries the diagnosis's next fix. No torch here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from netdoctor.errors import ConfigError
from netdoctor.recipes.spec import Recipe

#: Activations for which He init is the right scale (ReLU-like: about half the units pass).
RELU_LIKE = ("relu", "leaky_relu", "gelu", "elu")


@dataclass(frozen=True)
class Change:
    """One key's old and new value."""

    key: str
    before: Any
    after: Any

    def describe(self) -> str:
        """``model.init: 'normal' -> 'he'`` (the before/after table's patch line)."""
        return f"{self.key}: {_show(self.before)} -> {_show(self.after)}"


@dataclass(frozen=True)
class Patch:
    """A fix applied to a recipe: what changed, and the recipe after the change."""

    fix_id: str
    changes: tuple[Change, ...]
    recipe: Recipe

    def describe(self) -> str:
        return "; ".join(change.describe() for change in self.changes)


def _round(value: float) -> float:
    """lr / 10 as 0.01, not 0.010000000000000002: the value is shown and written to TOML."""
    return float(f"{value:.6g}")


def _he_init(r: Recipe) -> dict[str, Any]:
    return {"model.init": "he"}


def _xavier_init(r: Recipe) -> dict[str, Any]:
    return {"model.init": "xavier"}


def _batchnorm(r: Recipe) -> dict[str, Any]:
    return {"model.batchnorm": True}


def _grad_clipping(r: Recipe) -> dict[str, Any]:
    current = r.train.clip_grad_norm
    return {"train.clip_grad_norm": 1.0} if current == 0 or current > 1.0 else {}


def _lr_decay(r: Recipe) -> dict[str, Any]:
    s = r.schedule
    if s.kind == "none":
        return {"schedule.kind": "exponential", "schedule.gamma": 0.9}
    if s.kind in ("step", "exponential"):  # keep the schedule, decay faster
        return {"schedule.gamma": _round(s.gamma * s.gamma)}
    if s.kind == "plateau":
        return {"schedule.factor": _round(s.factor / 2)}
    return {}  # cosine already decays to zero


def _lower_lr(r: Recipe) -> dict[str, Any]:
    return {"optimizer.lr": _round(r.optimizer.lr / 10)}


def _raise_lr(r: Recipe) -> dict[str, Any]:
    return {"optimizer.lr": _round(r.optimizer.lr * 10)}


def _early_stopping(r: Recipe) -> dict[str, Any]:
    current = r.train.early_stopping
    return {"train.early_stopping": 3} if current == 0 or current > 3 else {}


def _dropout(r: Recipe) -> dict[str, Any]:
    return {"model.dropout": 0.3} if r.model and r.model.dropout < 0.3 else {}


def _weight_decay(r: Recipe) -> dict[str, Any]:
    return {"optimizer.weight_decay": 5e-4} if r.optimizer.weight_decay < 5e-4 else {}


def _relu_activation(r: Recipe) -> dict[str, Any]:
    return {"model.activation": "relu"}


def _leaky_relu(r: Recipe) -> dict[str, Any]:
    return {"model.activation": "leaky_relu"}


def _residual_connections(r: Recipe) -> dict[str, Any]:
    # resmlp/rescnn have them already; recurrent models carry state through time instead
    return {"model.residual": True} if r.model and r.model.kind in ("mlp", "cnn") else {}


def _normalize_inputs(r: Recipe) -> dict[str, Any]:
    return {"data.normalize": True, "data.input_scale": 1.0, "data.input_offset": 0.0}


def _stable_loss(r: Recipe) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if r.loss.kind == "manual_log_softmax":
        changes["loss.kind"] = "auto"  # cross-entropy on logits for classes
    if r.model and r.model.output_softmax:
        changes["model.output_softmax"] = False  # logits, not probabilities, into the loss
    return changes


def _adam(r: Recipe) -> dict[str, Any]:
    return {"optimizer.kind": "adam", "optimizer.lr": 1e-3, "optimizer.momentum": 0.0}


def _more_capacity(r: Recipe) -> dict[str, Any]:
    if r.model is None:
        return {}
    changes: dict[str, Any] = {"model.width": r.model.width * 2}
    if r.model.depth < 2:
        changes["model.depth"] = r.model.depth + 1
    return changes


def _train_longer(r: Recipe) -> dict[str, Any]:
    return {"train.epochs": r.train.epochs * 2}


def _data_augmentation(r: Recipe) -> dict[str, Any]:
    return {"data.augment": True}


def _unfreeze_parameters(r: Recipe) -> dict[str, Any]:
    return {"model.freeze": ()}


def _break_symmetry(r: Recipe) -> dict[str, Any]:
    m = r.model
    if m is None:
        return {}
    symmetric = m.init in ("zeros", "constant") or (m.init == "normal" and m.init_std == 0)
    if not symmetric:
        return {}
    return {"model.init": "he" if m.activation in RELU_LIKE else "default"}


#: Fix id -> the recipe keys it sets (from the recipe as it is).
PATCHES: dict[str, Callable[[Recipe], dict[str, Any]]] = {
    "he_init": _he_init,
    "xavier_init": _xavier_init,
    "batchnorm": _batchnorm,
    "grad_clipping": _grad_clipping,
    "lr_decay": _lr_decay,
    "lower_lr": _lower_lr,
    "raise_lr": _raise_lr,
    "early_stopping": _early_stopping,
    "dropout": _dropout,
    "weight_decay": _weight_decay,
    "relu_activation": _relu_activation,
    "leaky_relu": _leaky_relu,
    "residual_connections": _residual_connections,
    "normalize_inputs": _normalize_inputs,
    "stable_loss": _stable_loss,
    "adam": _adam,
    "more_capacity": _more_capacity,
    "train_longer": _train_longer,
    "data_augmentation": _data_augmentation,
    "unfreeze_parameters": _unfreeze_parameters,
    "break_symmetry": _break_symmetry,
}


def patch_for(recipe: Recipe, fix_id: str) -> Patch | None:
    """The patch for ``fix_id``, or None when it would change nothing in this recipe.

    Raises:
        ConfigError: an unknown fix id, or a Python recipe (its model is code, not settings).
    """
    if fix_id not in PATCHES:
        raise ConfigError(f"no recipe patch for fix {fix_id!r}; fixes with one: "
                          f"{', '.join(PATCHES)}")
    if recipe.is_python:
        from netdoctor.rules.fixes import FIXES

        raise ConfigError(f"{recipe.source}: a Python recipe cannot be patched (its model and "
                          f"data are code); make the change in the file: "
                          f"{FIXES.get(fix_id, fix_id)}")
    wanted = PATCHES[fix_id](recipe)
    changes = tuple(Change(key, recipe.get(key), value) for key, value in wanted.items()
                    if recipe.get(key) != value)
    if not changes:
        return None
    patched = recipe.with_values({c.key: c.after for c in changes},
                                 where=f"{recipe.source} with fix {fix_id}")
    return Patch(fix_id, changes, patched)


def apply_fix(recipe: Recipe, fix_id: str) -> Recipe:
    """``recipe`` with the patch of ``fix_id`` (``netdoctor run --fix ID``); ConfigError when
    there is none or it would change nothing."""
    patch = patch_for(recipe, fix_id)
    if patch is None:
        keys = ", ".join(f"{k} = {_show(recipe.get(k))}" for k in PATCHES[fix_id](recipe))
        already = f" ({keys})" if keys else ""
        raise ConfigError(f"{recipe.source}: fix {fix_id} changes nothing in this recipe"
                          f"{already}")
    return patch.recipe


def _show(value: Any) -> str:
    return repr(list(value)) if isinstance(value, tuple) else repr(value)


__all__ = ["PATCHES", "Change", "Patch", "apply_fix", "patch_for"]
