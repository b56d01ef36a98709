"""`GroundVTSSFTConfig`: TRL's `SFTConfig` plus the GroundVTS stage, video sampling and LoRA settings.

Defaults that differ from `SFTConfig`, because TRL has no video path: the dataset is passed through untouched
(`skip_prepare_dataset`), its columns are kept for the collator (`remove_unused_columns=False`) and nothing is
truncated (`max_length=None`; truncation would cut vision tokens away from their features).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trl import SFTConfig

from .stages import check_stage, trainable_groups


@dataclass
class GroundVTSSFTConfig(SFTConfig):
    stage: int = field(default=3, metadata={"help": "0 base (from scratch, all weights), 1 VTS warm-up, 2 joint LoRA (LLaVA-Video), 3 grounding fine-tuning."})
    freeze: list[str] = field(default_factory=list, metadata={"help": "Parameter groups the stage would train but"
                              " that stay frozen (vts, projector, lora, vision, language_model, other), e.g."
                              " ['vision', 'projector'] in stage 0 after a separate vision pre-task."})
    video_fps: float | None = field(default=None, metadata={"help": "Frames per second sampled (GroundVTS-Q: 2.0)."})
    video_num_frames: int | None = field(default=None, metadata={"help": "Frames per video (GroundVTS-I: 16)."})
    video_max_frames: int | None = field(default=None, metadata={"help": "Upper bound on frames (GroundVTS-Q: 128)."})
    video_max_pixels: int | None = field(default=None, metadata={"help": "Pixels per frame (GroundVTS-Q: 16384)."})
    video_cache: bool = field(default=False, metadata={"help": "Keep processed videos in memory across epochs (small"
                              " datasets such as the synthetic benchmark; each DataLoader worker keeps its own)."})
    lora_r: int = field(default=8, metadata={"help": "LoRA rank (stages 2-3)."})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA alpha (stages 2-3)."})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout (stages 2-3)."})
    max_length: int | None = field(default=None, metadata={"help": "Longest batch row allowed; None = no limit."})
    remove_unused_columns: bool = field(default=False, metadata={"help": "Keep `messages`/`videos` for the collator."})

    def __post_init__(self) -> None:
        super().__post_init__()
        trainable_groups(self.stage, self.freeze)  # checks the stage and the group names
        if self.video_fps is not None and self.video_num_frames is not None:
            raise ValueError("Set `video_fps` (GroundVTS-Q) or `video_num_frames` (GroundVTS-I), not both.")
        self.dataset_kwargs = {**(self.dataset_kwargs or {}), "skip_prepare_dataset": True}

    def video_kwargs(self) -> dict[str, Any]:
        """Processor video arguments of this run."""
        values = {
            "fps": self.video_fps,
            "num_frames": self.video_num_frames,
            "max_frames": self.video_max_frames,
            "max_pixels": self.video_max_pixels,
        }
        return {key: value for key, value in values.items() if value is not None}
