"""`GroundVTSTrainer`: TRL's `SFTTrainer` for GroundVTS video conversations.

What it changes, and why:
- a video collator by default (`GroundVTSVideoCollator`); TRL's own has no video path;
- the stage's freeze spec through `StageCallback`, and for stages 2-3 the paper's LoRA (r 8, α 16, dropout 0.05 on
  the LLM attention, VTS and projector trained fully and saved with the adapter) unless a PEFT model or config is
  given;
- resuming from a full-weights checkpoint (stage 1) through `from_pretrained`: `Trainer` loads the file with a plain
  `load_state_dict`, which misses every weight saved under its legacy name (`model.layers.*`, `visual.*`) and
  silently resumes from the initial weights (transformers#43701);
- the loss from the model's own forward: TRL's fused LM head runs only the inner model and pairs its hidden states
  with the labels itself, which skips the outer forward where labels after removed tokens are ignored.
"""

from __future__ import annotations

from typing import Any

import logging
from dataclasses import fields
from pathlib import Path

from peft import PeftConfig
from transformers import Trainer, TrainingArguments
from transformers.utils import SAFE_WEIGHTS_INDEX_NAME, SAFE_WEIGHTS_NAME, WEIGHTS_INDEX_NAME, WEIGHTS_NAME
from trl import SFTTrainer

from .collator import GroundVTSVideoCollator
from .config import GroundVTSSFTConfig
from .model_card import write_stage_card
from .stages import StageCallback, lora_config


logger = logging.getLogger(__name__)


def _is_peft_model(model: Any) -> bool:
    return hasattr(model, "peft_config") and hasattr(model, "get_base_model")


class GroundVTSTrainer(SFTTrainer):
    r"""
    Trainer for the GroundVTS training stages (VTS warm-up, joint LoRA, grounding fine-tuning) on video conversations.

    This class is a wrapper around TRL's [`~trl.SFTTrainer`] and inherits all of its attributes and methods. One
    instance runs one stage, chosen by `args.stage`; each stage is its own run that starts from the previous one's
    output.

    Parameters:
        > Parameters that control the model

        model ([`~transformers.PreTrainedModel`] or [`~peft.PeftModel`]):
            A GroundVTS-Q or GroundVTS-I model, e.g. from [`~groundvts.trainers.loading.load_model_and_processor`]
            (plain Qwen2.5-VL / InternVL3.5 weights load with a new VTS for stage 1). Stages 0 and 1 train full
            weights and refuse a PEFT model; stages 2 and 3 accept one (e.g. the stage-2 adapter continued in stage
            3). A model id or path is passed on to [`~trl.SFTTrainer`] as it is, but no LoRA is then added for you.
        peft_config ([`~peft.PeftConfig`], *optional*):
            PEFT configuration used to wrap the model in stages 2 and 3. If `None` and the model is not a PEFT model,
            the paper's LoRA is built from `args.lora_r`, `args.lora_alpha` and `args.lora_dropout` (see
            [`~groundvts.trainers.lora_config`]). Stages 0 and 1 refuse it.

        > Parameters that control the data

        train_dataset ([`~datasets.Dataset`] or [`~datasets.IterableDataset`]):
            Records `{"messages": [...], "videos": [path, ...]}` in transformers' structured chat format, with a
            `{"type": "video"}` block where each video goes (the output of `groundvts build-data`, or LLaVA-Video
            records). They reach the collator untouched: TRL's dataset preparation is skipped.
        processing_class ([`~transformers.ProcessorMixin`]):
            The GroundVTS processor of the model's backbone. The default collator renders each conversation with its
            chat template and samples the videos with `args.video_kwargs()`.
        data_collator (`Callable`, *optional*):
            Function that turns a list of records into a batch. Defaults to a [`GroundVTSVideoCollator`] that labels
            exactly the assistant turns and returns the VTS `query_mask`.

        > Parameters that control the training

        args ([`GroundVTSSFTConfig`]):
            Configuration for this trainer: the stage, video sampling, LoRA and every [`~trl.SFTConfig`] argument. A
            plain [`~trl.SFTConfig`] or [`~transformers.TrainingArguments`] is converted to stage 3 with the
            GroundVTS data defaults, with a warning.
        callbacks (list of [`~transformers.TrainerCallback`], *optional*):
            Callbacks to add. A [`StageCallback`] always comes first: it freezes everything the stage does not train
            before the optimizer is built and checks the trainable set again when training begins.
        dataset_name (`str`, *optional*):
            The training data (a Hub dataset id or a path), named in the model card the trainer writes.
        kwargs:
            Passed on to [`~trl.SFTTrainer`] (`eval_dataset`, `compute_metrics`, `optimizers`, ...).

    > [!NOTE]
    > Behaviour and defaults that differ from [`~trl.SFTTrainer`]:
    > - `data_collator`: Defaults to [`GroundVTSVideoCollator`] instead of TRL's collators, which have no video path.
    > - `peft_config`: Defaults to the paper's LoRA (r 8, α 16, dropout 0.05 on the language model's q/k/v/o; VTS and
    >   projector trained fully and saved with the adapter) in stages 2 and 3, instead of no wrapping.
    > - `callbacks`: [`StageCallback`] is always added.
    > - The loss comes from the model's own forward (`compute_loss` calls the full model with `use_cache=False`)
    >   instead of TRL's fused LM head, which runs only the inner model and so would skip ignoring the labels that
    >   follow removed video tokens.
    > - Resuming from, or loading the best of, full-weight checkpoints (stages 0 and 1) goes through
    >   `from_pretrained`, because the `Trainer`'s plain `load_state_dict` misses the weights saved under their legacy
    >   names (transformers#43701).

    Example:

    ```python
    >>> from datasets import load_from_disk
    >>> from groundvts.trainers import GroundVTSSFTConfig, GroundVTSTrainer
    >>> from groundvts.trainers.loading import load_model_and_processor

    >>> # Stage 3 (grounding fine-tuning) from the stage-1 output; the paper's LoRA is added for you
    >>> model, processor = load_model_and_processor("outputs/groundvts-q-stage1")
    >>> args = GroundVTSSFTConfig(output_dir="outputs/groundvts-q-stage3", stage=3, learning_rate=1e-4, video_fps=2.0)
    >>> trainer = GroundVTSTrainer(
    ...     model=model,
    ...     args=args,
    ...     train_dataset=load_from_disk("data/grounding_ft"),
    ...     processing_class=processor,
    ... )
    >>> trainer.train()
    ```
    """

    def __init__(
        self,
        model: Any,
        args: GroundVTSSFTConfig,
        train_dataset: Any,
        processing_class: Any,
        data_collator: Any = None,
        peft_config: PeftConfig | None = None,
        callbacks: list | None = None,
        dataset_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.dataset_name = dataset_name
        if not isinstance(args, GroundVTSSFTConfig):
            args = as_groundvts_config(args)
        if args.stage in (0, 1) and (peft_config is not None or _is_peft_model(model)):
            raise ValueError(f"Stage {args.stage} trains full weights: pass the model without a LoRA adapter.")
        if args.stage in (2, 3) and peft_config is None and not _is_peft_model(model) and not isinstance(model, str):
            peft_config = lora_config(model, args.lora_r, args.lora_alpha, args.lora_dropout)
        if data_collator is None:
            data_collator = GroundVTSVideoCollator(
                processing_class, args.video_kwargs(), args.max_length, cache=args.video_cache
            )
        super().__init__(
            model=model,
            args=args,
            train_dataset=train_dataset,
            processing_class=processing_class,
            data_collator=data_collator,
            peft_config=peft_config,
            callbacks=[StageCallback(args.stage, args.freeze), *(callbacks or [])],
            **kwargs,
        )

    def create_model_card(
        self, model_name: str | None = None, dataset_name: str | None = None, tags: Any = None
    ) -> None:
        # TRL's card calls a local base model "None" and says nothing of the stage: write GroundVTS's instead.
        if self.is_world_process_zero():
            write_stage_card(self, self._card_settings, model_name, dataset_name)

    def _card_settings(self, adapter: bool, config: Any) -> dict[str, Any]:
        args = self.args
        return {
            "stage": args.stage, "learning_rate": args.learning_rate, "num_train_epochs": args.num_train_epochs,
            "max_steps": args.max_steps if args.max_steps > 0 else None,
            "per_device_train_batch_size": args.per_device_train_batch_size,
            "gradient_accumulation_steps": args.gradient_accumulation_steps,
            "lora_r / lora_alpha / lora_dropout": f"{args.lora_r} / {args.lora_alpha} / {args.lora_dropout}" if adapter else None,
            "vts_keep_ratio": getattr(config, "vts_keep_ratio", None), "vts_strategy": getattr(config, "vts_strategy", None),
            "video sampling": args.video_kwargs() or None, "bf16": args.bf16,
        }

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        inputs["use_cache"] = False
        # `Trainer.compute_loss` calls the full model (outer forward, its loss), skipping SFTTrainer's fused head.
        return Trainer.compute_loss(self, model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: Any = None) -> None:
        target = self.accelerator.unwrap_model(model if model is not None else self.model)
        if not _has_full_weights(resume_from_checkpoint) or _is_peft_model(target) or self.is_fsdp_enabled:
            return super()._load_from_checkpoint(resume_from_checkpoint, model)
        load_full_weights(target, resume_from_checkpoint)

    def _load_best_model(self) -> None:
        target = self.accelerator.unwrap_model(self.model)
        best = self.state.best_model_checkpoint
        if best is None or not _has_full_weights(best) or _is_peft_model(target) or self.is_deepspeed_enabled or self.is_fsdp_enabled:
            return super()._load_best_model()
        load_full_weights(target, best)


def as_groundvts_config(args: Any) -> GroundVTSSFTConfig:
    """A plain `SFTConfig` / `TrainingArguments` as GroundVTS stage 3 (fine-tuning on the user's own data: LoRA +
    VTS + projector), with the GroundVTS defaults for video data; pass a `GroundVTSSFTConfig` to choose the stage."""
    if not isinstance(args, TrainingArguments):
        raise TypeError(f"`args` must be a GroundVTSSFTConfig (or SFTConfig / TrainingArguments), got {type(args).__name__}.")
    ours = {f.name for f in fields(GroundVTSSFTConfig) if f.init}
    values = {f.name: getattr(args, f.name) for f in fields(args) if f.init and f.name in ours}
    values.update(stage=3, remove_unused_columns=False, max_length=None)
    logger.warning("Training as GroundVTS stage 3 (LoRA + VTS + projector); pass a GroundVTSSFTConfig to pick a stage.")
    return GroundVTSSFTConfig(**values)


def _has_full_weights(folder: str) -> bool:
    names = (SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME, WEIGHTS_NAME, WEIGHTS_INDEX_NAME)
    return any((Path(folder) / name).is_file() for name in names)


def load_full_weights(model: Any, folder: str) -> None:
    """Copy a saved checkpoint's weights into `model`, with the key conversions `from_pretrained` applies."""
    dtype = next(model.parameters()).dtype
    loaded = type(model).from_pretrained(folder, config=model.config, dtype=dtype)
    model.load_state_dict(loaded.state_dict(), strict=True)
