"""GroundVTS training on TRL: the video collator, the stage freeze specs and callback, the SFT config and trainer
(stages 0-3), and the GRPO config, trainer, prompts and rewards (stage 4)."""

from .collator import GroundVTSVideoCollator, clean_messages
from .config import GroundVTSSFTConfig
from .grpo_config import GroundVTSGRPOConfig
from .grpo_data import default_rewards, to_grpo_dataset
from .grpo_trainer import GroundVTSGRPOTrainer
from .stages import StageCallback, apply_stage, assert_stage, lora_config, trainable_counts
from .trainer import GroundVTSTrainer


__all__ = [
    "GroundVTSGRPOConfig",
    "GroundVTSGRPOTrainer",
    "GroundVTSSFTConfig",
    "GroundVTSTrainer",
    "GroundVTSVideoCollator",
    "StageCallback",
    "apply_stage",
    "assert_stage",
    "clean_messages",
    "default_rewards",
    "lora_config",
    "to_grpo_dataset",
    "trainable_counts",
]
