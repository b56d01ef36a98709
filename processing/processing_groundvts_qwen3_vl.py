"""GroundVTS processor for Qwen3-VL backbones (GroundVTS-Q3).

Qwen3-VL tells the model time as text: before every temporal patch (2 frames) of a video the prompt says
`<{t:.1f} seconds>`, then `<|vision_start|>`, the patch's `<|video_pad|>` tokens and `<|vision_end|>`. The stock
processor derives t from `frame index / fps` (24 fps when the fps is unknown). On top of `Qwen3VLProcessor`, with the
GroundVTS video path shared with GroundVTS-Q (`qwen_vl_processing.py`: file paths, frames + metadata, sampling at a
target fps or `num_frames` under a `max_frames` cap, `query_mask`), this processor
- writes each patch's timestamp from the kept frames' true times (presentation times for variable-rate files):
  the mean of the patch's first and last frame time, Qwen3-VL's own formula;
- refuses frames whose fps is unknown instead of assuming one (the timestamps would be fiction);
- applies the reference per-frame pixel cap (`cap_pixels_per_frame=True`) unless the call or saved config says not;
  a call's `max_pixels` means pixels per frame, as for GroundVTS-Q (stock Qwen3-VL's `size["longest_edge"]` is the
  whole video's budget).
`video_token_times` gives the [start, end) seconds of every visual token (for grounding results and plots).

Hub-facing: saved next to the weights with its flat helpers and loaded with
`AutoProcessor.from_pretrained(repo, trust_remote_code=True)`.
"""

from typing import Any

import torch
from transformers.models.qwen3_vl.processing_qwen3_vl import Qwen3VLProcessor

from .input_checks import check_positive
from .qwen_vl_processing import GroundVTSQwenVLProcessorMixin
from .video_sampling import align_metadata, flatten_videos


def patch_frame_times(metadata: Any, temporal_patch_size: int) -> list[list[float]]:
    """The true times (s) of the frames of each temporal patch; a last, short patch repeats its last frame (as the
    video processor pads it)."""
    times = [float(t) for t in metadata.timestamps]
    if pad := -len(times) % temporal_patch_size:
        times += times[-1:] * pad
    return [times[i : i + temporal_patch_size] for i in range(0, len(times), temporal_patch_size)]


def patch_timestamps(metadata: Any, temporal_patch_size: int) -> list[float]:
    """The second written before each temporal patch: the mean of its first and last frame's true time."""
    return [(frames[0] + frames[-1]) / 2 for frames in patch_frame_times(metadata, temporal_patch_size)]


def video_token_times(
    metadata: Any, video_grid_thw: Any, temporal_patch_size: int = 2, merge_size: int = 2
) -> torch.Tensor:
    """(N, 2) float64 [start, end) seconds of each of a video's N visual tokens, in the model's token order: a token
    covers its temporal patch, from the patch's first frame to the next patch's first frame (the video's end for
    the last patch)."""
    t, h, w = (int(v) for v in video_grid_thw)
    patches = patch_frame_times(metadata, temporal_patch_size)
    if len(patches) != t:
        raise ValueError(f"video_grid_thw says {t} temporal patches but the video metadata has {len(patches)}.")
    duration = float(metadata.duration) if metadata.duration else float(metadata.total_num_frames) / float(metadata.fps)
    starts = torch.tensor([frames[0] for frames in patches], dtype=torch.float64)
    ends = torch.cat([starts[1:], torch.tensor([max(duration, float(starts[-1]))], dtype=torch.float64)])
    unit_times = torch.stack([starts, ends], dim=1)
    return unit_times.repeat_interleave((h // merge_size) * (w // merge_size), dim=0)


class GroundVTSQwen3VLProcessor(GroundVTSQwenVLProcessorMixin, Qwen3VLProcessor):
    """Stock Qwen3-VL processing plus the GroundVTS video path, true-time timestamps and `query_mask`."""

    # Qwen3-VL's reference (qwen-vl-utils) caps each frame's pixels within the per-video budget.
    default_cap_pixels_per_frame = True
    longest_edge_is_per_video = True

    def _process_videos(self, videos, **kwargs):
        _check_frame_rates_known(videos, kwargs.get("video_metadata"))
        max_pixels = kwargs.pop("max_pixels", None)
        if max_pixels is None:
            return super()._process_videos(videos, **kwargs)
        check_positive(max_pixels, "max_pixels")
        # Per frame: the reference cap allows min(max_video_tokens patches, video budget / frames) per frame, so cap
        # the tokens at max_pixels and make the budget too large to bind for any video within the frame cap.
        video = self.video_processor
        size = dict(kwargs.pop("size", None) or video.size)
        max_frames = kwargs.get("max_frames") or getattr(video, "max_frames", None) or 768
        size["longest_edge"] = max_pixels * int(max_frames)
        size["shortest_edge"] = min(int(size["shortest_edge"]), max_pixels)
        saved = video.max_video_tokens
        video.max_video_tokens = max(1, max_pixels // (video.patch_size * video.merge_size) ** 2)
        try:
            return super()._process_videos(videos, size=size, cap_pixels_per_frame=True, **kwargs)
        finally:
            video.max_video_tokens = saved

    def replace_video_token(self, video_inputs: dict, video_idx: int, **kwargs) -> str:
        # As stock, one `<t seconds><|vision_start|>pads<|vision_end|>` block per temporal patch, but t from the kept
        # frames' true times (stock: frame index / fps, which is wrong for variable-rate video).
        metadata = video_inputs["video_metadata"][video_idx]
        grid = video_inputs["video_grid_thw"][video_idx]
        tokens_per_patch = int(grid[1]) * int(grid[2]) // self.video_processor.merge_size**2
        patch = self.vision_start_token + self.video_token * tokens_per_patch + self.vision_end_token
        times = patch_timestamps(metadata, self.video_processor.temporal_patch_size)
        return "".join(f"<{t:.1f} seconds>{patch}" for t in times)


def _check_frame_rates_known(videos: Any, video_metadata: Any) -> None:
    """Frames given without an fps (or frame times, or the source indices of frames with an fps) have no times."""
    batch = flatten_videos(videos)
    for index, (video, metadata) in enumerate(zip(batch, align_metadata(video_metadata, len(batch)))):
        if isinstance(video, str):
            continue  # a file: its own rate and presentation times are read
        if metadata is None or (metadata.fps is None and metadata.frame_times is None):
            raise ValueError(
                f"Video {index} was given as frames without an fps, so Qwen3-VL's '<t seconds>' timestamps cannot be "
                "derived: pass video_metadata={'fps': ..., 'total_num_frames': ...} (or 'frame_times') for it, or the "
                "video file's path."
            )


GroundVTSQwen3VLProcessor.register_for_auto_class("AutoProcessor")

__all__ = ["GroundVTSQwen3VLProcessor", "patch_timestamps", "video_token_times"]
