"""Training recipes: a YAML file (bundled or your own) with `--set KEY=VALUE` overrides -> one stage's settings.

A recipe names the backbone, the model to start from (plain backbone weights for stage 1, the stage-1 output
later), an optional LoRA adapter to continue (stage 3 continues stage 2), the VTS settings, the data and the
training arguments (`GroundVTSSFTConfig` fields). Bundled recipes (paper Table 13) are in trainers/recipes/.
`load_recipe` reads and checks one, `training_config` builds its `GroundVTSSFTConfig`; `stage.py` runs it.
"""

from __future__ import annotations

import re
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml


# Package data, found through the installed package (a wheel has no checkout around it).
RECIPES_DIR = Path(str(files("groundvts.trainers") / "recipes"))
RECIPE_KEYS = {"backbone", "model", "adapter", "vts", "data", "training", "model_dtype"}


class _RecipeLoader(yaml.SafeLoader):
    """YAML 1.1 reads `1e-5` (no dot) as a string; recipes mean a float."""


_RecipeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def parse_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_RecipeLoader)


class RecipeError(ValueError):
    """A recipe that cannot run; the message says which key and what to do."""


def bundled_recipes() -> list[Path]:
    return sorted(RECIPES_DIR.glob("*.yaml"))


def resolve_recipe(name: str) -> Path:
    """A recipe path, or the name of a bundled recipe (`groundvts-q-stage1`)."""
    path = Path(name)
    if path.is_file():
        return path
    bundled = RECIPES_DIR / (name if name.endswith(".yaml") else f"{name}.yaml")
    if bundled.is_file():
        return bundled
    names = ", ".join(p.stem for p in bundled_recipes())
    raise RecipeError(f"Recipe {name!r} not found: give a YAML path or a bundled recipe name ({names}).")


def apply_override(recipe: dict[str, Any], assignment: str) -> None:
    """`training.learning_rate=5e-5` sets recipe["training"]["learning_rate"] (value parsed as YAML)."""
    key, sep, raw = assignment.partition("=")
    if not sep or not key:
        raise RecipeError(f"--set expects KEY=VALUE with a dotted key, got {assignment!r}.")
    *parents, leaf = key.split(".")
    node = recipe
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise RecipeError(f"--set {key}: {part!r} is not a section of the recipe.")
    value = parse_yaml(raw)
    # YAML 1.1 reads no/yes/on/off as booleans; only true/false mean a boolean here (`save_strategy=no`).
    node[leaf] = raw if isinstance(value, bool) and raw.strip().lower() not in ("true", "false") else value


def load_recipe(path: str, overrides: list[str]) -> dict[str, Any]:
    """The recipe at `path` (or the bundled recipe of that name) with `overrides` applied; raises RecipeError for
    unknown or missing sections."""
    recipe_path = resolve_recipe(path)
    recipe = parse_yaml(recipe_path.read_text()) or {}
    if not isinstance(recipe, dict):
        raise RecipeError(f"{recipe_path}: a recipe is a YAML mapping with keys {sorted(RECIPE_KEYS)}.")
    for assignment in overrides:
        apply_override(recipe, assignment)
    unknown = set(recipe) - RECIPE_KEYS
    if unknown:
        raise RecipeError(f"{recipe_path}: unknown keys {sorted(unknown)}; allowed: {sorted(RECIPE_KEYS)}.")
    for key in ("model", "data", "training"):
        if not recipe.get(key):
            raise RecipeError(f"{recipe_path}: missing `{key}`.")
    return recipe


def training_config(recipe: dict[str, Any]) -> Any:
    """The recipe's `training` section as a `GroundVTSSFTConfig` (`deepspeed: zero2|zero3` -> the bundled file)."""
    from groundvts.trainers import GroundVTSSFTConfig

    values = dict(recipe["training"])
    if values.get("deepspeed") in ("zero2", "zero3"):
        values["deepspeed"] = str(RECIPES_DIR / "deepspeed" / f"{values['deepspeed']}.json")
    try:
        return GroundVTSSFTConfig(**values)
    except TypeError as error:
        raise RecipeError(f"`training` section: {error}") from None
