"""The backbones the synthetic benchmark trains from scratch, and everything that differs between them, in one place.

`SYNTHETIC_BACKBONES[tag]` (`groundvts synthetic-benchmark --backbone TAG`) knows how to build the tiny processor and
the tiny model config of a backbone, its model class (through `hub_configs/backbones.py`), and when each temporal
patch of a processed video happens (for the vision pre-task's labels, `tower.py`):

- `qwen2_5_vl` (GroundVTS-Q): patch 14, frames resized to exactly `frame_side` px; time is M-RoPE only, so patch k
  covers [k, k + 1) x `second_per_grid_ts`.
- `qwen3_vl` (GroundVTS-Q3): patch 16, frames resized to `frame_side` rounded to the 32-px merge grid (56 -> 64 px:
  the same 2 x 2 merged tokens per temporal patch as GroundVTS-Q); time is `<t seconds>` text, and patch k covers
  its first frame's true time up to the next patch's (`video_token_times`); DeepStack from every vision block (at
  most three, the real model's count), each into one of the first decoder layers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

# Merged-token grid of both Qwen-VLs: 2 x 2 patches per token, 2 frames per temporal patch.
MERGE = 2
TEMPORAL_PATCH = 2
QWEN3_VL_PATCH = 16
QWEN3_VL_MAX_DEEPSTACK = 3


def _text_sizes(settings: Any, ids: Mapping[str, Any]) -> dict[str, Any]:
    """Language-model sizes and token ids shared by both Qwen-VL configs."""
    heads = max(settings.hidden // 32, 2)
    return dict(
        vocab_size=ids["vocab_size"], hidden_size=settings.hidden, intermediate_size=3 * settings.hidden,
        num_hidden_layers=settings.layers, num_attention_heads=heads, num_key_value_heads=heads,
        max_position_embeddings=4096, pad_token_id=ids["pad_token_id"], bos_token_id=ids["bos_token_id"],
        eos_token_id=ids["eos_token_id"],
    )


def _vision_ids(ids: Mapping[str, Any]) -> dict[str, Any]:
    return dict(image_token_id=ids["image_token_id"], video_token_id=ids["video_token_id"],
                vision_start_token_id=ids["vision_start_token_id"], vision_end_token_id=ids["vision_end_token_id"])


def _vts_fields() -> dict[str, Any]:
    from groundvts.scripts.data.synthetic.benchmark import KEEP_RATIO

    return dict(vts_keep_ratio=KEEP_RATIO, vts_strategy="dense", vts_reduction_dim=32)


# --- GroundVTS-Q (Qwen2.5-VL) ------------------------------------------------------------------------------------


def _qwen2_5_vl_processor(settings: Any, fps: float, tokenizer: Any) -> Any:
    from groundvts.processing.tiny import build_tiny_qwen2_5_vl_processor

    pixels = settings.frame_side * settings.frame_side
    return build_tiny_qwen2_5_vl_processor(
        max_pixels=pixels, min_pixels=pixels, fps=fps, max_frames=128, tokenizer=tokenizer
    )


def _qwen2_5_vl_config(processor: Any, settings: Any) -> Any:
    from groundvts.modeling.configuration_groundvts_qwen2_5_vl import GroundVTSQwen2_5_VLConfig
    from groundvts.processing.tiny import special_token_ids

    ids = special_token_ids(processor)
    text = _text_sizes(settings, ids)
    half = settings.hidden // text["num_attention_heads"] // 2  # M-RoPE sections (t, h, w) split head_dim / 2
    vision_heads = max(settings.vision_hidden // 32, 2)
    return GroundVTSQwen2_5_VLConfig(
        text_config=dict(
            **text, tie_word_embeddings=True,
            rope_parameters={"rope_type": "default", "rope_theta": 1e4,
                             "mrope_section": [half // 2, half // 4, half - half // 2 - half // 4]},
        ),
        vision_config=dict(
            depth=settings.vision_depth, hidden_size=settings.vision_hidden, intermediate_size=2 * settings.vision_hidden,
            num_heads=vision_heads, out_hidden_size=settings.hidden, patch_size=14, spatial_merge_size=MERGE,
            temporal_patch_size=TEMPORAL_PATCH, tokens_per_second=2, window_size=settings.frame_side,
            fullatt_block_indexes=list(range(settings.vision_depth)),
        ),
        **_vision_ids(ids), **_vts_fields(), tie_word_embeddings=True,
    )


def _qwen2_5_vl_patch_midpoints(processor: Any, video_kwargs: Mapping[str, Any], batch: Mapping[str, Any], row: int,
                                video: str) -> list[float]:
    seconds = float(batch["second_per_grid_ts"][row])
    return [(k + 0.5) * seconds for k in range(int(batch["video_grid_thw"][row][0]))]


# --- GroundVTS-Q3 (Qwen3-VL) -------------------------------------------------------------------------------------


def qwen3_vl_frame_side(frame_side: int) -> int:
    """The side Qwen3-VL frames are resized to: `frame_side` rounded to the merged-token grid (32 px), at least 32."""
    factor = QWEN3_VL_PATCH * MERGE
    return max(factor, round(frame_side / factor) * factor)


def _qwen3_vl_processor(settings: Any, fps: float, tokenizer: Any) -> Any:
    from groundvts.processing.tiny import build_tiny_qwen3_vl_processor

    side = qwen3_vl_frame_side(settings.frame_side)
    max_frames = 128
    # Per frame at most side x side (the reference per-frame cap, in merged tokens), within a per-video budget that
    # never binds under the frame cap, so every frame of every video is resized to the same side.
    return build_tiny_qwen3_vl_processor(
        max_pixels=side * side * max_frames, min_pixels=QWEN3_VL_PATCH * QWEN3_VL_PATCH * MERGE * MERGE, fps=fps,
        max_frames=max_frames, max_video_tokens=(side // (QWEN3_VL_PATCH * MERGE)) ** 2, tokenizer=tokenizer,
    )


def _qwen3_vl_config(processor: Any, settings: Any) -> Any:
    from groundvts.modeling.configuration_groundvts_qwen3_vl import GroundVTSQwen3VLConfig
    from groundvts.processing.tiny import special_token_ids

    ids = special_token_ids(processor)
    text = _text_sizes(settings, ids)
    head_dim = settings.hidden // text["num_attention_heads"]
    half = head_dim // 2
    # Qwen3-VL's interleaved M-RoPE splits head_dim / 2 as [24, 20, 20] of 64; the same shares here.
    t = half * 3 // 8
    sections = [t, (half - t) // 2, half - t - (half - t) // 2]
    side = qwen3_vl_frame_side(settings.frame_side)
    vision_heads = max(settings.vision_hidden // 32, 2)
    return GroundVTSQwen3VLConfig(
        text_config=dict(
            **text, head_dim=head_dim, tie_word_embeddings=True,
            rope_parameters={"rope_type": "default", "rope_theta": 1e4, "mrope_section": sections,
                             "mrope_interleaved": True},
        ),
        vision_config=dict(
            depth=settings.vision_depth, hidden_size=settings.vision_hidden, intermediate_size=2 * settings.vision_hidden,
            num_heads=vision_heads, out_hidden_size=settings.hidden, patch_size=QWEN3_VL_PATCH,
            spatial_merge_size=MERGE, temporal_patch_size=TEMPORAL_PATCH,
            num_position_embeddings=(side // QWEN3_VL_PATCH) ** 2,
            deepstack_visual_indexes=list(range(min(settings.vision_depth, QWEN3_VL_MAX_DEEPSTACK, settings.layers))),
        ),
        **_vision_ids(ids), **_vts_fields(), tie_word_embeddings=True,
    )


def _qwen3_vl_patch_midpoints(processor: Any, video_kwargs: Mapping[str, Any], batch: Mapping[str, Any], row: int,
                              video: str) -> list[float]:
    from groundvts.processing.processing_groundvts_qwen3_vl import video_token_times

    sampling = {key: video_kwargs[key] for key in ("fps", "num_frames", "max_frames") if key in video_kwargs}
    _, metadata = processor.sample_videos([video], **sampling)
    grid = batch["video_grid_thw"][row]
    per_patch = int(grid[1]) * int(grid[2]) // MERGE**2
    spans = video_token_times(metadata[0], grid, TEMPORAL_PATCH, MERGE)[::per_patch]
    return spans.mean(dim=1).tolist()


# --- registry ----------------------------------------------------------------------------------------------------

PatchMidpoints = Callable[[Any, Mapping[str, Any], Mapping[str, Any], int, str], list[float]]


@dataclass(frozen=True)
class SyntheticBackbone:
    """What the synthetic benchmark needs to know about one backbone."""

    tag: str  # `--backbone`; the plain model_type of `hub_configs.backbones`
    # (settings, fps, tokenizer) -> the tiny GroundVTS processor of `settings.frame_side`
    build_processor: Callable[[Any, float, Any], Any]
    # (processor, settings) -> a from-scratch GroundVTS config whose token ids match the processor
    build_config: Callable[[Any, Any], Any]
    # (processor, video kwargs of the call, processor outputs, row, video path) -> each temporal patch's mid time (s)
    patch_midpoints: PatchMidpoints

    def model_class(self) -> type:
        from groundvts.hub_configs.backbones import backbone_for

        return backbone_for(self.tag).load_model_class()


SYNTHETIC_BACKBONES: dict[str, SyntheticBackbone] = {
    "qwen2_5_vl": SyntheticBackbone("qwen2_5_vl", _qwen2_5_vl_processor, _qwen2_5_vl_config, _qwen2_5_vl_patch_midpoints),
    "qwen3_vl": SyntheticBackbone("qwen3_vl", _qwen3_vl_processor, _qwen3_vl_config, _qwen3_vl_patch_midpoints),
}
DEFAULT_BACKBONE = "qwen2_5_vl"


def synthetic_backbone(tag: str) -> SyntheticBackbone:
    """The registry entry of `tag`; ValueError naming the choices otherwise."""
    if tag not in SYNTHETIC_BACKBONES:
        raise ValueError(f"Unknown synthetic-benchmark backbone {tag!r}; choose from {sorted(SYNTHETIC_BACKBONES)}.")
    return SYNTHETIC_BACKBONES[tag]


def backbone_for_processor(processor: Any) -> SyntheticBackbone:
    """The registry entry of a GroundVTS processor (the tiny one or one loaded from a model folder), by its class."""
    from groundvts.hub_configs.backbones import BACKBONES

    name = type(processor).__name__
    for backbone in BACKBONES.values():
        if backbone.processor_class == name and backbone.tag in SYNTHETIC_BACKBONES:
            return SYNTHETIC_BACKBONES[backbone.tag]
    raise ValueError(
        f"The synthetic benchmark has no backbone for processor {name}; it trains {sorted(SYNTHETIC_BACKBONES)}."
    )
