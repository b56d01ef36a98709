"""Turn official GroundVTS, plain Qwen2.5-VL or plain InternVL3.5-HF weights into a GroundVTS checkpoint.

    groundvts convert OFFICIAL_DIR OUTPUT_DIR                  # official GroundVTS release -> trained GroundVTS
    groundvts convert Qwen/Qwen2.5-VL-7B-Instruct groundvts-q  # plain backbone -> untrained GroundVTS-Q (stage 1 next)
    groundvts convert OpenGVLab/InternVL3_5-8B-HF groundvts-i  # plain backbone -> untrained GroundVTS-I
    groundvts convert GROUNDVTS_DIR OUTPUT_DIR --processor Qwen/Qwen2.5-VL-7B-Instruct   # give a folder our processor

SOURCE is a folder (or, for plain weights, a Hub id) whose config.json says one of:

- `vts_qwen2_5_vl` / `vts_internvl_3` (the official release): VTS is stored as `vts_module.{Wf,Wq,post_mlp}`
  (Qwen, outer model) or `model.vts_module.*` (InternVL, custom inner model) with `VTS_*` config fields. Both become
  `model.vts.{wv,wq,mlp}` of the GroundVTS-Q / GroundVTS-I class, using the official query pooling (every prompt
  token) and deterministic top-K so that the converted weights behave as trained.
- `qwen2_5_vl` / `internvl` (plain backbone weights): the GroundVTS-Q / GroundVTS-I class with every backbone weight
  unchanged and a new, randomly initialised VTS with the family's defaults (D_r 512 for Q, 128 for I; rho 0.5).
  The VTS is untrained: run stage 1 on the output (`groundvts train groundvts-q-stage1 --set model=OUTPUT_DIR`).
- `groundvts_qwen2_5_vl` / `groundvts_internvl`: the weights are kept; use this to give a folder our processor.

The output loads with `from_pretrained(OUTPUT_DIR, trust_remote_code=True)` and carries our processor
(GroundVTSQwen2_5_VLProcessor / GroundVTSInternVLProcessor, with its code), built from the processor files of
SOURCE or of `--processor FOLDER_OR_HUB_ID`, so that `groundvts ground --model OUTPUT_DIR` runs (an official
checkpoint without processor files is still converted; the printed note says how to add the processor). The command
prints what it did.
"""

from __future__ import annotations

import argparse
import sys

from groundvts.scripts.cli._parser import CommandParser
from groundvts.scripts.release.convert import ConvertSettings, convert


def build_parser() -> CommandParser:
    # RawDescriptionHelpFormatter: the help texts state their defaults where they matter, as they always did.
    return CommandParser(
        [ConvertSettings], prog="groundvts convert", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def main(argv: list[str] | None = None) -> int:
    return build_parser().run(argv, lambda settings, _: _convert(settings))


def _convert(settings: ConvertSettings) -> None:
    conversion = convert(settings.source, settings.output_dir, dtype=settings.dtype, processor_source=settings.processor)
    print(f"Converted {settings.source} -> {conversion.output_dir}")
    for note in conversion.notes:
        print(f"  {note}")


if __name__ == "__main__":
    sys.exit(main())
