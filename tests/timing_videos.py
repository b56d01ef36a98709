"""Tiny event videos with known frame times, for the time-axis tests (processors, `ground`, `infer`).

Every video is dark until `EVENT_START` seconds and bright from then on, so a test can see in the pixels which
sampled frame first shows the event and compare that with the time the model is told. Constant-rate files are
encoded at their rate; the variable-rate one gets explicit presentation times with irregular gaps.
"""

from __future__ import annotations

import math
from pathlib import Path

from groundvts.processing.tiny import write_test_video

EVENT_START = 3.0  # seconds
DURATION = 6.0
DARK, BRIGHT = 16, 235
SIZE = (32, 32)  # px; the tiny processors resize to 28 x 28: one merged token per Qwen temporal patch

# Slow at first (irregular 0.2-0.35 s gaps, like a phone dropping frames in low light), then ~30 fps with 1-ms
# jitter: frame i's time is nowhere near i / average fps (the event frame sits at 3.0 s, index / fps says 0.7 s).
_SLOW_GAPS = (0.25, 0.35, 0.2, 0.3)
VFR_NOMINAL_FPS = 30.0


def vfr_frame_times() -> list[float]:
    times, t, k = [], 0.0, 0
    while t < EVENT_START - 1e-9:
        times.append(round(t, 3))
        t += _SLOW_GAPS[k % len(_SLOW_GAPS)]
        k += 1
    fast = [EVENT_START + i / VFR_NOMINAL_FPS + (0.001 if i % 3 == 1 else 0.0) for i in range(90)]
    return times + [round(t, 3) for t in fast]


def cfr_frame_times(fps: float, duration: float = DURATION) -> list[float]:
    return [i / fps for i in range(math.ceil(duration * fps))]


def event_levels(frame_times: list[float]) -> list[int]:
    return [BRIGHT if t >= EVENT_START - 1e-9 else DARK for t in frame_times]


def write_event_video(folder: Path, fps: float | None) -> tuple[Path, list[float]]:
    """(path, true frame times): constant-rate at `fps`, or the variable-rate video when `fps` is None."""
    if fps is None:
        times = vfr_frame_times()
        path = write_test_video(
            folder / "event_vfr.mp4", len(times), VFR_NOMINAL_FPS, SIZE, frame_times=times,
            gray_levels=event_levels(times),
        )
        return path, times
    times = cfr_frame_times(fps)
    path = write_test_video(folder / f"event_{fps:g}fps.mp4", len(times), fps, SIZE, gray_levels=event_levels(times))
    return path, times


def max_gap(frame_times: list[float]) -> float:
    """The longest time between two consecutive source frames (the slack of 'the frame on screen at t')."""
    return max(later - earlier for earlier, later in zip(frame_times, frame_times[1:]))
