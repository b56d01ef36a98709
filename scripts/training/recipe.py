"""Training recipes: a YAML file (bundled or your own) with `--set KEY=VALUE` overrides -> one stage's settings.

A recipe names the backbone, the model to start from (plain backbone weights for stage 1, the stage-1 output
later), an optional LoRA adapter to continue (stage 3 continues stage 2), the VTS settings, the data and the
training arguments (`GroundVTSSFTConfig` fields; `GroundVTSGRPOConfig` fields for stage 4). Bundled recipes (paper
Table 13; stage 4 from the published GRPO grounding recipes) are in trainers/recipes/. `load_recipe` reads and
checks one, `training_config` builds its config; `stage.py` runs it.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from groundvts.processing.annotations import read_text


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
    try:
        value = parse_yaml(raw)
    except yaml.YAMLError as error:
        raise RecipeError(f"--set {assignment}: the value is not valid YAML ({str(error).splitlines()[0]}).") from None
    # YAML 1.1 reads no/yes/on/off as booleans; only true/false mean a boolean here (`save_strategy=no`).
    node[leaf] = raw if isinstance(value, bool) and raw.strip().lower() not in ("true", "false") else value


def load_recipe(path: str, overrides: list[str]) -> dict[str, Any]:
    """The recipe at `path` (or the bundled recipe of that name) with `overrides` applied; raises RecipeError for
    unknown or missing sections."""
    recipe_path = resolve_recipe(path)
    try:
        recipe = parse_yaml(read_text(recipe_path)) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{recipe_path}:{mark.line + 1}" if mark is not None else str(recipe_path)
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise RecipeError(f"{where}: not valid YAML ({problem}); fix the recipe file.") from None
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


def _basic_types(hint: Any) -> tuple[set[type], bool]:
    """The plain types (bool/int/float/str) a field annotation allows, and whether it allows None."""
    args = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    return {a for a in args if a in (bool, int, float, str)}, type(None) in args


def config_class(values: dict[str, Any]) -> type:
    """The config a `training` section fills: `GroundVTSGRPOConfig` for stage 4 (GRPO), else `GroundVTSSFTConfig`."""
    from groundvts.trainers import GroundVTSGRPOConfig, GroundVTSSFTConfig

    return GroundVTSGRPOConfig if values.get("stage") == 4 else GroundVTSSFTConfig


def check_training_values(values: dict[str, Any]) -> None:
    """Refuse `training` values of the wrong type (`learning_rate=abc`) with the key, before anything loads."""
    hints = typing.get_type_hints(config_class(values))
    for name, value in values.items():
        allowed, optional = _basic_types(hints.get(name, Any))
        if not allowed or str in allowed or (value is None and optional):
            continue
        if allowed == {bool} and not isinstance(value, bool):
            raise RecipeError(f"training.{name}={value!r}: expected true or false.")
        numeric = allowed & {int, float}
        if numeric and (isinstance(value, bool) or not isinstance(value, (int, float))):
            kind = "an integer" if numeric == {int} else "a number"
            raise RecipeError(f"training.{name}={value!r}: expected {kind} (e.g. --set training.{name}=...).")
        if numeric == {int} and isinstance(value, float) and not value.is_integer():
            raise RecipeError(f"training.{name}={value!r}: expected an integer.")


def _no_accelerator() -> bool:
    import torch

    return not torch.cuda.is_available()


def training_config(recipe: dict[str, Any], log: Callable[[str], None] | None = None) -> Any:
    """The recipe's `training` section as a `GroundVTSSFTConfig`, or a `GroundVTSGRPOConfig` for `stage: 4`
    (`deepspeed: zero2|zero3` -> the bundled file).

    Without a GPU, a recipe that does not set `use_cpu` trains on the CPU in float32 (the bundled recipes ask for
    bf16, written for GPUs; so does SFTConfig's default), with a note to `log`; `--set training.use_cpu=true` keeps
    bf16 on the CPU.
    """
    values = dict(recipe["training"])
    check_training_values(values)
    if values.get("deepspeed") in ("zero2", "zero3"):
        values["deepspeed"] = str(RECIPES_DIR / "deepspeed" / f"{values['deepspeed']}.json")
    if "use_cpu" not in values and _no_accelerator():
        # SFTConfig's own default is bf16 too, so this applies whether or not the recipe names it.
        values.update(use_cpu=True, bf16=False, fp16=False)
        if log is not None:
            log("no GPU found: training on the CPU in float32 (--set training.use_cpu=true keeps the recipe's "
                "bf16 / fp16 on the CPU)")
    try:
        return config_class(values)(**values)
    except (TypeError, ValueError) as error:  # an unknown field, or a value TrainingArguments refuses
        raise RecipeError(f"`training` section: {error}") from None
