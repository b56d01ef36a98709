"""Argument checks that fail early with a message naming the bad input and how to fix it.

Hub-facing helper: copied next to the processors by `save_pretrained`, so it imports nothing from `groundvts`.
"""

import math
from collections.abc import Mapping
from typing import Any

# Video sampling arguments that must be strictly positive when given.
_POSITIVE_VIDEO_ARGS = ("fps", "num_frames", "min_frames", "max_frames")


def check_positive(value: Any, name: str) -> None:
    """Raise a ValueError unless `value` is a finite number > 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"`{name}` must be a number > 0, got {value!r}.")


def check_keep_ratio(keep_ratio: Any, name: str = "keep_ratio") -> float:
    """Return ρ as a float; raise unless 0 < ρ ≤ 1 (the share of video tokens VTS keeps)."""
    if isinstance(keep_ratio, bool) or not isinstance(keep_ratio, (int, float)) or not 0 < keep_ratio <= 1:
        raise ValueError(f"`{name}` (ρ, the share of video tokens kept) must be in (0, 1], got {keep_ratio!r}.")
    return float(keep_ratio)


def kept_token_count(num_video_tokens: int, keep_ratio: float) -> int:
    """K = ⌈ρ·N⌉, the number of video tokens VTS keeps out of N."""
    keep_ratio = check_keep_ratio(keep_ratio)
    # Round before ceil so that e.g. 0.7 * 10 = 7.000000000000001 keeps 7, not 8.
    return math.ceil(round(keep_ratio * num_video_tokens, 9))


def check_query(query: Any, name: str = "query") -> str:
    """Return the stripped query; raise if it is not a string or is empty."""
    if not isinstance(query, str):
        raise ValueError(f"`{name}` must be a string, got {type(query).__name__}.")
    stripped = query.strip()
    if not stripped:
        raise ValueError(f"`{name}` is empty; pass the text of the moment or question to ground.")
    return stripped


def check_video_call_kwargs(kwargs: Mapping[str, Any]) -> None:
    """Check sampling arguments given to a processor call, flat or inside `videos_kwargs`."""
    sources = [kwargs, kwargs.get("videos_kwargs") or {}]
    for source in sources:
        for name in _POSITIVE_VIDEO_ARGS:
            if source.get(name) is not None:
                check_positive(source[name], name)


def check_videos_given(text: Any, videos: Any, video_token: str) -> None:
    """A prompt with a video placeholder needs its video. The usual cause is TRL's `SFTTrainer` preparing a
    messages+videos dataset itself (it renders the chat template without the videos): say what it needs."""
    texts = [text] if isinstance(text, str) else list(text or [])
    if videos is None and any(isinstance(t, str) and video_token in t for t in texts):
        raise ValueError(
            f"The prompt holds a video placeholder ({video_token}) but no video was passed: call the processor with "
            "videos=[path, ...]. Training with TRL's SFTTrainer? It does not feed videos itself: use "
            "groundvts.trainers.GroundVTSTrainer, or give SFTTrainer these three settings: "
            "data_collator=GroundVTSVideoCollator(processor) and, in its SFTConfig, remove_unused_columns=False and "
            'dataset_kwargs={"skip_prepare_dataset": True} (see docs/training.md).'
        )
