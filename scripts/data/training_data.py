"""Training data for a recipe's `data` section: a Grounding-FT folder or json(l), or LLaVA-Video-178K-style json.

`load_training_dataset(data)` returns the `datasets.Dataset` a `GroundVTSTrainer` trains on, after checking every
record (`record_checks`): a record without an answer turn or a video block, or whose video is missing or does not
decode, is reported with its file:line before step 1. Keys of `data`:

- `path`: the data file or folder.
- `format`: `auto` (default: a folder or records with `messages` -> `grounding_ft`; records with `conversations` ->
  `llava_video`), `grounding_ft` (a `groundvts build-data` output folder, or a .json/.jsonl of records with
  `messages` and `videos` - your own data in transformers' chat format) or `llava_video` (LLaVA-Video-178K-style
  json plus `video_root`, read by `trainers.llava_video`).
- `bad_records`: `error` (default: stop and list them) or `skip` (train without them; each one and a count logged).
- `check_videos`: `decode` (default: open each video and decode a frame), `exists` or `none`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from groundvts.scripts.data.record_checks import VIDEO_CHECKS, BadRecord, check_records, read_records, summarize

DATA_FORMATS = ("auto", "grounding_ft", "llava_video")
BAD_RECORD_POLICIES = ("error", "skip")

logger = logging.getLogger(__name__)


class TrainingDataError(ValueError):
    """A `data` section that names no usable dataset; the message says which key and what to do."""


def detect_format(path: Path, items: list[tuple[str, Any]]) -> str:
    """`grounding_ft` or `llava_video`, from the keys of the first record; raises with the fix when unclear."""
    first = next((record for _, record in items if isinstance(record, Mapping)), None)
    if first is not None and "messages" in first:
        return "grounding_ft"
    if first is not None and "conversations" in first:
        return "llava_video"
    keys = sorted(first) if first is not None else []
    raise TrainingDataError(
        f"Cannot tell the format of {path}: its first record has keys {keys}. Records need `messages` + `videos` "
        "(transformers' chat format: set data.format=grounding_ft) or LLaVA-style `conversations` + `video` "
        "(data.format=llava_video with data.video_root)."
    )


def load_training_dataset(data: Mapping[str, Any], log: Callable[[str], None] | None = None) -> Any:
    """The checked dataset of a recipe's `data` section (see the module docstring).

    Raises `TrainingDataError` for a missing or empty file, an unknown format, or bad records under
    `bad_records: error` (the message lists them by file:line). Under `skip`, each bad record and then their count
    go to `log` (default: this module's logger, at warning level).
    """
    import datasets

    log = log or logger.warning
    fmt, path = data.get("format", "auto"), data.get("path")
    policy, videos = data.get("bad_records", "error"), data.get("check_videos", "decode")
    if fmt not in DATA_FORMATS:
        raise TrainingDataError(f"data.format must be one of {DATA_FORMATS}, got {fmt!r}.")
    if policy not in BAD_RECORD_POLICIES:
        raise TrainingDataError(f"data.bad_records must be one of {BAD_RECORD_POLICIES}, got {policy!r}.")
    if videos not in VIDEO_CHECKS:
        raise TrainingDataError(f"data.check_videos must be one of {VIDEO_CHECKS}, got {videos!r}.")
    if not path or not Path(path).exists():
        raise TrainingDataError(
            f"data.path {path!r} does not exist; build it with `groundvts build-data` or fix the path."
        )
    path = Path(path)
    items = [] if fmt == "llava_video" else read_records(path)
    if fmt == "auto":
        if not items:
            raise TrainingDataError(f"data.path {path} holds no records.")
        fmt = "grounding_ft" if path.is_dir() else detect_format(path, items)
    skipped: list[BadRecord] = []
    features = None
    if fmt == "llava_video":
        from groundvts.trainers.llava_video import FEATURES, load_llava_video

        if not data.get("video_root"):
            raise TrainingDataError("data.video_root is required for the llava_video format.")
        loaded = load_llava_video(path, data["video_root"])
        skipped = [BadRecord(f"{row.file}:{row.line}", row.reason) for row in loaded.skipped]
        items, features = [(record["source"], record) for record in loaded.records], FEATURES
    if not items and not skipped:
        raise TrainingDataError(f"data.path {path} holds no records.")
    good, bad = check_records(items, videos=videos)
    bad = skipped + bad
    if bad and (policy == "error" or not good):
        raise TrainingDataError(
            f"{len(bad)} of {len(bad) + len(good)} training records in {path} cannot be used:\n{summarize(bad)}\n"
            + ("Fix them, or set data.bad_records=skip to train without them." if good else "No record is usable.")
        )
    for row in bad:
        log(f"skipped {row}")
    if bad:
        log(f"{len(bad)} of {len(bad) + len(good)} records skipped (data.bad_records=skip); training on {len(good)}")
    if path.is_dir() and fmt == "grounding_ft":
        dataset = datasets.load_from_disk(str(path))
        kept = {locator for locator, _ in good}
        return dataset.select([i for i in range(len(dataset)) if f"{path}#{i}" in kept])
    # Each row keeps where it came from (file:line), so later checks (stage-4 prompts) can name it.
    rows = [record if record.get("source") else {**record, "source": locator} for locator, record in good]
    return datasets.Dataset.from_list(rows, features=features)
