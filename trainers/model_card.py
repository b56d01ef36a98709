"""The model card a training stage writes into its output folder (and each checkpoint), instead of TRL's generic one.

TRL's card says "a fine-tuned version of None" for a local base model and nothing about what the folder is; this one
says which GroundVTS stage it is, what it started from and on which data, the VTS and sampling settings, and the
next command (the next stage, or `groundvts merge`). Every value comes from the run.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

STAGE_NAMES = {0: "base (from scratch)", 1: "VTS warm-up", 2: "joint LoRA", 3: "grounding fine-tuning",
               4: "GRPO with grounding rewards"}
# The TRL trainer behind each stage, named in the card.
STAGE_TRAINERS = {4: ("GroundVTSGRPOTrainer", "GRPOTrainer", "grpo")}


_HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


def is_hub_id(name: str | None) -> bool:
    """Whether `name` reads as a Hub repo id (`org/name`) rather than a local path."""
    return bool(name) and not Path(str(name)).exists() and bool(_HUB_ID.match(str(name)))


def read_card_metadata(folder: str | Path) -> dict[str, Any]:
    """The YAML front matter of `folder/README.md` ({} without one): how `groundvts release` learns the lineage."""
    path = Path(folder) / "README.md"
    if not path.is_file():
        return {}
    text = path.read_text(encoding="utf-8")
    if not text.startswith("---"):
        return {}
    try:
        meta = yaml.safe_load(text.split("---", 2)[1])
    except (yaml.YAMLError, IndexError):
        return {}
    return meta if isinstance(meta, dict) else {}


def lineage(start: str | None, dataset: str | None) -> tuple[str | None, list[str]]:
    """(the Hub model a run's chain started from, the Hub datasets of the chain): a local `start` folder passes on
    the `base_model` and `datasets` of its own card; this run's `dataset` is added when it is a Hub id."""
    earlier = {} if start is None or is_hub_id(start) else read_card_metadata(start)
    base = start if is_hub_id(start) else earlier.get("base_model")
    datasets = list(earlier.get("datasets") or [])
    if is_hub_id(dataset) and dataset not in datasets:
        datasets.append(dataset)
    return base, datasets


def _front_matter(base_model: str | None, datasets: list[str], library: str, tags: list[str]) -> str:
    meta: dict[str, Any] = {"library_name": library, "pipeline_tag": "video-text-to-text", "tags": tags}
    # The Hub links base_model / datasets: only ids belong there, local folders are named in the text.
    if base_model:
        meta["base_model"] = base_model
    if datasets:
        meta["datasets"] = datasets
    return "---\n" + yaml.safe_dump(meta, sort_keys=False) + "---\n"


_TAGS = ["groundvts", "video-temporal-grounding", "visual-token-sampling"]


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
    trainer, trl_trainer, method = STAGE_TRAINERS.get(stage, ("GroundVTSTrainer", "SFTTrainer", "sft"))
    tags = _TAGS + ["trl", method] + (["lora"] if adapter else [])
    front_matter = _front_matter(*lineage(base_model, dataset), "peft" if adapter else "transformers", tags)
    return (
        f"{front_matter}\n# {title}\n\n"
        f"This folder holds {kind} of GroundVTS training stage {stage} ({STAGE_NAMES.get(stage, '')}), trained "
        f"{origin}{data} with `{trainer}` (TRL's `{trl_trainer}` for video conversations). GroundVTS keeps the "
        "visual tokens most relevant to the question (Visual Token Sampling) before the language model.\n\n"
        f"## Next step\n\n{following}\n## Load\n\n{load}\n## Training settings\n\n| setting | value |\n|---|---|\n"
        f"{rows}\n"
    )


def merged_model_card(base: str, adapter: str, output_name: str) -> str:
    """The README.md of `groundvts merge`'s output: the adapter run's lineage, and how it was made."""
    meta = read_card_metadata(adapter) or read_card_metadata(base)
    base_model, datasets = meta.get("base_model"), list(meta.get("datasets") or [])
    return (
        f"{_front_matter(base_model, datasets, 'transformers', _TAGS)}\n# {output_name}\n\n"
        f"A standalone GroundVTS checkpoint: the LoRA adapter `{adapter}` merged into `{base}` (the VTS module and "
        "projector the adapter trained replace the base's). Load it with `trust_remote_code=True`:\n\n"
        "```python\nfrom transformers import AutoModelForImageTextToText, AutoProcessor\n\n"
        f"model = AutoModelForImageTextToText.from_pretrained(\"{output_name}\", trust_remote_code=True)\n"
        f"processor = AutoProcessor.from_pretrained(\"{output_name}\", trust_remote_code=True)\n```\n\n"
        f"Publish it with `groundvts release {output_name} --repo-id ORG/NAME` (the card's base model and datasets "
        "come from this lineage, or from --base-model / --datasets).\n"
    )


def write_stage_card(trainer: Any, settings_of: Any, model_name: str | None = None, dataset_name: str | None = None) -> None:
    """Write the stage card of `trainer`'s model to its output folder. `settings_of(adapter, config)` gives the
    settings table from whether the model is a LoRA adapter and its base model's config."""
    model = trainer.accelerator.unwrap_model(trainer.model)
    adapter = hasattr(model, "peft_config") and hasattr(model, "get_base_model")
    config = model.get_base_model().config if adapter else model.config
    base = next(iter(model.peft_config.values())).base_model_name_or_path if adapter else config.name_or_path
    output_dir = Path(trainer.args.output_dir)
    card = stage_model_card(
        model_name=model_name or output_dir.name, stage=trainer.args.stage, base_model=base or None,
        dataset=dataset_name or trainer.dataset_name, adapter=adapter, settings=settings_of(adapter, config),
    )
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "README.md").write_text(card, encoding="utf-8")
