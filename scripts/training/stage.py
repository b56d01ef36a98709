"""One training stage from a loaded recipe: `prepare` builds its trainer, `run` trains it and saves the result."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from groundvts.scripts.data.training_data import load_training_dataset
from groundvts.scripts.training.recipe import RecipeError, training_config


def prepare(recipe: dict[str, Any], log: Callable[[str], None] | None = None) -> Any:
    """The `GroundVTSTrainer` of one stage: config, dataset, model (+ adapter) and processor.

    Raises `RecipeError`, `TrainingDataError` or the model loader's ValueError (e.g. invalid VTS settings) before
    anything trains. `log` receives the data loader's notices (skipped LLaVA-Video rows).
    """
    from groundvts.trainers import GroundVTSTrainer
    from groundvts.trainers.loading import load_model_and_processor

    args = training_config(recipe)  # before the model: DeepSpeed ZeRO-3 must see the config first
    if args.stage in (0, 1) and recipe.get("adapter"):
        raise RecipeError(f"Stage {args.stage} trains full weights, not an adapter; remove `adapter` from the recipe.")
    dataset = load_training_dataset(recipe["data"], log=log)
    model, processor = load_model_and_processor(
        recipe["model"], recipe.get("vts"), recipe.get("model_dtype", "auto"), recipe.get("adapter")
    )
    return GroundVTSTrainer(model=model, args=args, train_dataset=dataset, processing_class=processor)


def run(trainer: Any, resume: str | bool | None = None) -> Path:
    """Train one stage; saves the full model (stage 1) or the LoRA adapter with VTS and projector (stages 2-3).

    `resume`: a checkpoint folder, True for the last checkpoint in the output folder, or None/False to start over.
    """
    output_dir = trainer.args.output_dir
    trainer.train(resume_from_checkpoint=resume or None)
    trainer.save_model(output_dir)
    if trainer.is_world_process_zero():
        trainer.processing_class.save_pretrained(output_dir)
    return Path(output_dir)
