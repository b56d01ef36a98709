"""`groundvts`: one command for the whole GroundVTS workflow.

Each subcommand is a module of `groundvts.scripts` with a `main(argv) -> int`; its module docstring is the help
text. Modules are imported only when their subcommand runs, so `groundvts --help` stays fast.
"""

from __future__ import annotations

import importlib
import sys

# subcommand -> (module, one-line summary shown by `groundvts --help`)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "ground": ("groundvts.scripts.inference.grounding", "find when a sentence happens in one video (prints the span, can plot)"),
    "infer": ("groundvts.scripts.inference.benchmark", "run a model over a benchmark's annotations, writing resumable predictions"),
    "evaluate": ("groundvts.scripts.inference.evaluation", "score saved predictions and print a results table"),
    "build-data": ("groundvts.scripts.data.grounding_ft", "build the Grounding-FT training set from annotation files"),
    "make-synthetic": ("groundvts.scripts.data.synthetic.videos", "generate synthetic grounding videos with annotations"),
    "synthetic-benchmark": ("groundvts.scripts.data.synthetic.benchmark", "train and compare token-selection variants on synthetic data"),
    "train": ("groundvts.scripts.training.recipe", "run one training stage from a recipe YAML (stage 1, 2 or 3)"),
    "merge": ("groundvts.scripts.release.merge", "merge a trained LoRA adapter into its base GroundVTS model"),
    "convert": ("groundvts.scripts.release.convert",
                "make a GroundVTS checkpoint from official GroundVTS or plain Qwen2.5-VL / InternVL3.5-HF weights"),
    "release": ("groundvts.scripts.release.repo", "assemble a Hub model repo (weights, code, card with results) and upload it"),
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
