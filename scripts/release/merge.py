"""Merge a trained LoRA adapter into its base GroundVTS model and save a standalone checkpoint.

    groundvts merge --base outputs/groundvts-q-stage1 --adapter outputs/groundvts-q-stage3 --output groundvts-q

The adapter's LoRA weights are folded into the language model, and the VTS and projector it trained fully
(`modules_to_save`) replace the base model's. The output loads with
`AutoModelForImageTextToText.from_pretrained(output, trust_remote_code=True)`, with its processor beside it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def merge_adapter(base: str | Path, adapter: str | Path, output: str | Path, dtype: Any = "auto") -> Path:
    """Load `base` + `adapter`, merge, and save model and processor to `output`."""
    from peft import PeftModel

    from groundvts.trainers.loading import load_model_and_processor

    if not (Path(adapter) / "adapter_config.json").is_file():
        raise FileNotFoundError(f"{adapter} is not a LoRA adapter folder (no adapter_config.json); pass a stage 2/3 output.")
    model, processor = load_model_and_processor(base, dtype=dtype)
    merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    merged.save_pretrained(output)
    processor.save_pretrained(output)
    return Path(output)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="groundvts merge", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--base", required=True, help="GroundVTS checkpoint the adapter was trained on (stage-1 output)")
    parser.add_argument("--adapter", required=True, help="LoRA adapter folder (stage-2 or stage-3 output)")
    parser.add_argument("--output", required=True, help="where to write the merged model")
    parser.add_argument("--dtype", default="auto", help="weight dtype of the output (auto keeps the base's)")
    args = parser.parse_args(argv)
    try:
        output = merge_adapter(args.base, args.adapter, args.output, args.dtype)
    except (FileNotFoundError, ValueError) as error:
        print(f"groundvts merge: {error}", file=sys.stderr)
        return 2
    print(f"Merged {args.adapter} into {args.base} -> {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
