"""Generate a synthetic temporal-grounding benchmark (videos + Charades-STA-format annotations), deterministically.

Each video is a few seconds (8-20 s by default) at 4 fps of 112x112 px: 3-5 coloured shapes on a dark, plain or
lightly textured background; one target shape has one event in a window [s, e] (appears, disappears, moves
left/right/up/down, turns another colour, grows, shrinks) and the query names it, e.g. "the red circle appears."
or "the blue square slides to the right.". Distractors never share the target's (colour, shape) and often have
events of their own at other times, so the query is only answerable by looking at the right object at the right
time. Scene details: `groundvts.scripts.data.synthetic.scenes`.

Output (the Charades-STA layout, so the annotation readers, `build-data`, `infer` and `evaluate` take it as is):

    OUT/videos/<vid>.mp4                  H.264, 4 fps (lossless with the default --crf 0)
    OUT/charades_sta_{train,val,test}.txt `vid start end##query`, times with 1 decimal
    OUT/Charades_v1_{train,test}.csv      `id,...,length` durations; the train csv also lists the val videos,
    OUT/Charades_v1_val.csv               so every txt finds its durations next to it without --duration-file
    OUT/manifest.json                     seed, split seeds, counts, settings and every sample's scene

Event types are balanced: every run of 6 consecutive videos of a split has each type once (in a random order).
Each split has its own seed derived from --seed, and each video its own from that, so the same arguments give
byte-identical annotation files and identical decoded frames, and adding videos to a split keeps the first ones.

    groundvts make-synthetic data/synthetic --num-train 300 --num-val 50 --num-test 100
    groundvts make-synthetic data/tiny --preset groundvts-tiny    # videos the bundled GroundVTS-tiny knows

`--preset groundvts-tiny` gives the scenes GroundVTS-tiny was trained on (those of `groundvts synthetic-benchmark`:
56x56 px, one shape, appears/disappears); scene flags given with it still override it.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

from groundvts.scripts.cli._parser import CommandParser
from groundvts.scripts.cli._scene_args import add_scene_arguments, scene_defaults, scene_kwargs
from groundvts.scripts.data.synthetic.scenes import BENCHMARK_SCENES
from groundvts.scripts.data.synthetic.videos import make_synthetic_benchmark

# Named scene sets: `groundvts-tiny` is what the bundled model was trained on (the synthetic benchmark's scenes).
PRESETS = {"default": {}, "groundvts-tiny": BENCHMARK_SCENES}


@dataclass
class MakeSyntheticArguments:
    """The output folder, seed and split sizes (the scene options are `_scene_args`'s)."""

    out: Path = field(
        metadata={"positional": True, "help": "output folder (created; must be empty unless --overwrite)"}
    )
    seed: int = field(default=0, metadata={"help": "benchmark seed (default 0)"})
    num_train: int = field(default=300, metadata={"help": "train videos (default 300)"})
    num_val: int = field(default=50, metadata={"help": "val videos (default 50)"})
    num_test: int = field(default=100, metadata={"help": "test videos (default 100)"})
    crf: int = field(default=0, metadata={"help": "x264 quality, 0 = lossless (default 0)"})
    overwrite: bool = field(default=False, metadata={"help": "replace earlier output in a non-empty folder"})
    preset: str = field(
        default="default",
        metadata={"choices": tuple(PRESETS), "help": "scene preset: default, or groundvts-tiny (what the bundled "
                  "model knows); scene flags override it"},
    )


def build_parser(preset: str = "default") -> CommandParser:
    # RawDescriptionHelpFormatter: the help texts already state their defaults, as they always did.
    parser = CommandParser(
        [MakeSyntheticArguments], prog="groundvts make-synthetic", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_scene_arguments(parser)
    parser.set_defaults(**scene_defaults(PRESETS.get(preset, {})))
    return parser


def _preset_in(argv: list[str] | None) -> str:
    """The --preset value of `argv` (read first: it sets the defaults of the scene flags)."""
    early = argparse.ArgumentParser(add_help=False)
    early.add_argument("--preset", default="default")
    return early.parse_known_args(sys.argv[1:] if argv is None else argv)[0].preset


def _make(args: MakeSyntheticArguments, scenes: argparse.Namespace) -> None:
    summary = make_synthetic_benchmark(
        args.out, seed=args.seed, num_train=args.num_train, num_val=args.num_val, num_test=args.num_test,
        crf=args.crf, overwrite=args.overwrite, **scene_kwargs(scenes),
    )
    counts = ", ".join(f"{count} {split}" for split, count in summary["counts"].items())
    print(f"Wrote {counts} videos to {summary['out_dir']} in {summary['seconds']:.1f} s (seed {summary['seed']}).")
    for split, events in summary["events"].items():
        if events:
            print(f"  {split:<5} " + ", ".join(f"{event} {count}" for event, count in events.items()))


def main(argv: list[str] | None = None) -> int:
    return build_parser(_preset_in(argv)).run(argv, lambda args, scenes: _make(args, scenes))


if __name__ == "__main__":
    sys.exit(main())
