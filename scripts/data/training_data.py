"""Training data for a recipe's `data` section: a Grounding-FT folder or json(l), or LLaVA-Video-178K-style json.

`load_training_dataset(data)` returns the `datasets.Dataset` a `GroundVTSTrainer` trains on. The formats:
`grounding_ft` (a `groundvts build-data` output folder, or a .json/.jsonl of records with `messages` and `videos`)
and `llava_video` (LLaVA-Video-178K-style json plus `video_root`, read by `trainers.llava_video`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

DATA_FORMATS = ("grounding_ft", "llava_video")

logger = logging.getLogger(__name__)


class TrainingDataError(ValueError):
    """A `data` section that names no usable dataset; the message says which key and what to do."""


def load_training_dataset(data: Mapping[str, Any], log: Callable[[str], None] | None = None) -> Any:
    """The dataset of a recipe's `data` section (`format`, `path`, and `video_root` for llava_video).

    LLaVA-Video rows that cannot be used are never dropped silently: each one, then a count, goes to `log`
    (default: this module's logger, at warning level).
    """
    import datasets

    log = log or logger.warning
    fmt, path = data.get("format", "grounding_ft"), data.get("path")
    if fmt not in DATA_FORMATS:
        raise TrainingDataError(f"data.format must be one of {DATA_FORMATS}, got {fmt!r}.")
    if not path or not Path(path).exists():
        raise TrainingDataError(
            f"data.path {path!r} does not exist; build it with `groundvts build-data` or fix the path."
        )
    if fmt == "llava_video":
        from groundvts.trainers.llava_video import load_llava_video

        if not data.get("video_root"):
            raise TrainingDataError("data.video_root is required for the llava_video format.")
        loaded = load_llava_video(path, data["video_root"])
        for row in loaded.skipped:
            log(f"skipped {row.file}:{row.line}: {row.reason}")
        log(f"LLaVA-Video data: {len(loaded.records)} conversations, {len(loaded.skipped)} skipped")
        return loaded.dataset
    if Path(path).is_dir():
        return datasets.load_from_disk(path)
    return datasets.load_dataset("json", data_files=str(path), split="train")
