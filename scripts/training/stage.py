"""One training stage from a loaded recipe: `prepare` builds its trainer, `resolve_resume` finds the checkpoint to
continue, `run` trains it and saves the result."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from groundvts.scripts.data.training_data import load_training_dataset
from groundvts.scripts.output_paths import check_writable_folder
from groundvts.scripts.training.recipe import RecipeError, training_config


def prepare(recipe: dict[str, Any], log: Callable[[str], None] | None = None) -> Any:
    """The trainer of one stage (`GroundVTSTrainer`, or `GroundVTSGRPOTrainer` for stage 4): config, dataset, model
    (+ adapter) and processor.

    Raises `RecipeError`, `TrainingDataError` or the model loader's ValueError (e.g. invalid VTS settings) before
    anything trains. `log` receives the data loader's notices (skipped LLaVA-Video rows).
    """
    from groundvts.trainers import GroundVTSGRPOTrainer, GroundVTSTrainer, to_grpo_dataset
    from groundvts.trainers.loading import load_model_and_processor

    args = training_config(recipe, log=log)  # before the model: DeepSpeed ZeRO-3 must see the config first
    if args.stage in (0, 1) and recipe.get("adapter"):
        raise RecipeError(f"Stage {args.stage} trains full weights, not an adapter; remove `adapter` from the recipe.")
    if args.stage == 4 and recipe.get("adapter"):
        # The stage-4 adapter's base must exist on disk for `merge` and the card's lineage, and is the KL reference.
        raise RecipeError(
            "Stage 4 starts from a merged stage-3 model, not from an adapter: run `groundvts merge --base MODEL "
            f"--adapter {recipe['adapter']} --output STAGE3_MERGED`, set `model: STAGE3_MERGED` and remove `adapter`."
        )
    check_writable_folder(args.output_dir, "training.output_dir")  # not after hours of training
    dataset = load_training_dataset(recipe["data"], log=log)
    model, processor = load_model_and_processor(
        recipe["model"], recipe.get("vts"), recipe.get("model_dtype", "auto"), recipe.get("adapter")
    )
    dataset_name = str(recipe["data"].get("name") or recipe["data"]["path"])
    if args.stage == 4:
        dataset = to_grpo_dataset(dataset, recipe["data"].get("bad_records", "error"), log=log)
        return GroundVTSGRPOTrainer(
            model=model, args=args, train_dataset=dataset, processing_class=processor, dataset_name=dataset_name,
        )
    return GroundVTSTrainer(
        model=model, args=args, train_dataset=dataset, processing_class=processor,
        dataset_name=dataset_name,
    )


def resolve_resume(recipe: dict[str, Any], resume: str | bool | None) -> tuple[str | None, str | None]:
    """(checkpoint folder to continue, a line saying which) for `--resume` (True: the last one in the stage's
    output_dir; a path: that one), or (None, None). Raises RecipeError when there is no such checkpoint."""
    from transformers.trainer_utils import get_last_checkpoint

    if not resume:
        return None, None
    output_dir = recipe["training"].get("output_dir")
    if resume is True:
        found = get_last_checkpoint(output_dir) if output_dir and Path(output_dir).is_dir() else None
        if found is None:
            raise RecipeError(
                f"--resume: no checkpoint-* folder in {output_dir}, so there is nothing to continue. Run without "
                "--resume to start the stage, or pass --resume CHECKPOINT_FOLDER."
            )
        checkpoint = Path(found)
    else:
        checkpoint = Path(resume)
        if not (checkpoint / "trainer_state.json").is_file():
            raise RecipeError(
                f"--resume {resume}: not a training checkpoint (no trainer_state.json); pass a checkpoint-* folder "
                f"of an earlier run, or --resume alone for the last one in {output_dir}."
            )
    step = json.loads((checkpoint / "trainer_state.json").read_text()).get("global_step", "?")
    return str(checkpoint), f"resuming from {checkpoint} (step {step})"


def run(trainer: Any, resume: str | bool | None = None) -> Path:
    """Train one stage; saves the full model (stages 0-1) or the LoRA adapter with VTS and projector (stages 2-4).

    `resume`: a checkpoint folder, True for the last checkpoint in the output folder, or None/False to start over.
    """
    output_dir = trainer.args.output_dir
    trainer.train(resume_from_checkpoint=resume or None)
    trainer.save_model(output_dir)
    if trainer.is_world_process_zero():
        trainer.processing_class.save_pretrained(output_dir)
        trainer.create_model_card(model_name=Path(output_dir).name)  # GroundVTS's card, not TRL's
    return Path(output_dir)
