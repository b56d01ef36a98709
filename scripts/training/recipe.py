"""Run one GroundVTS training stage from a recipe YAML.

    groundvts train trainers/recipes/groundvts-q-stage1.yaml
    groundvts train RECIPE.yaml --set training.learning_rate=5e-5 --set data.path=my_data
    groundvts train RECIPE.yaml --resume                 # continue from the last checkpoint in output_dir
    accelerate launch --config_file trainers/recipes/accelerate/zero2.yaml -m groundvts.scripts.training.recipe RECIPE.yaml

A recipe names the backbone, the model to start from (plain backbone weights for stage 1, the stage-1 output
later), an optional LoRA adapter to continue (stage 3 continues stage 2), the VTS settings, the data and the
training arguments (`GroundVTSSFTConfig` fields). Bundled recipes (paper Table 13) are in trainers/recipes/;
`--list-recipes` prints them. Each stage is its own run; merge the final adapter with `groundvts merge`.

Data formats: `grounding_ft` (a `groundvts build-data` output folder, or a .json/.jsonl of records with
`messages` and `videos`) and `llava_video` (LLaVA-Video-178K-style json plus `video_root`).
"""

from __future__ import annotations

import argparse
import re
import sys
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml


# Package data, found through the installed package (a wheel has no checkout around it).
RECIPES_DIR = Path(str(files("groundvts.trainers") / "recipes"))
DATA_FORMATS = ("grounding_ft", "llava_video")
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
    from groundvts.trainers import GroundVTSSFTConfig

    values = dict(recipe["training"])
    if values.get("deepspeed") in ("zero2", "zero3"):
        values["deepspeed"] = str(RECIPES_DIR / "deepspeed" / f"{values['deepspeed']}.json")
    try:
        return GroundVTSSFTConfig(**values)
    except TypeError as error:
        raise RecipeError(f"`training` section: {error}") from None


def load_dataset_from_recipe(data: dict[str, Any]) -> Any:
    import datasets

    fmt, path = data.get("format", "grounding_ft"), data.get("path")
    if fmt not in DATA_FORMATS:
        raise RecipeError(f"data.format must be one of {DATA_FORMATS}, got {fmt!r}.")
    if not path or not Path(path).exists():
        raise RecipeError(f"data.path {path!r} does not exist; build it with `groundvts build-data` or fix the path.")
    if fmt == "llava_video":
        from groundvts.trainers.llava_video import load_llava_video

        if not data.get("video_root"):
            raise RecipeError("data.video_root is required for the llava_video format.")
        loaded = load_llava_video(path, data["video_root"])
        for row in loaded.skipped:  # never dropped silently
            print(f"skipped {row.file}:{row.line}: {row.reason}", file=sys.stderr)
        print(f"LLaVA-Video data: {len(loaded.records)} conversations, {len(loaded.skipped)} skipped", file=sys.stderr)
        return loaded.dataset
    if Path(path).is_dir():
        return datasets.load_from_disk(path)
    return datasets.load_dataset("json", data_files=str(path), split="train")


def prepare(recipe: dict[str, Any]) -> Any:
    """The trainer of one stage: config, dataset, model (+ adapter) and processor."""
    from groundvts.trainers import GroundVTSTrainer
    from groundvts.trainers.loading import load_model_and_processor

    args = training_config(recipe)  # before the model: DeepSpeed ZeRO-3 must see the config first
    if args.stage in (0, 1) and recipe.get("adapter"):
        raise RecipeError(f"Stage {args.stage} trains full weights, not an adapter; remove `adapter` from the recipe.")
    dataset = load_dataset_from_recipe(recipe["data"])
    model, processor = load_model_and_processor(
        recipe["model"], recipe.get("vts"), recipe.get("model_dtype", "auto"), recipe.get("adapter")
    )
    return GroundVTSTrainer(model=model, args=args, train_dataset=dataset, processing_class=processor)


def run(trainer: Any, resume: str | bool | None = None) -> Path:
    """Train one stage; saves the full model (stage 1) or the LoRA adapter with VTS and projector (stages 2-3)."""
    output_dir = trainer.args.output_dir
    trainer.train(resume_from_checkpoint=resume or None)
    trainer.save_model(output_dir)
    if trainer.is_world_process_zero():
        trainer.processing_class.save_pretrained(output_dir)
    return Path(output_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="groundvts train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("recipe", nargs="?", help="recipe YAML path or bundled recipe name")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a recipe value, e.g. training.max_steps=10 (repeatable)")
    parser.add_argument("--resume", nargs="?", const=True, default=None, metavar="CHECKPOINT",
                        help="resume from CHECKPOINT, or from the last checkpoint in output_dir when no path is given")
    parser.add_argument("--list-recipes", action="store_true", help="print the bundled recipes and exit")
    args = parser.parse_args(argv)
    if args.list_recipes:
        for path in bundled_recipes():
            print(f"{path.stem:24s} {path}")
        return 0
    if not args.recipe:
        parser.print_usage(sys.stderr)
        print("groundvts train: give a recipe (see --list-recipes).", file=sys.stderr)
        return 2
    try:
        trainer = prepare(load_recipe(args.recipe, args.overrides))
    except (RecipeError, FileNotFoundError, ValueError) as error:
        print(f"groundvts train: {error}", file=sys.stderr)
        return 2
    output = run(trainer, args.resume)
    print(f"Saved stage output to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
