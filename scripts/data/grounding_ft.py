"""Build the Grounding-FT training set (stage 3) from benchmark annotation files.

Moment retrieval (MR): one sample per ground-truth window of Charades-STA, QVHighlights and ActivityNet Captions
train queries; highlight detection (HD): one sample per QVHighlights train query, from its relevant clips and
saliency scores. Each sample is `{"messages": [user, assistant], "videos": [path]}` with a paper template drawn
by a seeded `random.Random` (`--seed`, 42 by default), plus the source fields `benchmark`, `task` ("mr"/"hd"),
`qid`, `video_id`, `query`, `duration` and `source` (file:line). The result is a `datasets.Dataset` written with
`save_to_disk` (and, with `--jsonl`, as json lines).

Video paths are `<video folder>/<video_id><--video-ext>`; the files need not exist unless `--check-videos` is
given, which finds each file (any common extension, see `resolve_video`) and skips samples whose video is missing.
Every skipped row (bad annotation, missing video, ...) goes to a `skipped.jsonl` next to the output (or
`--skipped-file`) with its file, line and reason; the first ones are also printed on stderr.

    groundvts build-data --output data/grounding_ft \\
        --charades charades_sta_train.txt --charades-videos videos/charades \\
        --qvhighlights highlight_train_release.jsonl --qvhighlights-videos videos/qvhighlights \\
        --activitynet train.json --activitynet-videos videos/activitynet
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
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


def build_grounding_records(
    sources: Sequence[GroundingSource],
    *,
    seed: int = 42,
    tasks: Sequence[str] = TASKS,
    check_videos: bool = False,
    video_extension: str = ".mp4",
    decimals: int = 1,
) -> tuple[list[dict[str, Any]], list[SkippedRow]]:
    """Grounding-FT samples as plain dicts, and every skipped row (annotation and build problems).

    Sources are read in the given order; templates come from one `random.Random(seed)` drawn once per sample in
    that order, so the same inputs give the same dataset.
    """
    unknown = [task for task in tasks if task not in TASKS]
    if unknown or not tasks:
        raise ValueError(f"`tasks` must be a non-empty subset of {TASKS}, got {list(tasks)}.")
    for source in sources:
        if source.benchmark not in TRAIN_BENCHMARKS:
            raise ValueError(
                f"Grounding-FT is built from {', '.join(TRAIN_BENCHMARKS)}; got {source.benchmark!r}"
                " (NExT-GQA has no training split with spans)."
            )
    rng = random.Random(seed)
    records: list[dict[str, Any]] = []
    skipped: list[SkippedRow] = []
    for source in sources:
        loaded = load_annotations(source.benchmark, source.annotation_file, duration_file=source.duration_file)
        skipped += loaded.skipped
        video_path = _VideoPaths(source.video_root, video_extension, check_videos)
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
                        record = build_mr_conversation(annotation.query, start, end, video, rng=rng, decimals=decimals)
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
    sources: Sequence[GroundingSource],
    *,
    seed: int = 42,
    tasks: Sequence[str] = TASKS,
    check_videos: bool = False,
    video_extension: str = ".mp4",
    decimals: int = 1,
) -> tuple[Dataset, list[SkippedRow]]:
    """The Grounding-FT `datasets.Dataset` (columns of `FEATURES`) and every skipped row.

    Arrow stores the `{"type": "video"}` block as `{"type": "video", "text": None}`; the chat templates render
    it the same, and the trainer collator drops the None before templating.
    """
    records, skipped = build_grounding_records(
        sources, seed=seed, tasks=tasks, check_videos=check_videos, video_extension=video_extension,
        decimals=decimals,
    )
    return Dataset.from_list(records, features=FEATURES), skipped


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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="groundvts build-data", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--output", required=True, help="folder for Dataset.save_to_disk")
    parser.add_argument("--charades", help="Charades-STA train txt (or lighthouse jsonl)")
    parser.add_argument("--charades-durations", help="Charades_v1_train.csv (default: next to the txt)")
    parser.add_argument("--qvhighlights", help="QVHighlights train jsonl")
    parser.add_argument("--activitynet", help="ActivityNet Captions train json")
    parser.add_argument("--video-root", help="video folder for every source without its own --*-videos")
    for name in ("charades", "qvhighlights", "activitynet"):
        parser.add_argument(f"--{name}-videos", help=f"folder of the {name} videos")
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS, help="mr and/or hd (default both)")
    parser.add_argument("--seed", type=int, default=42, help="template sampling seed (default 42)")
    parser.add_argument("--check-videos", action="store_true", help="skip samples whose video file is missing")
    parser.add_argument("--video-ext", default=".mp4", help="extension of the video paths written (default .mp4)")
    parser.add_argument("--decimals", type=int, default=1, help="decimals of the MR answer seconds (default 1)")
    parser.add_argument("--jsonl", help="also write the samples as json lines here")
    parser.add_argument("--skipped-file", help="where to list skipped rows (default: skipped.jsonl next to --output)")
    parser.add_argument("--show-skipped", type=int, default=20, help="skipped rows printed on stderr (default 20)")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty --output folder")
    return parser


def _sources(args: argparse.Namespace) -> list[GroundingSource]:
    given = [
        ("charades_sta", args.charades, args.charades_videos, "--charades"),
        ("qvhighlights", args.qvhighlights, args.qvhighlights_videos, "--qvhighlights"),
        ("activitynet_captions", args.activitynet, args.activitynet_videos, "--activitynet"),
    ]
    sources = []
    for benchmark, file, videos, flag in given:
        if file is None:
            continue
        root = videos or args.video_root
        if root is None:
            raise ValueError(f"{flag} needs a video folder: pass {flag}-videos DIR or --video-root DIR.")
        duration = args.charades_durations if benchmark == "charades_sta" else None
        sources.append(GroundingSource(benchmark, file, root, duration))
    if not sources:
        raise ValueError("Give at least one annotation file: --charades, --qvhighlights or --activitynet.")
    return sources


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    output = Path(args.output)
    try:
        sources = _sources(args)
        if output.exists() and (not output.is_dir() or any(output.iterdir())) and not args.overwrite:
            raise ValueError(f"--output {output} exists and is not empty; pass --overwrite or another folder.")
        records, skipped = build_grounding_records(
            sources, seed=args.seed, tasks=args.tasks, check_videos=args.check_videos,
            video_extension=args.video_ext, decimals=args.decimals,
        )
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    dataset = Dataset.from_list(records, features=FEATURES)
    dataset.save_to_disk(str(output))
    skipped_file = Path(args.skipped_file) if args.skipped_file else output.parent / "skipped.jsonl"
    write_skipped(skipped, skipped_file)
    if args.jsonl:
        with open(args.jsonl, "w", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    print(summarize(dataset, skipped))
    exported = f"; json lines in {args.jsonl}" if args.jsonl else ""
    print(f"Saved to {output}; skipped rows listed in {skipped_file}{exported}")
    if skipped:
        shown = skipped[: max(args.show_skipped, 0)]
        for row in shown:
            print(f"skipped {row.file}:{row.line}: {row.reason}", file=sys.stderr)
        if len(skipped) > len(shown):
            print(f"... and {len(skipped) - len(shown):,} more skipped rows (see {skipped_file})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
