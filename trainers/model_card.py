"""The model card a training stage writes into its output folder (and each checkpoint), instead of TRL's generic one.

TRL's card says "a fine-tuned version of None" for a local base model and nothing about what the folder is; this one
says which GroundVTS stage it is, what it started from and on which data, the VTS and sampling settings, and the
next command (the next stage, or `groundvts merge`). Every value comes from the run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

STAGE_NAMES = {0: "base (from scratch)", 1: "VTS warm-up", 2: "joint LoRA", 3: "grounding fine-tuning"}


def _front_matter(base_model: str | None, dataset: str | None, adapter: bool) -> str:
    meta: dict[str, Any] = {
        "library_name": "peft" if adapter else "transformers",
        "pipeline_tag": "video-text-to-text",
        "tags": ["groundvts", "video-temporal-grounding", "visual-token-sampling", "trl", "sft"]
        + (["lora"] if adapter else []),
    }
    # The Hub links base_model / datasets: only ids belong there, local folders are named in the text.
    if base_model and not Path(base_model).exists():
        meta["base_model"] = base_model
    if dataset and not Path(dataset).exists():
        meta["datasets"] = [dataset]
    return "---\n" + yaml.safe_dump(meta, sort_keys=False) + "---\n"


def stage_model_card(
    *, model_name: str, stage: int, base_model: str | None, dataset: str | None, adapter: bool,
    settings: dict[str, Any],
) -> str:
    """The README.md of a stage output: what it is, where it came from, its settings, and what to run next."""
    title = f"{model_name}: GroundVTS stage {stage}, {STAGE_NAMES.get(stage, '')}"
    origin = f"from `{base_model}`" if base_model else "from the model it was given"
    data = f" on `{dataset}`" if dataset else ""
    kind = "a LoRA adapter (with the VTS module and projector saved whole)" if adapter else "full model weights"
    if adapter:
        following = (
            f"Merge it into its base model for a standalone checkpoint:\n\n```bash\ngroundvts merge --base "
            f"{base_model or 'BASE'} --adapter {model_name} --output {model_name}-merged\n```\n"
        )
        load = (
            "```python\nfrom peft import PeftModel\nfrom transformers import AutoModelForImageTextToText\n\n"
            f"base = AutoModelForImageTextToText.from_pretrained(\"{base_model or 'BASE'}\", trust_remote_code=True)\n"
            f"model = PeftModel.from_pretrained(base, \"{model_name}\")\n```\n"
        )
    else:
        following = f"Start the next stage from it: `model: {model_name}` in the next stage's recipe.\n"
        load = (
            "```python\nfrom transformers import AutoModelForImageTextToText, AutoProcessor\n\n"
            f"model = AutoModelForImageTextToText.from_pretrained(\"{model_name}\", trust_remote_code=True)\n"
            f"processor = AutoProcessor.from_pretrained(\"{model_name}\", trust_remote_code=True)\n```\n"
        )
    rows = "\n".join(f"| `{key}` | {value} |" for key, value in settings.items() if value is not None)
    return (
        f"{_front_matter(base_model, dataset, adapter)}\n# {title}\n\n"
        f"This folder holds {kind} of GroundVTS training stage {stage} ({STAGE_NAMES.get(stage, '')}), trained "
        f"{origin}{data} with `GroundVTSTrainer` (TRL's `SFTTrainer` for video conversations). GroundVTS keeps the "
        "visual tokens most relevant to the question (Visual Token Sampling) before the language model.\n\n"
        f"## Next step\n\n{following}\n## Load\n\n{load}\n## Training settings\n\n| setting | value |\n|---|---|\n"
        f"{rows}\n"
    )
