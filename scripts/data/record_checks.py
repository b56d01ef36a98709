"""Training records checked before step 1: every bad record reported with its file:line, none found at step 50,000.

A training record is `{"messages": [...], "videos": [path, ...]}` in transformers' structured chat format. It is
usable when it has a user turn holding one `{"type": "video"}` block per video, ends with a non-empty assistant turn
(the answer the loss learns), and every video exists and decodes. `read_records` reads a .jsonl / .json / `datasets`
folder with a locator per record (`file:line`, `file:#index`); `check_records` applies the checks (videos decoded
once each, in parallel) and returns the usable records and one `BadRecord` per other one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from groundvts.processing.annotations import read_text, text_lines
from groundvts.processing.prompts import message_text

__all__ = [
    "VIDEO_CHECKS", "BadRecord", "read_records", "record_problem", "video_problem", "check_records", "summarize",
]

# How much of each video is checked: "decode" opens it and decodes its first frame, "exists" only looks for the
# file, "none" trusts the data.
VIDEO_CHECKS = ("decode", "exists", "none")


@dataclass(frozen=True)
class BadRecord:
    locator: str  # file:line (jsonl), file:#index (json list, datasets folder)
    reason: str

    def __str__(self) -> str:
        return f"{self.locator}: {self.reason}"


def read_records(path: str | Path) -> list[tuple[str, Any]]:
    """(locator, record) for every record of a .jsonl / .json file or a saved `datasets` folder. A jsonl line that is
    not JSON is returned as a `BadRecord` in place of the record; blank lines are ignored."""
    path = Path(path)
    if path.is_dir():
        import datasets

        return [(f"{path}#{index}", record) for index, record in enumerate(datasets.load_from_disk(str(path)))]
    text = read_text(path)
    if path.suffix == ".jsonl":
        items: list[tuple[str, Any]] = []
        for number, line in enumerate(text_lines(text), start=1):
            if not line.strip():
                continue
            try:
                items.append((f"{path}:{number}", json.loads(line)))
            except json.JSONDecodeError as error:
                items.append((f"{path}:{number}", BadRecord(f"{path}:{number}", f"not JSON ({error.msg})")))
        return items
    try:
        data = json.loads(text) if text.strip() else []
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}:{error.lineno}: not valid JSON ({error.msg}); expected a list of records.") from None
    if isinstance(data, dict):  # a single record
        data = [data]
    if not isinstance(data, list):
        raise ValueError(f"{path} holds a JSON {type(data).__name__}; expected a list of records.")
    return [(f"{path}:#{index}", record) for index, record in enumerate(data)]


def _blocks(message: Mapping[str, Any]) -> list[Any]:
    content = message.get("content")
    return content if isinstance(content, list) else []


def record_problem(record: Any) -> str | None:
    """Why `record` cannot be trained on (structure only; videos are `video_problem`'s), or None."""
    if not isinstance(record, Mapping):
        return f"a record is a JSON object with `messages` and `videos`, got a {type(record).__name__}"
    messages, videos = record.get("messages"), record.get("videos")
    if not isinstance(messages, list) or not messages:
        return "no `messages` (a list of chat turns)"
    if not isinstance(videos, list) or not videos or not all(isinstance(v, str) and v for v in videos):
        return "no `videos` (a list with the video file of the conversation)"
    if not all(isinstance(m, Mapping) and m.get("role") in ("system", "user", "assistant") for m in messages):
        return "every turn needs a `role` of system, user or assistant"
    video_blocks = sum(
        1 for m in messages if m.get("role") == "user"
        for b in _blocks(m) if isinstance(b, Mapping) and b.get("type") == "video"
    )
    if video_blocks != len(videos):
        return (
            f"{len(videos)} video(s) but {video_blocks} {{'type': 'video'}} block(s) in the user turns; put one "
            "video block where each video goes (structured content: [{'type': 'video'}, {'type': 'text', ...}])"
        )
    last = messages[-1]
    if last.get("role") != "assistant" or not message_text(last).strip():
        return "no answer: the last turn must be a non-empty assistant turn (what the model learns to say)"
    return None


def video_problem(video: str, check: str = "decode") -> str | None:
    """Why `video` cannot be used (missing, no video stream, undecodable), or None."""
    if check == "none":
        return None
    if not Path(video).is_file():
        return f"video {video} does not exist"
    if check == "exists":
        return None
    import av

    try:
        with av.open(video) as container:
            if not container.streams.video:
                return f"video {video} has no video stream"
            next(container.decode(video=0))
    except StopIteration:
        return f"video {video} has no decodable frame"
    except (av.FFmpegError, OSError, ValueError) as error:
        return f"video {video} does not decode ({type(error).__name__}: {error})"
    return None


def check_records(
    items: Iterable[tuple[str, Any]], videos: str = "decode", workers: int = 8
) -> tuple[list[tuple[str, Any]], list[BadRecord]]:
    """(usable (locator, record) pairs, one `BadRecord` per other record), in input order. `videos` is one of
    `VIDEO_CHECKS`; each distinct video file is checked once."""
    if videos not in VIDEO_CHECKS:
        raise ValueError(f"data.check_videos must be one of {VIDEO_CHECKS}, got {videos!r}.")
    items = list(items)
    structural: dict[int, str] = {}
    for index, (locator, record) in enumerate(items):
        if isinstance(record, BadRecord):
            structural[index] = record.reason
        elif (problem := record_problem(record)) is not None:
            structural[index] = problem
    files = sorted({v for i, (_, r) in enumerate(items) if i not in structural for v in r["videos"]})
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:  # PyAV decodes outside the GIL
        problems = dict(zip(files, pool.map(lambda v: video_problem(v, videos), files)))
    good: list[tuple[str, Any]] = []
    bad: list[BadRecord] = []
    for index, (locator, record) in enumerate(items):
        reason = structural.get(index) or next((problems[v] for v in record["videos"] if problems[v]), None)
        if reason is None:
            good.append((locator, record))
        else:
            bad.append(BadRecord(locator, reason))
    return good, bad


def summarize(bad: Sequence[BadRecord], limit: int = 20) -> str:
    """The bad records as lines (the first `limit`, then a count of the rest)."""
    lines = [str(row) for row in bad[:limit]]
    if len(bad) > limit:
        lines.append(f"... and {len(bad) - limit} more")
    return "\n".join(lines)
