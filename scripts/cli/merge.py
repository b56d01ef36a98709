"""Merge a trained LoRA adapter into its base GroundVTS model and save a standalone checkpoint.

    groundvts merge --base outputs/groundvts-q-stage1 --adapter outputs/groundvts-q-stage3 --output groundvts-q

The adapter's LoRA weights are folded into the language model, and the VTS and projector it trained fully
(`modules_to_save`) replace the base model's. The output loads with
`AutoModelForImageTextToText.from_pretrained(output, trust_remote_code=True)`, with its processor beside it.
"""

from __future__ import annotations

import argparse
import sys

from groundvts.scripts.cli._parser import CommandParser
from groundvts.scripts.release.merge import MergeSettings, merge_adapter


def build_parser() -> CommandParser:
    # RawDescriptionHelpFormatter: the help texts state their defaults where they matter, as they always did.
    return CommandParser(
        [MergeSettings], prog="groundvts merge", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def main(argv: list[str] | None = None) -> int:
    return build_parser().run(argv, lambda settings, _: _merge(settings))


def _merge(settings: MergeSettings) -> None:
    output = merge_adapter(settings.base, settings.adapter, settings.output, settings.dtype, settings.overwrite)
    print(f"Merged {settings.adapter} into {settings.base} -> {output}")


if __name__ == "__main__":
    sys.exit(main())
