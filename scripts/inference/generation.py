"""Batched, greedy video question answering that also returns the VTS selection.

Shared by `groundvts ground` and `groundvts infer`. One `generate` call per batch: a forward hook on the inner
model reads the keep masks and relevance scores from the prefill step (`return_vts_selection=True` travels
with the model kwargs), so the selection costs no extra pass. Prompts are left-padded, so a batch gives the
same answers as one-by-one calls. `SamplingSettings` holds the frame sampling and answer length (the commands'
`--fps`, `--num-frames`, `--max-pixels`, `--max-new-tokens`); loading lives in `loading.py`.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from groundvts.hub_configs.backbones import backbone_for
from groundvts.processing.input_checks import check_positive
from groundvts.processing.processing_groundvts_qwen3_vl import video_token_times
from groundvts.processing.prompts import user_turn
from groundvts.scripts.inference.video_cache import DecodedVideoCache

__all__ = [
    "VideoReadError", "VideoAnswer", "SamplingSettings", "prepare_batch", "check_prompt_fits", "generate_answers",
]


# Processor arguments that choose the frames (the rest, like max_pixels, shape them).
FRAME_SAMPLING_KEYS = ("fps", "num_frames")


class VideoReadError(ValueError):
    """A video of the batch is missing or cannot be decoded (the model never ran)."""


@dataclass
class VideoAnswer:
    """One generated answer and what VTS kept of its video (see `GroundingResult` for the fields)."""

    text: str
    video: str
    duration: float
    keep: torch.Tensor
    scores: torch.Tensor | None
    token_times: torch.Tensor
    grid: tuple[int, int, int]
    unit_times: torch.Tensor
    unit_frame_indices: list[int]
    keep_ratio: float
    strategy: str
    frame_times: list[float] = field(default_factory=list)  # true seconds of every sampled frame (PTS for VFR)
    frames_capped: bool = False  # max_frames made the sampling sparser than asked
    requested_frames: float | None = None  # frames the fps / num_frames asked for


@dataclass
class SamplingSettings:
    """How many frames to sample (the processor's defaults unless set) and how long an answer may be."""

    fps: float | None = field(
        default=None,
        metadata={"exclusive": "sampling", "help": "frames per second to sample (default: the processor's)"},
    )
    num_frames: int | None = field(
        default=None,
        metadata={
            "exclusive": "sampling",
            "help": "sample this many frames instead of an fps (at most the processor's max_frames; results say "
            "when capped)",
        },
    )
    max_pixels: int | None = field(
        default=None,
        metadata={
            "help": "pixels per frame at most (default: the processor's; the official Qwen eval uses 50176 = 64*28*28)"
        },
    )
    max_new_tokens: int = 64

    def __post_init__(self) -> None:
        if self.fps is not None and self.num_frames is not None:
            raise ValueError("Pass either fps or num_frames, not both.")
        for name in ("fps", "num_frames", "max_pixels", "max_new_tokens"):
            if (value := getattr(self, name)) is not None:
                check_positive(value, name)

    def processor_kwargs(self) -> dict[str, Any]:
        """The sampling overrides a processor call takes (only those that are set)."""
        return {
            name: value
            for name, value in (("fps", self.fps), ("num_frames", self.num_frames), ("max_pixels", self.max_pixels))
            if value is not None
        }


def prepare_batch(
    model: Any,
    processor: Any,
    videos: list[str],
    prompts: list[str],
    sampling: dict[str, Any],
    video_cache: DecodedVideoCache | None = None,
) -> Any:
    """Left-padded processor outputs for one video and prompt per row (metadata kept for the timeline); with
    `video_cache`, each file's sampled frames come from it (decoded on its first use)."""
    for video in videos:
        if not Path(video).is_file():
            raise FileNotFoundError(f"Video file not found: '{video}'.")
    texts = [
        processor.apply_chat_template([user_turn(prompt)], add_generation_prompt=True, tokenize=False)
        for prompt in prompts
    ]
    video_inputs: dict[str, Any] = {"videos": videos}
    if video_cache is not None and video_cache.supports(processor):
        frame_sampling = {key: sampling[key] for key in FRAME_SAMPLING_KEYS if key in sampling}
        decoded = [video_cache.sampled(processor, video, frame_sampling) for video in videos]
        # Sampled frames with their metadata are used as given: the frame arguments have done their work.
        video_inputs = {"videos": [frames for frames, _ in decoded], "video_metadata": [meta for _, meta in decoded]}
        sampling = {key: value for key, value in sampling.items() if key not in FRAME_SAMPLING_KEYS}
    return processor(
        text=texts, padding=True, padding_side="left", return_metadata=True, return_tensors="pt",
        **video_inputs, **sampling,
    )


def check_prompt_fits(model: Any, inputs: Any, prompts: list[str], max_new_tokens: int) -> None:
    """Refuse prompts whose text alone, with the answer, runs past the model's positions (the answer would be made at
    positions it never saw); warn when the video tokens push the whole prompt past them."""
    limit = getattr(model.config.get_text_config(), "max_position_embeddings", None)
    if not limit:
        return
    visual_ids = [getattr(model.config, name, None) for name in ("video_token_id", "image_token_id")]
    visual = torch.isin(inputs["input_ids"], torch.tensor([i for i in visual_ids if i is not None]))
    lengths = inputs["attention_mask"].sum(dim=1)
    text_lengths = lengths - (visual & inputs["attention_mask"].bool()).sum(dim=1)
    for row, prompt in enumerate(prompts):
        if int(text_lengths[row]) + max_new_tokens > limit:
            raise ValueError(
                f"The prompt {prompt[:60]!r}... is {int(text_lengths[row])} text tokens; with max_new_tokens "
                f"{max_new_tokens} it passes the model's {limit} positions. Shorten the query or lower max_new_tokens."
            )
        if int(lengths[row]) + max_new_tokens > limit:
            warnings.warn(
                f"Prompt {row} is {int(lengths[row])} tokens with its video (+{max_new_tokens} to generate), past the "
                f"model's {limit} positions before VTS prunes it; sample fewer frames (--fps / --num-frames) if the "
                "answers look wrong.",
                stacklevel=3,
            )


def _capture_selection(model: Any) -> tuple[dict[str, Any], Any]:
    captured: dict[str, Any] = {}

    def hook(module: Any, args: Any, output: Any) -> None:
        if "keep" not in captured and getattr(output, "video_keep", None) is not None:
            captured["keep"] = [k.detach().cpu() for k in output.video_keep]
            scores = output.video_scores
            captured["scores"] = [s.detach().float().cpu() if s is not None else None for s in scores]

    return captured, model.model.register_forward_hook(hook)


@torch.no_grad()
def generate_answers(
    model: Any,
    processor: Any,
    videos: list[str],
    prompts: list[str],
    *,
    fps: float | None = None,
    num_frames: int | None = None,
    max_pixels: int | None = None,
    max_new_tokens: int = 64,
    video_cache: DecodedVideoCache | None = None,
) -> list[VideoAnswer]:
    """Greedy answers to `prompts[i]` about `videos[i]` (file paths), with each video's VTS selection; `video_cache`
    reuses frames decoded for earlier questions."""
    if len(videos) != len(prompts) or not videos:
        raise ValueError(f"Need one prompt per video, got {len(videos)} videos and {len(prompts)} prompts.")
    settings = SamplingSettings(fps=fps, num_frames=num_frames, max_pixels=max_pixels, max_new_tokens=max_new_tokens)
    sampling = settings.processor_kwargs()
    try:
        inputs = prepare_batch(model, processor, videos, prompts, sampling, video_cache)
    except (ValueError, OSError) as error:  # FileNotFoundError is an OSError
        raise VideoReadError(str(error)) from error
    metadata = inputs.pop("video_metadata", None)
    check_prompt_fits(model, inputs, prompts, max_new_tokens)
    inputs = inputs.to(model.device)
    for key in ("pixel_values", "pixel_values_videos"):
        if key in inputs and inputs[key].is_floating_point():
            inputs[key] = inputs[key].to(model.dtype)
    captured, handle = _capture_selection(model)
    try:
        output = model.generate(
            **inputs, return_vts_selection=True, max_new_tokens=max_new_tokens, do_sample=False,
            pad_token_id=processor.tokenizer.pad_token_id,
        )
    finally:
        handle.remove()
    if "keep" not in captured:  # the kwarg did not reach the prefill: pay one more forward for the selection
        captured, handle = _capture_selection(model)
        try:
            model(**inputs, return_vts_selection=True)
        finally:
            handle.remove()
    new_tokens = output[:, inputs["input_ids"].shape[1] :]
    texts = processor.batch_decode(new_tokens, skip_special_tokens=True)
    answers = []
    tag = backbone_for(model.config.model_type).tag
    for row, (video, text) in enumerate(zip(videos, texts)):
        keep, scores = captured["keep"][row], captured["scores"][row]
        sampled = _sampled_frames(metadata[row] if metadata else None, video)
        if tag == "internvl":
            timeline = _internvl_timeline(inputs, row, keep.numel(), metadata[row])
        elif tag == "qwen3_vl":
            timeline = _qwen3_timeline(inputs, row, keep.numel(), metadata[row], processor)
        else:
            timeline = _qwen_timeline(inputs, row, keep.numel(), metadata[row], processor)
        answers.append(
            VideoAnswer(
                text=text, video=video, keep=keep, scores=scores,
                keep_ratio=float(model.config.vts_keep_ratio), strategy=str(model.config.vts_strategy), **timeline,
                **sampled,
            )
        )
    return answers


def _token_rows(unit_times: torch.Tensor, tokens_per_unit: int) -> torch.Tensor:
    return unit_times.repeat_interleave(tokens_per_unit, dim=0)


def _sampled_frames(metadata: Any, video: str) -> dict[str, Any]:
    """What the processor kept of `video` (its `video_metadata`): the kept frames' true times and whether the
    max_frames cap made them sparser than asked."""
    if metadata is None or getattr(metadata, "frames_indices", None) is None:
        raise ValueError(
            f"The processor returned no `video_metadata` for '{video}', so its frames cannot be timed; it predates "
            "GroundVTS's timing support. Re-save the model folder with `groundvts convert MODEL_DIR OUTPUT_DIR` (same "
            "weights, current processor) and use OUTPUT_DIR."
        )
    requested = getattr(metadata, "requested_frames", None)
    return dict(
        frame_times=[float(t) for t in metadata.timestamps],
        frames_capped=bool(getattr(metadata, "frames_capped", False)),
        requested_frames=float(requested) if requested is not None else None,
    )


def _duration(metadata: Any) -> float:
    return float(metadata.duration) if metadata.duration else metadata.total_num_frames / float(metadata.fps)


def _qwen_timeline(inputs: Any, row: int, num_tokens: int, metadata: Any, processor: Any) -> dict[str, Any]:
    """Qwen2.5-VL: temporal patch t covers [t, t + 1) * second_per_grid_ts (what M-RoPE encodes), clipped. The
    processor spaces the kept frames evenly in time (by presentation time for variable-rate files), so this is
    where each patch's frames really are, to within one source frame."""
    t, h, w = (int(v) for v in inputs["video_grid_thw"][row])
    merge = int(getattr(processor.video_processor, "merge_size", 2))
    rows, cols = h // merge, w // merge
    if t * rows * cols != num_tokens:
        raise ValueError(f"video_grid_thw {t}x{h}x{w} does not match the {num_tokens} tokens of video {row}.")
    step = float(inputs["second_per_grid_ts"][row])
    duration, indices = _duration(metadata), list(metadata.frames_indices)
    starts = torch.arange(t, dtype=torch.float64) * step
    unit_times = torch.stack([starts.clamp(max=duration), (starts + step).clamp(max=duration)], dim=1)
    frames_per_unit = int(getattr(processor.video_processor, "temporal_patch_size", 2))
    unit_frames = [indices[min(k * frames_per_unit, len(indices) - 1)] for k in range(t)]
    return dict(
        duration=duration, token_times=_token_rows(unit_times, rows * cols), grid=(t, rows, cols),
        unit_times=unit_times, unit_frame_indices=unit_frames,
    )


def _qwen3_timeline(inputs: Any, row: int, num_tokens: int, metadata: Any, processor: Any) -> dict[str, Any]:
    """Qwen3-VL: temporal patch t covers its first frame's true time up to the next patch's (the video's end for the
    last one); the `<t seconds>` text before it is the mean of its frames' times, inside that span."""
    video = processor.video_processor
    grid = inputs["video_grid_thw"][row]
    token_times = video_token_times(
        metadata, grid, int(getattr(video, "temporal_patch_size", 2)), int(getattr(video, "merge_size", 2))
    )
    if token_times.shape[0] != num_tokens:
        raise ValueError(f"video_grid_thw {grid.tolist()} does not match the {num_tokens} tokens of video {row}.")
    t = int(grid[0])
    per_patch = num_tokens // t
    merge = int(getattr(video, "merge_size", 2))
    rows, cols = int(grid[1]) // merge, int(grid[2]) // merge
    frames_per_unit = int(getattr(video, "temporal_patch_size", 2))
    indices = list(metadata.frames_indices)
    return dict(
        duration=_duration(metadata), token_times=token_times, grid=(t, rows, cols),
        unit_times=token_times[::per_patch],
        unit_frame_indices=[indices[min(k * frames_per_unit, len(indices) - 1)] for k in range(t)],
    )


def _internvl_timeline(inputs: Any, row: int, num_tokens: int, metadata: Any) -> dict[str, Any]:
    """InternVL: frame k shows the source frame the processor kept (segment centres); it covers the time from the
    midpoint with the previous frame to the midpoint with the next (0 and the duration at the ends), using the
    frames' true times."""
    num_frames = int(inputs["video_num_frames"][row])
    indices = list(metadata.frames_indices)
    if len(indices) != num_frames or num_tokens % num_frames:
        raise ValueError(f"Video {row}: {num_tokens} tokens over {num_frames} frames do not line up.")
    per_frame = num_tokens // num_frames
    side = math.isqrt(per_frame)
    rows, cols = (side, side) if side * side == per_frame else (1, per_frame)
    duration = _duration(metadata)
    times = torch.tensor(metadata.timestamps, dtype=torch.float64)
    ends = torch.tensor([duration], dtype=torch.float64)
    bounds = torch.cat([torch.zeros(1, dtype=torch.float64), (times[1:] + times[:-1]) / 2, ends])
    unit_times = torch.stack([bounds[:-1], bounds[1:]], dim=1)
    return dict(
        duration=duration, token_times=_token_rows(unit_times, per_frame), grid=(num_frames, rows, cols),
        unit_times=unit_times, unit_frame_indices=indices,
    )
