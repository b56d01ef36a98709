"""Benchmark the language-model prefill of GroundVTS-Q / GroundVTS-I: dense vs VTS (rho 0.5, 0.25) vs mask-only.

Every variant runs the real GroundVTS inner forward on one long video prompt with random weights;
only the vision tower is skipped (its cost is the same for every variant), by feeding precomputed
video features. "mask-only" is the official GroundVTS approach: every token stays in the sequence
and the unselected ones are hidden by the attention mask, so nothing is saved.

Each variant runs in its own process so that peak memory (CPU: max RSS growth; GPU: peak allocated)
is measured for that variant alone. Prints a table and writes JSON.

    python -m groundvts.scripts.cli.benchmark_prefill --preset mid --repeats 5 --out bench.json
    python -m groundvts.scripts.cli.benchmark_prefill --preset qwen7b --device cuda --dtype bfloat16
    python -m groundvts.scripts.cli.benchmark_prefill --backbone internvl --preset internvl8b --device cuda --dtype bfloat16

`--backbone internvl` runs GroundVTS-I (InternVL3.5): video frames are 256 `<IMG_CONTEXT>` tokens each inside
`FrameN: <img>...</img>` lines, and positions are 1-D.
"""

from __future__ import annotations

import sys

from groundvts.scripts.cli._parser import CommandParser
from groundvts.scripts.cli._perf import build_perf_parser, run_perf_command
from groundvts.scripts.perf import prefill


def build_parser() -> CommandParser:
    return build_perf_parser(prefill, __doc__)


def main(argv: list[str] | None = None) -> int:
    return run_perf_command(build_parser(), prefill, argv)


if __name__ == "__main__":
    sys.exit(main())
