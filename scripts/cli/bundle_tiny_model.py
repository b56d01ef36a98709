"""Rebuild the embedded default model, GroundVTS-tiny (`hub_configs/groundvts-tiny`), from a synthetic-benchmark run.

    groundvts synthetic-benchmark --out runs/synthetic
    python -m groundvts.scripts.cli.bundle_tiny_model runs/synthetic        # writes hub_configs/groundvts-tiny

1. `groundvts release --dry-run` assembles a Hub model folder from the run's `token` model (GroundVTS ρ = 0.5):
   safetensors weights, the flat remote code, the processor at the benchmark's video settings, a greedy
   generation config and a model card;
2. the card says what the model is (a from-scratch toy, not Qwen2.5-VL-7B) and gets the run's results table;
3. a few held-out synthetic videos (a generator seed the run never trained on) go to `examples/`, listed in
   `examples/examples.json`, for `groundvts ground --demo N`.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

from groundvts.hub_configs import TINY_MODEL_DIR
from groundvts.scripts.cli._parser import CommandParser
from groundvts.scripts.data.synthetic.bundle import bundle


@dataclass
class BundleArguments:
    run_dir: Path = field(metadata={"positional": True, "help": "a `groundvts synthetic-benchmark --out` folder"})
    variant: str = field(default="token", metadata={"help": "the run's model to bundle (default: token)"})
    out_dir: Path = field(default=TINY_MODEL_DIR, metadata={"help": f"default: {TINY_MODEL_DIR}"})
    examples: int = field(default=4, metadata={"help": "held-out example videos to bundle (default 4)"})


def build_parser() -> CommandParser:
    return CommandParser(
        [BundleArguments], prog="python -m groundvts.scripts.cli.bundle_tiny_model", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _bundle(args: BundleArguments) -> None:
    out = bundle(args.run_dir, args.out_dir, args.variant, args.examples)
    print(f"built {out}")  # what the release step printed when it ran as `groundvts release`
    print(f"bundled {out}")


def main(argv: list[str] | None = None) -> int:
    return build_parser().run(argv, lambda args, _: _bundle(args))


if __name__ == "__main__":
    sys.exit(main())
