"""Every built-in recipe, trained at its default size, shows exactly what it says it shows:
the healthy ones no warning or error, the others at least their ``expect`` rule ids; and for a
pathological one, the top suggested fix (as ``netdoctor fix`` picks it) removes the diagnosis."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from netdoctor.cli.fix import choose_patch, problems
from netdoctor.recipes import builtin_recipes, load_recipe
from netdoctor.recipes.trainer import train

BUILTINS = builtin_recipes()
PATHOLOGICAL = [info for info in BUILTINS if info.expect]

#: A built-in recipe demonstrates in seconds (issue 4): a generous ceiling for a busy machine.
MAX_SECONDS = 30


@pytest.mark.parametrize("info", BUILTINS, ids=[info.name for info in BUILTINS])
def test_builtin_recipe_shows_what_it_expects(info, tmp_path: Path) -> None:
    recipe = load_recipe(info.name)
    started = time.perf_counter()
    result = train(recipe, tmp_path / f"{info.name}.sqlite")
    assert time.perf_counter() - started < MAX_SECONDS
    found = {d.rule for d in problems(result.diagnoses)}
    if info.expect:
        assert set(info.expect) <= found, [d.message for d in result.diagnoses]
    else:
        assert not found, [d.message for d in problems(result.diagnoses)]
        assert result.stopped in ("finished", "early_stopping")


@pytest.mark.parametrize("info", PATHOLOGICAL, ids=[info.name for info in PATHOLOGICAL])
def test_the_top_fix_removes_the_diagnosis(info, tmp_path: Path) -> None:
    recipe = load_recipe(info.name)
    before = train(recipe, tmp_path / "before.sqlite")
    top = problems(before.diagnoses)[0]
    patch = choose_patch(recipe, before.diagnoses)
    assert patch is not None, f"no recipe patch for the fixes of {top.rule}"
    after = train(patch.recipe, tmp_path / "after.sqlite")
    assert top.rule not in {d.rule for d in problems(after.diagnoses)}, patch.describe()
