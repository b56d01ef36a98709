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
