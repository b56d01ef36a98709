"""Verifiable rewards for grounding, as plain functions in TRL's reward-function form (for `GRPOTrainer`).

TRL calls each function as `reward(prompts=..., completions=..., completion_ids=..., **columns)`, where `columns`
are the dataset's other columns, one value per completion, and takes back one float per completion. Completions are
strings, or conversational (`[{"role": "assistant", "content": ...}]`); both are read. Columns used:

- `window`: the true span `[start, end]` in seconds (`temporal_iou_reward`);
- `duration`: the video length in seconds (optional for moments; needed for highlights);
- `relevant_clip_ids`: the 2-s clips QVHighlights marks relevant (`highlight_reward`).

Scoring follows the evaluation's default convention (GroundVTS `eval_auto`): the answer's own numbers, not sorted or
clamped, so a reversed span ("from 8 to 3") earns 0 and a span reaching past the video is scored as it is. An answer
that names no time earns 0. Any other failure names the row it came from.

A row whose truth column is `None` (a highlight row in a mixed dataset, for the moment rewards; a moment row, for
the highlight reward) gets `None`, which TRL reads as "this reward does not apply" and leaves out of that row's sum.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from groundvts.processing.parsing import parse_hd_answer, parse_mr_answer, temporal_iou
from groundvts.processing.prompts import HD_CLIP_SECONDS, message_text

__all__ = ["completion_text", "temporal_iou_reward", "format_reward", "highlight_reward", "GROUNDING_REWARDS"]


def completion_text(completion: Any) -> str:
    """The text of one completion: a string, or the last message of a conversational completion."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence) and completion and isinstance(completion[-1], dict):
        return message_text(completion[-1])
    raise TypeError(f"a completion is a string or a list of messages, got {type(completion).__name__}")


def _column(values: Sequence[Any] | None, name: str, count: int) -> Sequence[Any]:
    if values is None:
        raise ValueError(f"this reward needs a `{name}` column in the dataset (one value per prompt)")
    if len(values) != count:
        raise ValueError(f"`{name}` has {len(values)} values for {count} completions")
    return values


def _per_row(completions: Sequence[Any], score: Any, truth: Sequence[Any] | None = None) -> list[float | None]:
    """`score(index, text)` for every completion (None where `truth[index]` is None); an error names the row."""
    rewards: list[float | None] = []
    for index, completion in enumerate(completions):
        if truth is not None and truth[index] is None:
            rewards.append(None)
            continue
        try:
            rewards.append(float(score(index, completion_text(completion))))
        except (TypeError, ValueError) as error:
            raise ValueError(f"reward for completion {index}: {error}") from error
    return rewards


def temporal_iou_reward(
    completions: Sequence[Any], window: Sequence[Sequence[float]] | None = None,
    duration: Sequence[float | None] | None = None, **kwargs: Any,
) -> list[float | None]:
    """Temporal IoU of each answer's span with the true `window` (0 when the answer names no time, or reverses it)."""
    windows = _column(window, "window", len(completions))
    durations = duration if duration is not None else [None] * len(completions)

    def score(index: int, text: str) -> float:
        start, end = (float(v) for v in windows[index])
        if not (math.isfinite(start) and math.isfinite(end)) or end < start:
            raise ValueError(f"the true window {list(windows[index])} is not a span (start <= end, finite)")
        parsed = parse_mr_answer(text, durations[index])
        if parsed is None or parsed.raw_end < parsed.raw_start:
            return 0.0
        return temporal_iou((parsed.raw_start, parsed.raw_end), (start, end))

    return _per_row(completions, score, windows)


def format_reward(
    completions: Sequence[Any], window: Sequence[Sequence[float] | None] | None = None, **kwargs: Any
) -> list[float | None]:
    """1 when the answer names a span in order (`parse_mr_answer` reads one, end >= start), else 0 (None on rows
    whose `window` is None: not a moment question)."""

    def score(index: int, text: str) -> float:
        parsed = parse_mr_answer(text)
        return float(parsed is not None and parsed.raw_end >= parsed.raw_start)

    return _per_row(completions, score, window)


def highlight_reward(
    completions: Sequence[Any], relevant_clip_ids: Sequence[Sequence[int]] | None = None,
    duration: Sequence[float] | None = None, **kwargs: Any,
) -> list[float | None]:
    """F1 between the 2-s clips the answer calls highlights (any level) and the `relevant_clip_ids` (0 when the
    answer names no span)."""
    relevant_rows = _column(relevant_clip_ids, "relevant_clip_ids", len(completions))
    durations = _column(duration, "duration", len(completions))

    def score(index: int, text: str) -> float:
        if durations[index] is None:
            raise ValueError("a highlight row needs its `duration` (to place the 2-s clips)")
        parsed = parse_hd_answer(text, float(durations[index]), HD_CLIP_SECONDS)
        relevant = {int(clip) for clip in relevant_rows[index]}
        if parsed is None or not relevant:
            return 0.0
        predicted = {clip for clip, level in enumerate(parsed.saliency_scores) if level > 0}
        hits = len(predicted & relevant)
        return 0.0 if hits == 0 else 2 * hits / (len(predicted) + len(relevant))

    return _per_row(completions, score, relevant_rows)


# The reward set for moment-retrieval prompts: accuracy and format, as in the published GRPO grounding recipes.
GROUNDING_REWARDS = (temporal_iou_reward, format_reward)
