"""Merge a trained LoRA adapter into its base GroundVTS model and save a standalone checkpoint (`groundvts merge`).

The adapter's LoRA weights are folded into the language model, and the VTS and projector it trained fully
(`modules_to_save`) replace the base model's. The output loads with
`AutoModelForImageTextToText.from_pretrained(output, trust_remote_code=True)`, with its processor beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class MergeSettings:
    """The base checkpoint, the adapter trained on it, where the merged model goes, and its dtype."""

    base: str = field(metadata={"help": "GroundVTS checkpoint the adapter was trained on (stage-1 output)"})
    adapter: str = field(metadata={"help": "LoRA adapter folder (stage-2 or stage-3 output)"})
    output: str = field(metadata={"help": "where to write the merged model"})
    dtype: str = field(default="auto", metadata={"help": "weight dtype of the output (auto keeps the base's)"})


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
