"""What the two speed-benchmark tools (`benchmark_prefill`, `benchmark_train_step`) share: one parser over
`perf.harness.PerfSettings` with the benchmark's own defaults, and one run through the harness."""

from __future__ import annotations

import argparse
from types import ModuleType

from groundvts.scripts.cli._parser import CommandParser
from groundvts.scripts.perf.harness import PerfSettings, run_harness


def build_perf_parser(benchmark: ModuleType, description: str) -> CommandParser:
    # No `prog`: argparse names the file, as it did before these tools moved here; no defaults in the help, as before.
    parser = CommandParser([PerfSettings], description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.set_defaults(repeats=benchmark.DEFAULT_REPEATS, out=benchmark.DEFAULT_OUT)
    return parser


def run_perf_command(parser: CommandParser, benchmark: ModuleType, argv: list[str] | None) -> int:
    """Parse, run every variant of `benchmark` (each in its own process), print the table; the exit status."""
    return parser.run(argv, lambda settings, _: _run(settings, benchmark))


def _run(settings: PerfSettings, benchmark: ModuleType) -> int:
    # A failed variant raises VariantFailedError, which run_command maps to exit 1: the arguments were fine.
    print(run_harness(settings, benchmark).summary())
    return 0
