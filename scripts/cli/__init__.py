"""`groundvts`: one command for the whole GroundVTS workflow.

Each subcommand is a module of this package named after it (`groundvts build-data` -> `cli/build_data.py`): a parser
over the libraries' settings dataclasses (`_parser.py`) plus one call into the library, with errors mapped to messages
in one place (`_errors.py`). Its module docstring is the help text. Modules are imported only when their subcommand
runs, so `groundvts --help` stays fast. Calls run one way only: cli -> the libraries of `groundvts.scripts` ->
`trainers` -> `modeling`, `processing`.
"""

from __future__ import annotations

import importlib
import sys

# subcommand -> (module, one-line summary shown by `groundvts --help`)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "ground": ("groundvts.scripts.cli.ground", "find when a sentence happens in one video (prints the span, can plot)"),
    "infer": ("groundvts.scripts.cli.infer", "run a model over a benchmark's annotations, writing resumable predictions"),
    "evaluate": ("groundvts.scripts.cli.evaluate", "score saved predictions and print a results table"),
    "build-data": ("groundvts.scripts.cli.build_data", "build the Grounding-FT training set from annotation files"),
    "make-synthetic": ("groundvts.scripts.cli.make_synthetic", "generate synthetic grounding videos with annotations"),
    "synthetic-benchmark": ("groundvts.scripts.cli.synthetic_benchmark", "train and compare token-selection variants on synthetic data"),
    "train": ("groundvts.scripts.cli.train", "run one training stage from a recipe YAML (stage 1, 2 or 3)"),
    "merge": ("groundvts.scripts.cli.merge", "merge a trained LoRA adapter into its base GroundVTS model"),
    "convert": ("groundvts.scripts.cli.convert",
                "make a GroundVTS checkpoint from official GroundVTS or plain Qwen2.5-VL / Qwen3-VL / InternVL3.5-HF weights"),
    "benchmark-decode": ("groundvts.scripts.cli.benchmark_decode",
                         "time decoding a video's kept frames vs its length: sequential vs seeking (JSON + table)"),
    "release": ("groundvts.scripts.cli.release", "assemble a Hub model repo (weights, code, card with results) and upload it"),
}

# Developer tools: not listed by `groundvts --help`, run as `python -m groundvts.scripts.cli.<tool>`.
TOOLS: dict[str, str] = {
    "benchmark_prefill": "prefill speed and memory: dense vs VTS vs the official mask-only path",
    "benchmark_train_step": "one training step: dense vs VTS",
    "budget_sweep": "synthetic benchmark at rho 1 to 1/8: GroundVTS vs query-agnostic pruning and fewer frames",
    "bundle_tiny_model": "rebuild the embedded GroundVTS-tiny from a synthetic-benchmark run",
    "push_metric_space": "publish a metric as an evaluate Space on the Hub",
}


def usage() -> str:
    width = max(len(name) for name in SUBCOMMANDS)
    lines = [
        "usage: groundvts <command> [options]",
        "",
        "GroundVTS finds when something happens in a video. Commands:",
        "",
    ]
    lines += [f"  {name:<{width}}  {summary}" for name, (_, summary) in SUBCOMMANDS.items()]
    lines += ["", "Run `groundvts <command> --help` for the options of one command."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    command, rest = argv[0], argv[1:]
    if command not in SUBCOMMANDS:
        print(f"groundvts: unknown command {command!r}.\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(SUBCOMMANDS[command][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
