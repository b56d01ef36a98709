"""The scene flags shared by `groundvts make-synthetic` and `groundvts synthetic-benchmark`.

They are plain argparse options: `--size W H` and the other ranges take exactly two values, a shape a settings
dataclass field cannot express. `scene_kwargs` turns them into `make_synthetic_benchmark` (`SceneConfig`) keyword
arguments; `scene_defaults` does the reverse, for a command whose scenes default to other values.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from groundvts.scripts.data.synthetic.scenes import EVENT_TYPES

# flag dest -> the (min, max) or (width, height) keyword pair it sets
_PAIRS = {
    "size": ("width", "height"),
    "duration": ("min_duration", "max_duration"),
    "window_ratio": ("min_window_ratio", "max_window_ratio"),
    "distractors": ("min_distractors", "max_distractors"),
}


def add_scene_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """The scene options (frame size, fps, durations, windows, events, distractors, shape size) on `parser`."""
    parser.add_argument(
        "--size", type=int, nargs=2, default=(112, 112), metavar=("W", "H"), help="frame size (default 112 112)"
    )
    parser.add_argument("--fps", type=float, default=4.0, help="frames per second (default 4)")
    parser.add_argument("--duration", type=float, nargs=2, default=(8.0, 20.0), metavar=("MIN", "MAX"),
                        help="video length range in seconds (default 8 20)")
    parser.add_argument("--window-ratio", type=float, nargs=2, default=(0.15, 0.6), metavar=("MIN", "MAX"),
                        help="event window length as a fraction of the video (default 0.15 0.6)")
    parser.add_argument("--event-types", nargs="+", default=list(EVENT_TYPES), metavar="EVENT",
                        help=f"target event types (default all: {' '.join(EVENT_TYPES)})")
    parser.add_argument("--distractors", type=int, nargs=2, default=(2, 4), metavar=("MIN", "MAX"),
                        help="distractor objects per video (default 2 4)")
    parser.add_argument("--distractor-event-prob", type=float, default=0.5,
                        help="chance that a distractor has an event of its own (default 0.5)")
    parser.add_argument("--shape-size", type=float, default=None, help="object size in px (default 22%% of the side)")


def scene_kwargs(namespace: argparse.Namespace) -> dict[str, Any]:
    """`make_synthetic_benchmark` keyword arguments from the options `add_scene_arguments` added."""
    return dict(
        width=namespace.size[0], height=namespace.size[1], fps=namespace.fps, min_duration=namespace.duration[0],
        max_duration=namespace.duration[1], min_window_ratio=namespace.window_ratio[0],
        max_window_ratio=namespace.window_ratio[1], event_types=tuple(namespace.event_types),
        min_distractors=namespace.distractors[0], max_distractors=namespace.distractors[1],
        distractor_event_prob=namespace.distractor_event_prob, shape_size=namespace.shape_size,
    )


def scene_defaults(scenes: Mapping[str, Any]) -> dict[str, Any]:
    """`parser.set_defaults` values that make `scene_kwargs` give `scenes` (a partial set of its keywords)."""
    defaults: dict[str, Any] = {}
    for dest, (first, second) in _PAIRS.items():
        if first in scenes or second in scenes:
            defaults[dest] = (scenes[first], scenes[second])
    for dest in ("fps", "distractor_event_prob", "shape_size"):
        if dest in scenes:
            defaults[dest] = scenes[dest]
    if "event_types" in scenes:
        defaults["event_types"] = list(scenes["event_types"])
    return defaults
