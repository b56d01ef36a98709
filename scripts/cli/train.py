"""Run one GroundVTS training stage from a recipe YAML.

    groundvts train trainers/recipes/groundvts-q-stage1.yaml
    groundvts train RECIPE.yaml --set training.learning_rate=5e-5 --set data.path=my_data
    groundvts train RECIPE.yaml --resume                 # continue from the last checkpoint in output_dir
    accelerate launch --config_file trainers/recipes/accelerate/zero2.yaml -m groundvts.scripts.cli train RECIPE.yaml

Stages (`training.stage`): 0 base, every weight trains (backbones trained from scratch, e.g. the tiny synthetic
model), 1 VTS warm-up, 2 joint LoRA, 3 grounding fine-tuning (the paper's three start at 1).
`groundvts-tiny-finetune` fine-tunes the bundled GroundVTS-tiny on your own messages+videos file on a CPU.

A recipe names the backbone, the model to start from (plain backbone weights for stage 1, the stage-1 output
later), an optional LoRA adapter to continue (stage 3 continues stage 2), the VTS settings, the data and the
training arguments (`GroundVTSSFTConfig` fields). Bundled recipes (paper Table 13) are in trainers/recipes/;
`--list-recipes` prints them. Each stage is its own run; merge the final adapter with `groundvts merge`.

Data formats (`data.format`, detected when left out): `grounding_ft` (a `groundvts build-data` output folder, or a
.json/.jsonl of records with `messages` and `videos`) and `llava_video` (LLaVA-Video-178K-style json plus
`video_root`). Every record is checked before step 1 and bad ones are listed by file:line; `data.bad_records=skip`
trains without them. Without a GPU, training runs on the CPU in float32 unless `training.use_cpu` is set.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field

from groundvts.scripts.cli._errors import USAGE_ERROR, run_command
from groundvts.scripts.cli._parser import CommandParser
from groundvts.scripts.training.recipe import bundled_recipes, load_recipe
from groundvts.scripts.training.stage import prepare, resolve_resume, run


@dataclass
class TrainArguments:
    recipe: str | None = field(
        default=None, metadata={"positional": True, "help": "recipe YAML path or bundled recipe name"}
    )
    list_recipes: bool = field(default=False, metadata={"help": "print the bundled recipes and exit"})


def build_parser() -> CommandParser:
    parser = CommandParser(
        [TrainArguments], prog="groundvts train", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a recipe value, e.g. training.max_steps=10 (repeatable)")
    parser.add_argument("--resume", nargs="?", const=True, default=None, metavar="CHECKPOINT",
                        help="resume from CHECKPOINT, or from the last checkpoint in output_dir when no path is given")
    return parser


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)


def _train(recipe: str, overrides: list[str], resume: str | bool | None) -> None:
    loaded = load_recipe(recipe, overrides)
    checkpoint, note = resolve_resume(loaded, resume)  # before the model loads: a wrong --resume costs nothing
    trainer = prepare(loaded, log=_stderr)
    if note:
        _stderr(note)
    output = run(trainer, checkpoint)  # this module's `run`: tests replace it to stop before training
    print(f"Saved stage output to {output}")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    parsed = parser.parse_command(argv)
    if isinstance(parsed, int):
        return parsed
    args, extra = parsed
    if args.list_recipes:
        for path in bundled_recipes():
            print(f"{path.stem:24s} {path}")
        return 0
    if not args.recipe:
        parser.print_usage(sys.stderr)
        print("error: give a recipe (see --list-recipes).", file=sys.stderr)
        return USAGE_ERROR
    return run_command(lambda: _train(args.recipe, extra.overrides, extra.resume))


if __name__ == "__main__":
    sys.exit(main())
