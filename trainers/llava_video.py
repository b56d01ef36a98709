"""LLaVA-Video-178K annotations (stages 1-2) as conversation records, with every bad entry reported.

Input: a json list (or json lines) of LLaVA-style entries, the layout of the LLaVA-Video-178K `*_cap_processed.json`
/ `*_oe_qa_processed.json` / `*_mc_qa_processed.json` files:
`{"id": ..., "video": "NextQA/NExTVideo/1006/8968804598.mp4", "data_source": "0_30_s_nextqa",
"conversations": [{"from": "human", "value": "<image>\\nQuestion ..."}, {"from": "gpt", "value": "..."}, ...]}`.

Output records have the Grounding-FT layout: `messages` with structured content (a `{"type": "video"}` block opening
the first user turn), `videos` = `[video_root / video]`, plus `id`, `data_source` and `source` (`file:#index` for a
json list, `file:line` for json lines).

Rules: roles `human`/`user` -> user, `gpt`/`assistant` -> assistant, one optional leading `system` turn; turns must
alternate user/assistant, start with a user turn and end with an assistant turn. The video marker (`<image>` in
LLaVA-Video-178K, `<video>` elsewhere) may appear once, in the first user turn, anywhere in it: it is removed and
the video block goes first, as LLaVA does; with no marker the video block is added the same way; a marker anywhere
else, or twice, skips the entry. Entries without a video, with an empty turn (after removing the marker) or with
an unknown role are skipped; `check_videos=True` also skips entries whose video file does not exist.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datasets import Dataset, Features, List, Value

from groundvts.processing.annotations import SkippedRow, read_text, text_lines


ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}
VIDEO_MARKERS = ("<image>", "<video>")
# The marker and the whitespace around it become one space (nothing at either end of the turn).
_MARKER = re.compile(r"\s*(?:<image>|<video>)\s*")

FEATURES = Features(
    {
        "messages": List(
            {"role": Value("string"), "content": List({"type": Value("string"), "text": Value("string")})}
        ),
        "videos": List(Value("string")),
        "id": Value("string"),
        "data_source": Value("string"),
        "source": Value("string"),
    }
)


class _EntryError(Exception):
    pass


@dataclass
class LoadedConversations:
    """What `load_llava_video` read: the records, one `SkippedRow` per unusable entry, and the records as a
    `datasets.Dataset` (`.dataset`, columns of `FEATURES`; Arrow adds `text: None` to the video block)."""

    records: list[dict[str, Any]]
    skipped: list[SkippedRow]

    @property
    def dataset(self) -> Dataset:
        return Dataset.from_list(self.records, features=FEATURES)


def _entries(path: Path) -> Iterator[tuple[int | str, Any]]:
    """(locator, entry): `#index` for a json list, the 1-based line for json lines (bad lines yield an error)."""
    text = read_text(path)  # UTF-8, a byte-order mark dropped; bad bytes named by file:line
    if path.suffix == ".jsonl":
        for number, line in enumerate(text_lines(text), start=1):
            if not line.strip():
                yield number, _EntryError("empty line")
                continue
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as error:
                yield number, _EntryError(f"unparseable: invalid JSON ({error.msg})")
        return
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON ({error}); expected a list of LLaVA-style entries.") from None
    if not isinstance(data, list):
        raise ValueError(f"{path} holds a {type(data).__name__}; expected a json list of LLaVA-style entries.")
    for index, entry in enumerate(data):
        yield f"#{index}", entry


def _video_of(entry: dict) -> str:
    video = entry.get("video")
    if isinstance(video, list) and len(video) == 1:
        video = video[0]
    if isinstance(video, list) and len(video) > 1:
        raise _EntryError(f"multiple videos: {len(video)} videos; one video per entry is supported")
    if not isinstance(video, str) or not video.strip():
        raise _EntryError("no video: the entry has no `video` path")
    return video.strip()


def conversation_messages(conversations: Any) -> list[dict[str, Any]]:
    """LLaVA `conversations` -> chat messages with structured content; raises `ValueError` with the reason."""
    try:
        return _messages(conversations)
    except _EntryError as error:
        raise ValueError(str(error)) from None


def _messages(conversations: Any) -> list[dict[str, Any]]:
    if not isinstance(conversations, list) or not conversations:
        raise _EntryError("no conversation: `conversations` is missing or empty")
    messages: list[dict[str, Any]] = []
    markers_seen = 0
    for turn_index, turn in enumerate(conversations):
        if not isinstance(turn, dict):
            raise _EntryError(f"unparseable: turn {turn_index} is not an object")
        role = ROLES.get(turn.get("from", turn.get("role")))
        if role is None:
            raise _EntryError(f"bad role: turn {turn_index} is from {turn.get('from', turn.get('role'))!r}")
        value = turn.get("value", turn.get("content"))
        if not isinstance(value, str):
            raise _EntryError(f"empty turn: turn {turn_index} has no text")
        markers = sum(value.count(marker) for marker in VIDEO_MARKERS)
        if markers and (role != "user" or any(m["role"] == "user" for m in messages)):
            raise _EntryError(f"video marker: turn {turn_index} has a video marker outside the first user turn")
        if markers > 1:
            raise _EntryError(f"video marker: {markers} video markers for one video")
        markers_seen += markers
        text = _MARKER.sub(" ", value).strip()
        if not text:
            raise _EntryError(f"empty turn: turn {turn_index} ({role}) is empty")
        if role == "system" and messages:
            raise _EntryError(f"bad role: system turn {turn_index} is not the first turn")
        messages.append({"role": role, "content": [{"type": "text", "text": text}]})
    turns = [m["role"] for m in messages if m["role"] != "system"]
    expected = ["user", "assistant"] * (len(turns) // 2)
    if turns != expected or not turns:
        raise _EntryError(f"bad turn order: {turns}; expected user/assistant pairs")
    first_user = next(m for m in messages if m["role"] == "user")
    first_user["content"].insert(0, {"type": "video"})
    return messages


def load_llava_video(
    annotation_file: str | Path, video_root: str | Path, *, check_videos: bool = False
) -> LoadedConversations:
    """Records (see the module docstring) and one `SkippedRow` per entry that could not be used."""
    path = Path(annotation_file)
    if not path.is_file():
        raise FileNotFoundError(f"LLaVA-Video annotation file {path} does not exist.")
    root = Path(video_root)
    if check_videos and not root.is_dir():
        raise FileNotFoundError(f"Video folder {root} does not exist; pass the folder the `video` paths start from.")
    records: list[dict[str, Any]] = []
    skipped: list[SkippedRow] = []
    for locator, entry in _entries(path):
        try:
            if isinstance(entry, _EntryError):
                raise entry
            if not isinstance(entry, dict):
                raise _EntryError(f"unparseable: entry is a {type(entry).__name__}, not an object")
            video = _video_of(entry)
            messages = _messages(entry.get("conversations"))
            if check_videos and not (root / video).is_file():
                raise _EntryError(f"missing video: {root / video} does not exist")
        except _EntryError as error:
            skipped.append(SkippedRow(str(path), locator, str(error)))
            continue
        records.append(
            {
                "messages": messages,
                "videos": [str(root / video)],
                "id": str(entry.get("id", "")),
                "data_source": str(entry.get("data_source", "")),
                "source": f"{path}:{locator}",
            }
        )
    return LoadedConversations(records, skipped)
