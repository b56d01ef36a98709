"""GroundVTS processor for Qwen2.5-VL backbones (GroundVTS-Q).

On top of `Qwen2_5_VLProcessor` it
- takes videos as file paths, decoded frames, or frames + `video_metadata`, and samples them at a target fps
  (default 2.0) or a fixed `num_frames`, within `min_frames`/`max_frames` (the cap binds `num_frames` too), so that
  `second_per_grid_ts = temporal_patch_size / sampled fps` is the real time per temporal patch (never the 24 fps
  fallback); variable-rate files are sampled at evenly spaced times from their presentation timestamps;
- returns `query_mask`, 1 exactly on the question text of the last user turn (what VTS pools as its query).

Hub-facing: saved next to the weights with its flat helpers and loaded with
`AutoProcessor.from_pretrained(repo, trust_remote_code=True)`.
"""

from transformers.models.qwen2_5_vl.processing_qwen2_5_vl import Qwen2_5_VLProcessor

from .qwen_vl_processing import GroundVTSQwenVLProcessorMixin


class GroundVTSQwen2_5_VLProcessor(GroundVTSQwenVLProcessorMixin, Qwen2_5_VLProcessor):
    """Stock Qwen2.5-VL processing plus the GroundVTS video path and `query_mask`; `second_per_grid_ts` is
    temporal_patch_size / the real sampled fps."""


GroundVTSQwen2_5_VLProcessor.register_for_auto_class("AutoProcessor")

__all__ = ["GroundVTSQwen2_5_VLProcessor"]
