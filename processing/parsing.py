"""Read time spans out of generated answers.

Moment retrieval follows the official GroundVTS parser's forms (`a to b`, `a - b`, `a and b`, with or without
`s`/`sec`/`seconds`; else the first two numbers; else one number with a beginning/end word) and adds `m:ss`
clock times, signed numbers (`-3`, `−3`; a minus between two numbers is the separator) and decimals without a
leading zero (`.5`). Unlike the official parser, spans are sorted and clamped to [0, duration], and both fixes are
reported as flags (`swapped`, `clamped`; `raw_start`/`raw_end` keep what the answer said). Unparsable text gives
`None` (it scores IoU 0 and stays in the denominator).

Highlight detection reads `very important / important / less important from a to b, c to d; ...` into windows
and scores every 2-s clip with the highest level overlapping it (4 / 3 / 2, else 0); spans without a level count
as `important`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from .input_checks import check_positive
from .prompts import HD_CLIP_SECONDS, HD_LEVEL_SCORES


# A number never starts inside another one; "-"/"−" is a sign only where it cannot be the "a - b" separator (not
# right after a word character, "." or ")"), and a decimal may drop its leading zero (".5").
_SIGN = r"(?:(?<![\w.)])[-−])?"
_NUMBER = rf"(?<![\w.:]){_SIGN}(?:(?:\d+:)?\d+:\d{{2}}(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
_UNIT = r"(?:seconds?|secs?|s)\b"
_SPAN = re.compile(rf"({_NUMBER})\s*(?:{_UNIT})?\s*(?:to|and|-|–|—)\s*({_NUMBER})\s*(?:{_UNIT})?")
_NUMBER_ONLY = re.compile(_NUMBER)
_BEGINNING_WORDS = re.compile(r"\b(?:beginning|begins?|start|starts|first|opening|early|initial)\b")
_ENDING_WORDS = re.compile(r"\b(?:end|ends|ending|last|final|closing|late)\b")
_LEVEL = re.compile(r"very important|less important|important")
UNTAGGED_LEVEL = "important"


@dataclass(frozen=True)
class MomentPrediction:
    """A parsed moment: `start <= end`, inside [0, duration] when a duration was given."""

    start: float
    end: float
    raw_start: float
    raw_end: float
    swapped: bool  # the answer gave the end first
    clamped: bool  # the answer reached outside [0, duration]
    form: str  # "span", "two_numbers" or "one_number"

    @property
    def window(self) -> tuple[float, float]:
        return (self.start, self.end)


@dataclass(frozen=True)
class HighlightWindow:
    start: float
    end: float
    level: str
    score: int


@dataclass(frozen=True)
class HighlightPrediction:
    windows: tuple[HighlightWindow, ...]
    saliency_scores: tuple[int, ...]  # one per 2-s clip, ⌈duration / 2⌉ clips
    swapped: bool
    clamped: bool

    @property
    def relevant_windows(self) -> list[list[float]]:
        """`[[start, end, score], ...]` in the listed order (the QVHighlights prediction format)."""
        return [[window.start, window.end, float(window.score)] for window in self.windows]


def temporal_iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    """inter / union of two sorted windows `(start, end)`; 0 when the union is empty.

    The qvhighlights metric keeps a private copy of this definition (it loads with `evaluate.load`, without
    groundvts); moment_retrieval computes the same formula in float32, as its reference (nncore) does. A non-finite
    bound gives 0 too: the union is then NaN or infinite.
    """
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = (a[1] - a[0]) + (b[1] - b[0]) - inter
    return inter / union if union > 0 else 0.0


def to_seconds(number: str) -> float:
    """`12.5` → 12.5; `.5` → 0.5; `-3` → -3.0; `1:05` → 65.0; `1:02:03.5` → 3723.5; `-1:05` → -65.0."""
    number = number.strip().replace("−", "-")
    sign = -1.0 if number.startswith("-") else 1.0
    seconds = 0.0
    for part in number.lstrip("+-").split(":"):
        seconds = seconds * 60 + float(part)
    return sign * seconds


def _fix_window(
    raw_start: float, raw_end: float, duration: float | None
) -> tuple[float, float, bool, bool]:
    swapped = raw_start > raw_end
    start, end = (raw_end, raw_start) if swapped else (raw_start, raw_end)
    upper = math.inf if duration is None else duration
    fixed_start, fixed_end = min(max(start, 0.0), upper), min(max(end, 0.0), upper)
    return fixed_start, fixed_end, swapped, (fixed_start, fixed_end) != (start, end)


def _check_duration(duration: float | None) -> None:
    if duration is not None:
        check_positive(duration, "duration")


def parse_mr_answer(text: str | None, duration: float | None = None) -> MomentPrediction | None:
    """(start, end) in seconds from a moment-retrieval answer, or None if it names no time."""
    _check_duration(duration)
    if not text:
        return None
    lower = text.lower()
    match = _SPAN.search(lower)
    if match:
        raw, form = (to_seconds(match.group(1)), to_seconds(match.group(2))), "span"
    else:
        numbers = [to_seconds(number) for number in _NUMBER_ONLY.findall(lower)]
        if len(numbers) >= 2:
            raw, form = (numbers[0], numbers[1]), "two_numbers"
        elif len(numbers) == 1 and duration is not None:
            at_beginning = bool(_BEGINNING_WORDS.search(lower))
            at_end = bool(_ENDING_WORDS.search(lower))
            if at_beginning == at_end:
                return None
            raw = (0.0, numbers[0]) if at_beginning else (duration - numbers[0], duration)
            form = "one_number"
        else:
            return None
    start, end, swapped, clamped = _fix_window(raw[0], raw[1], duration)
    return MomentPrediction(start, end, raw[0], raw[1], swapped, clamped, form)


def parse_hd_answer(
    text: str | None, duration: float, clip_seconds: float = HD_CLIP_SECONDS
) -> HighlightPrediction | None:
    """Highlight windows with levels and per-clip saliency scores, or None if the answer names no span."""
    check_positive(duration, "duration")
    check_positive(clip_seconds, "clip_seconds")
    if not text:
        return None
    lower = text.lower()
    levels = [(match.start(), match.group(0)) for match in _LEVEL.finditer(lower)]
    windows, any_swapped, any_clamped = [], False, False
    for match in _SPAN.finditer(lower):
        level = UNTAGGED_LEVEL
        for level_at, name in levels:
            if level_at < match.start():
                level = name
        start, end, swapped, clamped = _fix_window(to_seconds(match.group(1)), to_seconds(match.group(2)), duration)
        any_swapped, any_clamped = any_swapped or swapped, any_clamped or clamped
        windows.append(HighlightWindow(start, end, level, HD_LEVEL_SCORES[level]))
    if not windows:
        return None
    num_clips = math.ceil(round(duration / clip_seconds, 9))
    scores = []
    for clip in range(num_clips):
        clip_start, clip_end = clip * clip_seconds, (clip + 1) * clip_seconds
        overlapping = [w.score for w in windows if min(w.end, clip_end) - max(w.start, clip_start) > 0]
        scores.append(max(overlapping, default=0))
    return HighlightPrediction(tuple(windows), tuple(scores), any_swapped, any_clamped)
