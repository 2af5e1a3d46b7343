"""Find and read recipes: built-in names, TOML files and Python files, plus ``--set`` overrides.

A recipe is named by a path (``my_recipes/deep.toml``, ``exp.py``) or by the name of a built-in
recipe (``healthy_mlp``: the file ``recipes/healthy_mlp.toml`` of the repository, installed with
the package as ``netdoctor/builtin_recipes``). A file that exists wins over a built-in name.

TOML recipes hold the keys described in ``netdoctor.recipes.spec`` (and the README).

Python recipes are for what TOML cannot say: your own model, your own data. A ``.py`` recipe
defines::

    def build(seed: int):
        ...
        return model, data, optimizer

- ``model``: any ``torch.nn.Module``.
- ``data``: one of

  * a ``netdoctor.recipes.data.Dataset`` (what ``make_dataset`` returns);
  * a mapping ``{"train": S, "val": S, "test": S}`` (``val`` and ``test`` optional);
  * a tuple ``(train, val)`` or ``(train, val, test)``;
  * a single split ``S`` (train only: no validation curve, so no overfitting check);

  where each split ``S`` is an ``(x, y)`` pair of tensors (batched by ``train.batch_size`` and
  shuffled with the seed) or any iterable of ``(x, y)`` batches, such as a ``DataLoader`` (used
  as it is, its own shuffling included). Integer targets are classes (cross-entropy and
  accuracy), float targets are regressed (mean squared error).
- ``optimizer``: a ``torch.optim.Optimizer`` over the model's parameters, or None to build one
  from the ``[optimizer]`` settings.

``build`` is called with the run's seed (``train.seed`` or ``--seed``) after
``torch.manual_seed(seed)``. The file may also define ``RECIPE``, a dict with the TOML sections
other than ``[data]`` and ``[model]`` (``{"recipe": {"description": ...}, "train": {"epochs":
5}, "schedule": {...}, "optimizer": {...}, "loss": {...}}``); ``--set`` changes those. Without
a description, the first line of the module docstring is used. Loading a Python recipe runs its
code: load only files you trust, as with any script. ``netdoctor fix`` cannot patch a Python
recipe (its model is code, not settings); apply the suggested fix in the file.
"""

from __future__ import annotations

import difflib
import importlib.util
import re
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netdoctor.errors import ConfigError
from netdoctor.recipes.spec import Recipe, parse_override, recipe_from_tables

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

#: The subpackage that holds the built-in recipes once installed (pyproject.toml maps it to the
#: repository's top-level ``recipes/``).
BUILTIN_PACKAGE = "netdoctor.builtin_recipes"
RECIPE_SUFFIXES = (".toml", ".py")


@dataclass(frozen=True)
class RecipeInfo:
    """One built-in recipe, as ``netdoctor recipes`` lists it."""

    name: str
    path: Path
    description: str
    expect: tuple[str, ...]


def builtin_dir() -> Path:
    """The folder of the built-in recipes: the installed package data, else (a checkout run
    with PYTHONPATH and no install) the repository's ``recipes/``."""
    try:
        spec = importlib.util.find_spec(BUILTIN_PACKAGE)
    except ImportError:
        spec = None
    for location in (spec.submodule_search_locations or []) if spec else []:
        if Path(location).is_dir():
            return Path(location)
    import netdoctor

    return Path(netdoctor.__file__).resolve().parent.parent / "recipes"


def builtin_recipes() -> list[RecipeInfo]:
    """Every built-in recipe, by name."""
    folder = builtin_dir()
    found = []
    for path in sorted(folder.glob("*.toml")):
        recipe = _load_toml(path)
        found.append(RecipeInfo(recipe.name, path, recipe.description, recipe.expect))
    return found


def builtin_names() -> list[str]:
    return sorted(p.stem for p in builtin_dir().glob("*.toml"))


def find_recipe(name_or_path: str) -> Path:
    """The file that ``name_or_path`` names; ConfigError (with the built-in names and a
    "did you mean") when there is none."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        raise ConfigError(f"{name_or_path}: is a folder; give a recipe file (.toml or .py) or "
                          "a built-in recipe name")
    looks_like_path = path.suffix in RECIPE_SUFFIXES or len(path.parts) > 1
    if not looks_like_path:
        builtin = builtin_dir() / f"{name_or_path}.toml"
        if builtin.is_file():
            return builtin
    if looks_like_path:
        raise ConfigError(f"{name_or_path}: no such recipe file")
    names = builtin_names()
    close = difflib.get_close_matches(name_or_path, names, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise ConfigError(f"no recipe named {name_or_path!r}: not a file, and not a built-in recipe; "
                      f"{hint}built-in: {', '.join(names)} (`netdoctor recipes` lists them)")


def load_recipe(name_or_path: str, overrides: Sequence[str] = ()) -> Recipe:
    """Read, validate and override a recipe. ``overrides`` are ``section.key=value`` texts,
    typed by the schema; every problem is a one-line ConfigError."""
    path = find_recipe(name_or_path)
    if path.suffix == ".py":
        recipe = _load_python(path)
    elif path.suffix == ".toml":
        recipe = _load_toml(path)
    else:
        raise ConfigError(f"{_display(path)}: a recipe is a .toml or a .py file")
    return apply_overrides(recipe, overrides)


def apply_overrides(recipe: Recipe, overrides: Sequence[str]) -> Recipe:
    """``recipe`` with the ``--set`` overrides applied (all at once: ``--set optimizer.kind=adam
    --set optimizer.momentum=0`` is valid even though the first alone is not)."""
    if not overrides:
        return recipe
    values: dict[str, Any] = {}
    for text in overrides:
        dotted, value = parse_override(text)
        values[dotted] = value
    where = f"{recipe.source} with --set {' '.join(overrides)}"
    return recipe.with_values(values, where=where)


def toml_loads(text: str, source: str = "") -> dict[str, Any]:
    """Parse TOML; a syntax error is one line with the file and the line number."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        found = re.search(r"\s*\(at line (\d+), column (\d+)\)", message)
        if found:
            message = message.replace(found.group(0), "") + f" (column {found.group(2)})"
            where = f"{source}:{found.group(1)}" if source else f"line {found.group(1)}"
        else:
            where = source or "TOML"
        raise ConfigError(f"{where}: invalid TOML: {message}") from None


# ---- TOML ---------------------------------------------------------------------------------------
def _display(path: Path) -> str:
    """The path as the user would type it: relative to the current folder when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _read_text(path: Path, source: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{source}: not a text file (UTF-8)") from None
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read the recipe ({exc.strerror})") from None


def _load_toml(path: Path) -> Recipe:
    source = _display(path)
    tables = toml_loads(_read_text(path, source), source)
    return recipe_from_tables(tables, path.stem, source)


# ---- Python -------------------------------------------------------------------------------------
def _load_python(path: Path) -> Recipe:
    source = _display(path)
    module_name = f"netdoctor_recipe_{re.sub(r'[^0-9a-zA-Z_]', '_', path.stem)}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:  # pragma: no cover - a readable .py always has one
        raise ConfigError(f"{source}: cannot load this file as Python")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise ConfigError(f"{source}:{exc.lineno}: Python syntax error: {exc.msg}") from None
    except Exception as exc:
        line = _line_in(path, exc)
        raise ConfigError(f"{source}{line}: the recipe failed while loading: "
                          f"{type(exc).__name__}: {exc}") from None
    build = getattr(module, "build", None)
    if not callable(build):
        raise ConfigError(f"{source}: a Python recipe defines build(seed) returning (model, "
                          "data, optimizer); this file has no build()")
    tables = getattr(module, "RECIPE", {})
    if not isinstance(tables, dict):
        raise ConfigError(f"{source}: RECIPE must be a dict of sections (e.g. {{'train': "
                          f"{{'epochs': 5}}}}), got {type(tables).__name__}")
    tables = {k: dict(v) if isinstance(v, dict) else v for k, v in tables.items()}
    about = tables.setdefault("recipe", {})
    doc = (module.__doc__ or "").strip().splitlines()
    if isinstance(about, dict) and "description" not in about and doc:
        about["description"] = doc[0]
    return recipe_from_tables(tables, path.stem, source, builder=build)


def _line_in(path: Path, exc: BaseException) -> str:
    """``":LINE"`` of the deepest frame of ``exc`` in ``path``, or ``""``."""
    target = str(path.resolve())
    line = ""
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename and str(Path(frame.filename).resolve()) == target:
            line = f":{frame.lineno}"
    return line


__all__ = ["RecipeInfo", "builtin_dir", "builtin_recipes", "find_recipe", "load_recipe",
           "toml_loads"]
