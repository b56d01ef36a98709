"""Merge a trained LoRA adapter into its base GroundVTS model and save a standalone checkpoint (`groundvts merge`).

The adapter's LoRA weights are folded into the language model, and the VTS and projector it trained fully
(`modules_to_save`) replace the base model's. The output loads with
`AutoModelForImageTextToText.from_pretrained(output, trust_remote_code=True)`, with its processor beside it.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from groundvts.scripts.output_paths import check_new_folder


@dataclass
class MergeSettings:
    """The base checkpoint, the adapter trained on it, where the merged model goes, and its dtype."""

    base: str = field(metadata={"help": "GroundVTS checkpoint the adapter was trained on (stage-1 output)"})
    adapter: str = field(metadata={"help": "LoRA adapter folder (stage-2 or stage-3 output)"})
    output: str = field(metadata={"help": "where to write the merged model"})
    dtype: str = field(default="auto", metadata={"help": "weight dtype of the output (auto keeps the base's)"})
    overwrite: bool = field(default=False, metadata={"help": "replace an existing, non-empty --output"})


def merge_adapter(
    base: str | Path, adapter: str | Path, output: str | Path, dtype: Any = "auto", overwrite: bool = False
) -> Path:
    """Load `base` + `adapter`, merge, and save model and processor to `output`.

    Refuses (FileExistsError) an `output` folder that exists and is not empty unless `overwrite`, which replaces it;
    the output location is checked before anything loads."""
    from peft import PeftModel

    from groundvts.trainers.loading import load_model_and_processor
    from groundvts.trainers.model_card import merged_model_card

    if not (Path(adapter) / "adapter_config.json").is_file():
        raise FileNotFoundError(f"{adapter} is not a LoRA adapter folder (no adapter_config.json); pass a stage 2/3 output.")
    output = Path(output)
    if output.resolve() in (Path(base).resolve(), Path(adapter).resolve()):
        raise ValueError(f"--output {output} is the base or the adapter folder; write the merged model elsewhere.")
    check_new_folder(output, "--output", overwrite=overwrite)
    model, processor = load_model_and_processor(base, dtype=dtype)
    if output.is_dir() and overwrite:
        shutil.rmtree(output)
    elif output.exists() and overwrite:
        output.unlink()
    merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    merged.save_pretrained(output)
    processor.save_pretrained(output)
    card = merged_model_card(str(base), str(adapter), output.name)
    (output / "README.md").write_text(card, encoding="utf-8")
    return Path(output)
