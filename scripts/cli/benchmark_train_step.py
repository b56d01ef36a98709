"""Benchmark one stage-2 training step: GroundVTS (ρ=0.5) vs the same model dense, same batch.

Stage 2 as in the recipe: LoRA (r 8, α 16) on the language model's attention, VTS and projector trained fully
(PEFT `modules_to_save`), activation checkpointing, AdamW. A step is forward + backward + optimizer step on one
long video prompt followed by a short answer (the labelled tokens). The vision tower is skipped, as in
`benchmark_prefill` (precomputed video features; it costs every variant the same), so the ratios are those of
the language-model part of a step.

Each variant runs in its own process so that peak memory (CPU: max RSS growth; GPU: peak allocated) is its own.

    python -m groundvts.scripts.cli.benchmark_train_step --preset mid --repeats 3 --out train_step.json
    python -m groundvts.scripts.cli.benchmark_train_step --preset qwen7b --device cuda --dtype bfloat16
"""

from __future__ import annotations

import sys

from groundvts.scripts.cli._parser import CommandParser
from groundvts.scripts.cli._perf import build_perf_parser, run_perf_command
from groundvts.scripts.perf import train_step


def build_parser() -> CommandParser:
    return build_perf_parser(train_step, __doc__)


def main(argv: list[str] | None = None) -> int:
    return run_perf_command(build_parser(), train_step, argv)


if __name__ == "__main__":
    sys.exit(main())
