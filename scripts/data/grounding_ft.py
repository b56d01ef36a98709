"""The Grounding-FT training set (stage 3) from benchmark annotation files.

Moment retrieval (MR): one sample per ground-truth window of Charades-STA, QVHighlights and ActivityNet Captions
train queries; highlight detection (HD): one sample per QVHighlights train query, from its relevant clips and
saliency scores. Each sample is `{"messages": [user, assistant], "videos": [path]}` with a paper template drawn by a
seeded `random.Random`, plus its source fields (`FEATURES`). `build_grounding_ft` returns a `datasets.Dataset`;
`write_grounding_ft` builds and saves one folder (the `groundvts build-data` command, whose help tells the rest).
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from datasets import Dataset, Features, List, Value

from groundvts.processing.annotations import (
    VIDEO_EXTENSIONS,
    GroundingAnnotation,
    SkippedRow,
    load_annotations,
    reason_category,
    resolve_video,
)
from groundvts.processing.prompts import build_hd_conversation, build_mr_conversation
from groundvts.scripts.output_paths import check_new_folder, check_writable_file


TRAIN_BENCHMARKS = ("charades_sta", "qvhighlights", "activitynet_captions")
TASKS = ("mr", "hd")

# Structured chat content as Arrow stores it: every block has `type` and `text` (None on the video block).
MESSAGES_FEATURE = List({"role": Value("string"), "content": List({"type": Value("string"), "text": Value("string")})})
FEATURES = Features(
    {
        "messages": MESSAGES_FEATURE,
        "videos": List(Value("string")),
        "benchmark": Value("string"),
        "task": Value("string"),
        "qid": Value("string"),
        "video_id": Value("string"),
        "query": Value("string"),
        "duration": Value("float64"),
        "source": Value("string"),
    }
)


@dataclass(frozen=True)
class GroundingSource:
    """One annotation file and the folder of its videos."""

    benchmark: str  # "charades_sta" | "qvhighlights" | "activitynet_captions"
    annotation_file: str | Path
    video_root: str | Path
    duration_file: str | Path | None = None  # Charades csv (default: the sibling Charades_v1_*.csv)


@dataclass
class GroundingFTSettings:
    """How samples are built, the same for every source; each field is a `groundvts build-data` flag."""

    tasks: list[str] = field(
        default_factory=lambda: list(TASKS), metadata={"choices": TASKS, "help": "mr and/or hd (default both)"}
    )
    seed: int = field(default=42, metadata={"help": "template sampling seed (default 42)"})
    check_videos: bool = field(default=False, metadata={"help": "skip samples whose video file is missing"})
    video_extension: str = field(
        default=".mp4",
        metadata={"flag": "--video-ext", "metavar": "VIDEO_EXT",
                  "help": "extension of the video paths written (default .mp4)"},
    )
    decimals: int = field(default=1, metadata={"help": "decimals of the MR answer seconds (default 1)"})

    def __post_init__(self) -> None:
        self.tasks = list(self.tasks)
        unknown = [task for task in self.tasks if task not in TASKS]
        if unknown or not self.tasks:
            raise ValueError(f"`tasks` must be a non-empty subset of {TASKS}, got {self.tasks}.")


# Annotation paths stay strings: records and skipped rows quote them as given (`source` is "file:line").
@dataclass
class GroundingFTInputs:
    """The annotation files to read and where their videos are; `sources()` pairs them up."""

    charades: str | None = field(default=None, metadata={"help": "Charades-STA train txt (or lighthouse jsonl)"})
    charades_durations: str | None = field(
        default=None, metadata={"help": "Charades_v1_train.csv (default: next to the txt)"}
    )
    qvhighlights: str | None = field(default=None, metadata={"help": "QVHighlights train jsonl"})
    activitynet: str | None = field(default=None, metadata={"help": "ActivityNet Captions train json"})
    video_root: str | None = field(
        default=None, metadata={"help": "video folder for every source without its own --*-videos"}
    )
    charades_videos: str | None = field(default=None, metadata={"help": "folder of the charades videos"})
    qvhighlights_videos: str | None = field(default=None, metadata={"help": "folder of the qvhighlights videos"})
    activitynet_videos: str | None = field(default=None, metadata={"help": "folder of the activitynet videos"})

    def sources(self) -> list[GroundingSource]:
        """One source per given annotation file, in the order Charades-STA, QVHighlights, ActivityNet Captions.

        Raises ValueError when no file is given or a file has no video folder.
        """
        given = [
            ("charades_sta", self.charades, self.charades_videos, "--charades"),
            ("qvhighlights", self.qvhighlights, self.qvhighlights_videos, "--qvhighlights"),
            ("activitynet_captions", self.activitynet, self.activitynet_videos, "--activitynet"),
        ]
        sources = []
        for benchmark, file, videos, flag in given:
            if file is None:
                continue
            root = videos or self.video_root
            if root is None:
                raise ValueError(f"{flag} needs a video folder: pass {flag}-videos DIR or --video-root DIR.")
            duration = self.charades_durations if benchmark == "charades_sta" else None
            sources.append(GroundingSource(benchmark, file, root, duration))
        if not sources:
            raise ValueError("Give at least one annotation file: --charades, --qvhighlights or --activitynet.")
        return sources


@dataclass
class GroundingFTOutput:
    """Where `write_grounding_ft` saves the dataset, the skipped rows and (optionally) json lines."""

    output: Path = field(metadata={"help": "folder for Dataset.save_to_disk"})
    jsonl: str | None = field(default=None, metadata={"help": "also write the samples as json lines here"})
    skipped_file: Path | None = field(
        default=None, metadata={"help": "where to list skipped rows (default: skipped.jsonl next to --output)"}
    )
    overwrite: bool = field(default=False, metadata={"help": "replace a non-empty --output folder"})

    def __post_init__(self) -> None:
        self.output = Path(self.output)
        self.skipped_file = Path(self.skipped_file) if self.skipped_file else self.output.parent / "skipped.jsonl"

    def check(self) -> None:
        """Raises FileExistsError for a non-empty output folder (or a file) without `overwrite`, PermissionError for
        a location that cannot be written."""
        check_new_folder(self.output, "--output", overwrite=self.overwrite)
        for flag, path in (("--jsonl", self.jsonl), ("--skipped-file", self.skipped_file)):
            if path is not None:
                check_writable_file(path, flag)


@dataclass
class GroundingFTReport:
    """What `write_grounding_ft` built and where it went."""

    dataset: Dataset
    skipped: list[SkippedRow]
    output: GroundingFTOutput


class _VideoPaths:
    """Video path of each video id: `root/<id><ext>`, or the found file with `check` (missing -> None)."""

    def __init__(self, root: str | Path, extension: str, check: bool) -> None:
        self.root, self.extension, self.check = Path(root), extension, check
        self.cache: dict[str, str | None] = {}

    def __call__(self, video_id: str) -> str | None:
        if video_id not in self.cache:
            if not self.check:
                self.cache[video_id] = str(self.root / f"{video_id}{self.extension}")
            else:
                extensions = (self.extension, *(e for e in VIDEO_EXTENSIONS if e != self.extension))
                try:
                    self.cache[video_id] = str(resolve_video(self.root, video_id, extensions))
                except (FileNotFoundError, ValueError):
                    self.cache[video_id] = None
        return self.cache[video_id]


def _sample(record: dict[str, Any], annotation: GroundingAnnotation, task: str) -> dict[str, Any]:
    return {
        **record,
        "benchmark": annotation.benchmark,
        "task": task,
        "qid": annotation.qid,
        "video_id": annotation.video_id,
        "query": annotation.query,
        "duration": annotation.duration,
        "source": annotation.source,
    }


def _source_location(annotation: GroundingAnnotation) -> tuple[str, int | str]:
    """(file, line) back from a record's `path:line` source."""
    file, _, line = annotation.source.rpartition(":")
    return file, int(line) if line.isdigit() else line


def _settings(settings: GroundingFTSettings | None, options: dict[str, Any]) -> GroundingFTSettings:
    if settings is not None and options:
        raise TypeError("Pass either `settings` or its fields as keyword arguments, not both.")
    return settings if settings is not None else GroundingFTSettings(**options)


def build_grounding_records(
    sources: Sequence[GroundingSource], settings: GroundingFTSettings | None = None, **options: Any
) -> tuple[list[dict[str, Any]], list[SkippedRow]]:
    """Grounding-FT samples as plain dicts, and every skipped row (annotation and build problems).

    `options` are `GroundingFTSettings` fields (`seed=7, tasks=["mr"]`), for callers without a settings object.
    Sources are read in the given order; templates come from one `random.Random(seed)` drawn once per sample in
    that order, so the same inputs give the same dataset.
    """
    settings = _settings(settings, options)
    tasks = settings.tasks
    for source in sources:
        if source.benchmark not in TRAIN_BENCHMARKS:
            raise ValueError(
                f"Grounding-FT is built from {', '.join(TRAIN_BENCHMARKS)}; got {source.benchmark!r}"
                " (NExT-GQA has no training split with spans)."
            )
    rng = random.Random(settings.seed)
    records: list[dict[str, Any]] = []
    skipped: list[SkippedRow] = []
    for source in sources:
        loaded = load_annotations(source.benchmark, source.annotation_file, duration_file=source.duration_file)
        skipped += loaded.skipped
        video_path = _VideoPaths(source.video_root, settings.video_extension, settings.check_videos)
        for annotation in loaded.records:
            file, line = _source_location(annotation)
            video = video_path(annotation.video_id)
            if video is None:
                reason = f"missing video: {annotation.video_id} not under {source.video_root}"
                skipped.append(SkippedRow(file, line, reason))
                continue
            if not annotation.windows:
                skipped.append(SkippedRow(file, line, "no ground truth: the row has no windows"))
                continue
            try:
                if "mr" in tasks:
                    for start, end in annotation.windows:
                        record = build_mr_conversation(
                            annotation.query, start, end, video, rng=rng, decimals=settings.decimals
                        )
                        records.append(_sample(record, annotation, "mr"))
                if "hd" in tasks and annotation.benchmark == "qvhighlights":
                    if not annotation.relevant_clip_ids:
                        skipped.append(SkippedRow(file, line, "no saliency: no relevant_clip_ids for highlights"))
                        continue
                    record = build_hd_conversation(
                        annotation.query, annotation.relevant_clip_ids, annotation.saliency_scores, video, rng=rng
                    )
                    records.append(_sample(record, annotation, "hd"))
            except ValueError as error:  # e.g. a query that is only punctuation
                skipped.append(SkippedRow(file, line, f"bad sample: {error}"))
    return records, skipped


def build_grounding_ft(
    sources: Sequence[GroundingSource], settings: GroundingFTSettings | None = None, **options: Any
) -> tuple[Dataset, list[SkippedRow]]:
    """The Grounding-FT `datasets.Dataset` (columns of `FEATURES`) and every skipped row.

    `settings`/`options` as in `build_grounding_records`. Arrow stores the `{"type": "video"}` block as
    `{"type": "video", "text": None}`; the chat templates render it the same, and the trainer collator drops the
    None before templating.
    """
    records, skipped = build_grounding_records(sources, _settings(settings, options))
    return Dataset.from_list(records, features=FEATURES), skipped


def write_grounding_ft(
    inputs: GroundingFTInputs, output: GroundingFTOutput, settings: GroundingFTSettings | None = None
) -> GroundingFTReport:
    """Build the dataset from `inputs` and save it: `save_to_disk` in `output.output`, the skipped rows in
    `output.skipped_file` and, with `output.jsonl`, the samples as json lines.

    Raises ValueError (bad inputs, or no sample at all: only the
    skipped rows are written then) or FileNotFoundError (a missing annotation file) before writing the dataset.
    """
    sources = inputs.sources()
    output.check()
    records, skipped = build_grounding_records(sources, settings or GroundingFTSettings())
    if not records:
        write_skipped(skipped, output.skipped_file)
        first = f" (e.g. {skipped[0].file}:{skipped[0].line}: {skipped[0].reason})" if skipped else ""
        raise ValueError(
            f"No training sample was built: {len(skipped)} annotation rows skipped{first}; every skipped row is in "
            f"{output.skipped_file}. Check the files, --tasks (hd needs QVHighlights) and the video folders."
        )
    dataset = Dataset.from_list(records, features=FEATURES)
    dataset.save_to_disk(str(output.output))
    write_skipped(skipped, output.skipped_file)
    if output.jsonl:
        with open(output.jsonl, "w", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return GroundingFTReport(dataset, skipped, output)


def summarize(dataset: Dataset, skipped: Sequence[SkippedRow]) -> str:
    """Rows per (benchmark, task) and skipped rows per reason, as a small table."""
    counts = Counter(zip(dataset["benchmark"], dataset["task"]))
    lines = [f"Grounding-FT: {len(dataset):,} rows"]
    lines += [f"  {benchmark:<22} {task:<3} {count:>8,}" for (benchmark, task), count in sorted(counts.items())]
    reasons = Counter(reason_category(row.reason) for row in skipped)
    lines.append(f"Skipped rows: {len(skipped):,}")
    lines += [f"  {reason:<26} {count:>8,}" for reason, count in reasons.most_common()]
    return "\n".join(lines)


def write_skipped(skipped: Sequence[SkippedRow], path: Path) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for row in skipped:
            handle.write(json.dumps(asdict(row), ensure_ascii=False) + "\n")
