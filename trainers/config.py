"""`GroundVTSSFTConfig`: TRL's `SFTConfig` plus the GroundVTS stage, video sampling and LoRA settings.

Defaults that differ from `SFTConfig`, because TRL has no video path: the dataset is passed through untouched
(`skip_prepare_dataset`), its columns are kept for the collator (`remove_unused_columns=False`) and nothing is
truncated (`max_length=None`; truncation would cut vision tokens away from their features).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trl import SFTConfig

from .stages import trainable_groups


@dataclass
class GroundVTSVideoLoraArguments:
    """The video sampling and LoRA fields that every GroundVTS training config shares (SFT stages 0-3, GRPO stage
    4): one home for their names, defaults and checks. Documented in each config's docstring."""

    video_fps: float | None = field(default=None, metadata={"help": "Frames per second sampled (GroundVTS-Q: 2.0)."})
    video_num_frames: int | None = field(default=None, metadata={"help": "Frames per video (GroundVTS-I: 16)."})
    video_max_frames: int | None = field(default=None, metadata={"help": "Upper bound on frames (GroundVTS-Q: 128)."})
    video_max_pixels: int | None = field(default=None, metadata={"help": "Pixels per frame (GroundVTS-Q: 16384)."})
    video_cache: bool = field(default=False, metadata={"help": "Keep processed videos in memory across epochs (small"
                              " datasets such as the synthetic benchmark; each DataLoader worker keeps its own)."})
    lora_r: int = field(default=8, metadata={"help": "LoRA rank (stages 2-3)."})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA alpha (stages 2-3)."})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout (stages 2-3)."})

    def check_video_settings(self) -> None:
        if self.video_fps is not None and self.video_num_frames is not None:
            raise ValueError("Set `video_fps` (GroundVTS-Q) or `video_num_frames` (GroundVTS-I), not both.")

    def video_kwargs(self) -> dict[str, Any]:
        """Processor video arguments of this run."""
        values = {
            "fps": self.video_fps,
            "num_frames": self.video_num_frames,
            "max_frames": self.video_max_frames,
            "max_pixels": self.video_max_pixels,
        }
        return {key: value for key, value in values.items() if value is not None}


@dataclass
class GroundVTSSFTConfig(SFTConfig, GroundVTSVideoLoraArguments):
    r"""
    Configuration class for the [`GroundVTSTrainer`].

    This class adds the parameters that are specific to GroundVTS training (the stage, video sampling and LoRA) to
    TRL's [`~trl.SFTConfig`]. For the other training arguments, see [`~trl.SFTConfig`] and
    [`~transformers.TrainingArguments`]. Some defaults differ from [`~trl.SFTConfig`] (see the note below).

    Using [`~transformers.HfArgumentParser`] we can turn this class into
    [argparse](https://docs.python.org/3/library/argparse#module-argparse) arguments that can be specified on the
    command line; `groundvts train` reads the `training:` block of a recipe into it. The `video_*` values that are
    set are what [`~GroundVTSSFTConfig.video_kwargs`] returns and the default collator passes to every processor call;
    a `None` leaves the processor's own default.

    Parameters:
        > Parameters that control the training stage

        stage (`int`, *optional*, defaults to `3`):
            Which GroundVTS stage this run is; it decides which parameter groups train (the rest is frozen before
            the optimizer is built, and checked again when training begins):

            - `0`: base model from scratch, every weight (only for backbones trained from scratch, such as the
              synthetic benchmark's tiny model);
            - `1`: VTS warm-up, the VTS sampler only (full-weight checkpoints);
            - `2`: joint training, LoRA on the language model's attention + VTS + projector (an adapter);
            - `3`: grounding fine-tuning, the same groups as stage 2.

        freeze (`list[str]`, *optional*, defaults to `[]`):
            Parameter groups that the stage would train but that stay frozen, out of `"vts"`, `"projector"`,
            `"lora"`, `"vision"`, `"language_model"` and `"other"`; e.g. `["vision", "projector"]` in stage 0 after
            a separate vision pre-task. Freezing every group of the stage is an error.

        > Parameters that control the video sampling

        video_fps (`float` or `None`, *optional*, defaults to `None`):
            Frames per second sampled from each video (GroundVTS-Q: `2.0`). Exclusive with `video_num_frames`.
        video_num_frames (`int` or `None`, *optional*, defaults to `None`):
            Frames sampled per video (GroundVTS-I: `16`). Exclusive with `video_fps`.
        video_max_frames (`int` or `None`, *optional*, defaults to `None`):
            Upper bound on the frames of one video (GroundVTS-Q: `128`).
        video_max_pixels (`int` or `None`, *optional*, defaults to `None`):
            Pixels per frame (GroundVTS-Q: `16384`).
        video_cache (`bool`, *optional*, defaults to `False`):
            Whether the default collator keeps each record's processed video in memory across epochs. Meant for
            small datasets seen many times (the synthetic benchmark); every DataLoader worker keeps its own copy.

        > Parameters that control LoRA (stages 2 and 3)

        lora_r (`int`, *optional*, defaults to `8`):
            LoRA rank on the language model's attention projections (q, k, v, o). The three LoRA values are used
            when the trainer adds the adapter itself (a model object, no `peft_config`, not already a PEFT model);
            VTS and the projector are then trained fully and saved with the adapter.
        lora_alpha (`int`, *optional*, defaults to `16`):
            LoRA scaling factor.
        lora_dropout (`float`, *optional*, defaults to `0.05`):
            Dropout on the LoRA inputs.

        > Parameters that control the data preprocessing

        max_length (`int` or `None`, *optional*, defaults to `None`):
            Longest batch row allowed, in tokens. A longer row raises instead of being truncated (truncation would
            cut vision tokens away from their features). `None` accepts any length.
        remove_unused_columns (`bool`, *optional*, defaults to `False`):
            Must stay `False`: the collator reads the `messages` and `videos` columns.
        dataset_kwargs (`dict[str, Any]` or `None`, *optional*, defaults to `None`):
            As in [`~trl.SFTConfig`]; `skip_prepare_dataset=True` is always added, because the collator renders and
            tokenizes each conversation with its video itself.

    > [!NOTE]
    > These parameters have default values different from [`~trl.SFTConfig`], because TRL has no video path:
    > - `max_length`: Defaults to `None` instead of `1024`.
    > - `remove_unused_columns`: Defaults to `False` instead of `True`.
    > - `dataset_kwargs`: Always contains `skip_prepare_dataset=True`.
    >
    > The defaults that [`~trl.SFTConfig`] itself changes from [`~transformers.TrainingArguments`] are kept
    > (`bf16=True` unless `fp16` is set, `gradient_checkpointing=True`, `learning_rate=2e-5`, `logging_steps=10`).
    > The paper's learning rates are 1e-5, 2e-4 and 1e-4 for stages 1, 2 and 3; set `learning_rate` per stage, as
    > the bundled recipes do.

    Example:

    ```python
    >>> from groundvts.trainers import GroundVTSSFTConfig

    >>> # GroundVTS-Q stage 3 (grounding fine-tuning), with the paper's batch size, learning rate and video sampling
    >>> args = GroundVTSSFTConfig(
    ...     output_dir="groundvts-q-stage3",
    ...     stage=3,
    ...     learning_rate=1e-4,
    ...     num_train_epochs=3,
    ...     per_device_train_batch_size=2,
    ...     gradient_accumulation_steps=4,
    ...     video_fps=2.0,
    ...     video_max_frames=128,
    ...     video_max_pixels=16384,
    ... )
    >>> args.video_kwargs()
    {'fps': 2.0, 'max_frames': 128, 'max_pixels': 16384}
    ```
    """

    stage: int = field(default=3, metadata={"help": "0 base (from scratch, all weights), 1 VTS warm-up, 2 joint LoRA (LLaVA-Video), 3 grounding fine-tuning."})
    freeze: list[str] = field(default_factory=list, metadata={"help": "Parameter groups the stage would train but"
                              " that stay frozen (vts, projector, lora, vision, language_model, other), e.g."
                              " ['vision', 'projector'] in stage 0 after a separate vision pre-task."})
    max_length: int | None = field(default=None, metadata={"help": "Longest batch row allowed; None = no limit."})
    remove_unused_columns: bool = field(default=False, metadata={"help": "Keep `messages`/`videos` for the collator."})

    def __post_init__(self) -> None:
        super().__post_init__()
        trainable_groups(self.stage, self.freeze)  # checks the stage and the group names
        if self.stage == 4:
            raise ValueError("Stage 4 is reinforcement learning: use `GroundVTSGRPOConfig` with `GroundVTSGRPOTrainer`.")
        self.check_video_settings()
        self.dataset_kwargs = {**(self.dataset_kwargs or {}), "skip_prepare_dataset": True}
