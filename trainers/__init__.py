"""GroundVTS training on TRL: the video collator, the stage freeze specs and callback, the SFT config and trainer."""

from .collator import GroundVTSVideoCollator, clean_messages
from .config import GroundVTSSFTConfig
from .stages import StageCallback, apply_stage, assert_stage, lora_config, trainable_counts
from .trainer import GroundVTSTrainer


__all__ = [
    "GroundVTSSFTConfig",
    "GroundVTSTrainer",
    "GroundVTSVideoCollator",
    "StageCallback",
    "apply_stage",
    "assert_stage",
    "clean_messages",
    "lora_config",
    "trainable_counts",
]
