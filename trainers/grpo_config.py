"""`GroundVTSGRPOConfig`: TRL's `GRPOConfig` plus the GroundVTS stage-4 settings (video sampling, LoRA, what trains)."""

from __future__ import annotations

from dataclasses import dataclass, field

from trl import GRPOConfig

from .config import GroundVTSVideoLoraArguments
from .stages import trainable_groups


# Stage 4 trains the LoRA adapter only by default; see the `freeze` parameter below for why.
DEFAULT_GRPO_FREEZE = ("vts", "projector")


@dataclass
class GroundVTSGRPOConfig(GRPOConfig, GroundVTSVideoLoraArguments):
    r"""
    Configuration class for the [`GroundVTSGRPOTrainer`] (GroundVTS stage 4: GRPO with verifiable grounding rewards).

    This class adds the parameters specific to GroundVTS (what trains, video sampling, LoRA) to TRL's
    [`~trl.GRPOConfig`]. For the other arguments (`num_generations`, `temperature`, `beta`, `epsilon`, `loss_type`,
    `max_completion_length`, ...), see [`~trl.GRPOConfig`] and [`~transformers.TrainingArguments`]. `groundvts
    train` reads a recipe's `training:` block into it when `stage: 4`.

    Parameters:
        > Parameters that control what trains

        stage (`int`, *optional*, defaults to `4`):
            Always `4`; kept so a recipe names its stage like the others.
        freeze (`list[str]`, *optional*, defaults to `["vts", "projector"]`):
            Parameter groups of stage 4 (`"lora"`, `"vts"`, `"projector"`) that stay frozen. By default only the
            LoRA adapter trains: the reward is one number per answer, a far weaker signal for which tokens to keep
            than the dense supervision of stages 1-3, and with VTS and the projector fixed every sampled answer, the
            policy and the KL reference see exactly the same kept tokens. Set `[]` to train VTS and the projector
            too (they are then saved with the adapter, as in stages 2-3).

        > Parameters that control the video sampling

        video_fps (`float` or `None`, *optional*, defaults to `None`):
            Frames per second sampled from each video (GroundVTS-Q, -Q3: `2.0`). Exclusive with `video_num_frames`.
        video_num_frames (`int` or `None`, *optional*, defaults to `None`):
            Frames sampled per video (GroundVTS-I: `16`).
        video_max_frames (`int` or `None`, *optional*, defaults to `None`):
            Upper bound on the frames of one video (GroundVTS-Q: `128`).
        video_max_pixels (`int` or `None`, *optional*, defaults to `None`):
            Pixels per frame (GroundVTS-Q: `16384`).
        video_cache (`bool`, *optional*, defaults to `False`):
            Keep each prompt's processed video in memory for the whole run (small datasets seen many times).

        > Parameters that control LoRA

        lora_r (`int`, *optional*, defaults to `8`):
            LoRA rank on the language model's attention projections (q, k, v, o), as in stages 2-3. Used when the
            trainer adds the adapter itself (a model object, no `peft_config`, not already a PEFT model).
        lora_alpha (`int`, *optional*, defaults to `16`):
            LoRA scaling factor.
        lora_dropout (`float`, *optional*, defaults to `0.05`):
            Dropout on the LoRA inputs.

    > [!NOTE]
    > Sampling and scoring use the same kept tokens: during stage 4 VTS selects its top K deterministically
    > (`vts_train_selection="topk"`, no Gumbel noise), once per prompt, for all `num_generations` answers of that
    > prompt and for the policy, old-policy and reference log-probabilities computed on them.
    >
    > Defaults that differ from [`~trl.GRPOConfig`]: `max_completion_length` is `64` instead of `256` (grounding
    > answers are one sentence), and `remove_unused_columns` must stay `False` (the trainer reads the `videos`
    > column; the rewards read `window`, `duration`, `relevant_clip_ids`).

    Example:

    ```python
    >>> from groundvts.trainers import GroundVTSGRPOConfig

    >>> args = GroundVTSGRPOConfig(output_dir="groundvts-q-stage4", num_generations=8, beta=0.04, video_fps=2.0)
    >>> args.freeze
    ['vts', 'projector']
    ```
    """

    stage: int = field(default=4, metadata={"help": "Always 4 (GRPO)."})
    freeze: list[str] = field(default_factory=lambda: list(DEFAULT_GRPO_FREEZE), metadata={
        "help": "Stage-4 groups that stay frozen (lora, vts, projector); default: VTS and projector."})
    max_completion_length: int | None = field(default=64, metadata={"help": "Longest sampled answer, in tokens."})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.stage != 4:
            raise ValueError(f"`GroundVTSGRPOConfig` is stage 4 (GRPO), got stage={self.stage}; stages 0-3 use "
                             "`GroundVTSSFTConfig`.")
        trainable_groups(self.stage, self.freeze)  # checks the group names; freezing everything is an error
        if self.remove_unused_columns:
            raise ValueError("`remove_unused_columns` must be False: the trainer reads the `videos` column and the "
                             "rewards read `window` / `duration`.")
        if self.use_vllm or self.use_transformers_continuous_batching:
            raise ValueError("GroundVTS GRPO samples with the model's own `generate` (the pruned video cache); vLLM and "
                             "continuous batching have no VTS path: set use_vllm=False and "
                             "use_transformers_continuous_batching=False.")
        self.check_video_settings()
