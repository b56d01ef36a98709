"""Benchmark inference: run a GroundVTS model over a benchmark's annotations, writing resumable predictions.

`run_benchmark(data, run, sampling, model_settings)` is what `groundvts infer` does: it loads the annotations and
the model, skips the queries already in the output (refusing to mix rows made with other run settings), predicts
this process's share of the rest (one shard per process under `accelerate launch` / torchrun), merges the shards
in annotation order and writes the errors file (`<output stem>.errors.jsonl`: missing or unreadable videos, skipped
annotation rows). It raises on bad input instead of returning an exit code, and reports counts in a
`BenchmarkReport`. `run_shard` is the per-process loop, usable on its own with an already loaded model.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from groundvts.processing.annotations import reason_category, resolve_video

from groundvts.scripts.inference.benchmark_tasks import TASK_CHOICES, BenchmarkData, merge_row, pass_prompt, passes_for
from groundvts.scripts.inference.generation import SamplingSettings, VideoReadError, generate_answers
from groundvts.scripts.inference.loading import Loader, ModelSettings, load_groundvts, model_fingerprint
from groundvts.scripts.inference.prediction_store import (
    RowWriter,
    concat_files,
    existing_rows,
    merge_files,
    part_path,
    part_paths,
    read_rows,
    repair,
)
from groundvts.scripts.inference.video_cache import DecodedVideoCache
from groundvts.scripts.output_paths import check_writable_file, disk_full_error

__all__ = [
    "INFER_MAX_NEW_TOKENS", "BenchmarkRunSettings", "BenchmarkReport", "InferenceSettings", "ShardReport",
    "SettingsMismatchError", "run_provenance", "load_benchmark_records", "pending_records", "run_shard", "run_benchmark",
]

# Settings that must agree between a run and the rows it resumes (mixing them would corrupt the results): the
# benchmark, the model (its path and weights), VTS and the sampling. Rows written before a key existed lack it and
# are not checked on it.
RUN_SETTINGS = (
    "benchmark", "passes", "model", "model_fingerprint", "keep_ratio", "strategy", "sampling",
)
# A video decoding to less than this share of its annotated duration gets a warning (truncated or wrong file).
SHORT_VIDEO_RATIO = 0.9
# `groundvts infer`'s default --max-new-tokens (`groundvts ground` keeps SamplingSettings' 64).
INFER_MAX_NEW_TOKENS = 256
# Decoded frames kept for the next question about a video (128 frames of 720p take 354 MB).
DEFAULT_VIDEO_CACHE_MB = 2048


@dataclass
class InferenceSettings:
    """What `run_shard` needs per batch: the benchmark, its passes, the batch size and the sampling."""

    benchmark: str
    passes: tuple[str, ...]
    batch_size: int = 1
    max_new_tokens: int = INFER_MAX_NEW_TOKENS
    fps: float | None = None
    num_frames: int | None = None
    max_pixels: int | None = None
    video_cache_mb: int = DEFAULT_VIDEO_CACHE_MB
    provenance: dict[str, Any] = field(default_factory=dict)  # written into every row (model, sampling)


@dataclass
class ShardReport:
    written: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    video_decodes: int | None = None  # files decoded, with the decoded-video cache on
    video_cache_hits: int | None = None


class SettingsMismatchError(ValueError):
    """The output already holds rows made with other settings."""


def errors_path(output: Path) -> Path:
    return output.with_name(f"{output.stem}.errors.jsonl")


def check_resumable(rows: list[dict[str, Any]], settings: dict[str, Any], output: Path) -> None:
    """Refuse to mix runs: every existing row must carry the same run settings."""
    for row in rows:
        for key in RUN_SETTINGS:
            if key in row and key in settings and row[key] != settings[key]:
                raise SettingsMismatchError(
                    f"{output} already holds predictions made with {key}={row[key]!r}, but this run uses "
                    f"{settings[key]!r}; resuming would mix two runs in one file. Rerun with the same --model and "
                    "settings, use another --output, or delete the file to start over."
                )


def pending_records(records: list[Any], output: Path, settings: dict[str, Any]) -> list[Any]:
    """Records without a row in the output or its part files, in annotation order."""
    rows = existing_rows(output)
    check_resumable(rows, settings, output)
    done = {str(row["qid"]) for row in rows}
    return [record for record in records if record.qid not in done]


def _error_row(record: Any, file: str, stage: str, reason: str) -> dict[str, Any]:
    return {"qid": record.qid, "video_id": record.video_id, "file": file, "stage": stage, "reason": reason}


def _answer_batch(
    model: Any,
    processor: Any,
    items: list[tuple[Any, str]],
    settings: InferenceSettings,
    video_cache: DecodedVideoCache | None = None,
) -> tuple[list[tuple[Any, dict[str, Any]]], list[dict[str, Any]]]:
    """Run every pass over a batch of (record, video path): (record, row) pairs and error rows.

    A batch whose videos cannot be read is retried one by one, so one bad file fails only its own query.
    """
    try:
        answers: dict[str, list[Any]] = {}
        for name in settings.passes:
            answers[name] = generate_answers(
                model, processor, [video for _, video in items], [pass_prompt(record, name) for record, _ in items],
                fps=settings.fps, num_frames=settings.num_frames, max_pixels=settings.max_pixels,
                max_new_tokens=settings.max_new_tokens, video_cache=video_cache,
            )
    except VideoReadError as error:
        if len(items) == 1:
            record, video = items[0]
            return [], [_error_row(record, video, "video", str(error))]
        done, errors = [], []
        for item in items:
            one_done, one_errors = _answer_batch(model, processor, [item], settings, video_cache)
            done += one_done
            errors += one_errors
        return done, errors
    rows = []
    for index, (record, _) in enumerate(items):
        texts = {name: answers[name][index].text for name in settings.passes}
        row = merge_row(settings.benchmark, record, texts)
        first = answers[settings.passes[0]][index]
        row.update(keep_ratio=first.keep_ratio, strategy=first.strategy, num_video_tokens=int(first.keep.numel()),
                   num_kept_tokens=int(first.keep.sum()), video_duration=round(first.duration, 6),
                   num_frames=len(first.frame_times), frames_capped=first.frames_capped)
        row.update(settings.provenance)
        rows.append((record, row))
    return rows, []


def short_video_warning(video: str, decoded: float, annotated: float | None) -> str | None:
    """A warning when `video` decodes much shorter than its annotation says (a truncated file or the wrong video):
    the model never sees the end, and spans past it are clamped."""
    if not annotated or decoded >= SHORT_VIDEO_RATIO * annotated:
        return None
    return (
        f"warning: {video} decodes to {decoded:.2f}s but its annotation says {annotated:.2f}s "
        f"({decoded / annotated:.0%}); spans after {decoded:.2f}s cannot be seen and are clamped. Check the file."
    )


def run_shard(
    model: Any,
    processor: Any,
    records: Sequence[Any],
    video_root: Path,
    target: Path,
    settings: InferenceSettings,
    *,
    progress: bool = True,
    on_error: Callable[[dict[str, Any]], None] | None = None,
) -> ShardReport:
    """Predict `records` (this process's share of the pending ones), appending each row to `target`.

    Raises `DiskFullError` (an OSError) when the disk fills: the rows written so far stay, and rerunning resumes."""
    report = ShardReport()

    def fail(row: dict[str, Any]) -> None:
        report.errors.append(row)
        if on_error:
            on_error(row)

    ready: list[tuple[Any, str]] = []
    for record in records:
        try:
            ready.append((record, str(resolve_video(video_root, record.video_id))))
        except (FileNotFoundError, ValueError) as error:
            fail(_error_row(record, str(Path(video_root) / record.video_id), "video", str(error)))
    repair(target)
    try:
        _predict(model, processor, ready, target, settings, report, fail, progress)
    except OSError as error:
        full = disk_full_error(
            error, target, f"the {report.written} rows written in this run and every earlier row are kept",
            "Free some space and rerun the same command: it resumes after the last complete row",
        )
        if full is error:
            raise
        raise full from error
    return report


def _predict(
    model: Any, processor: Any, ready: list[tuple[Any, str]], target: Path, settings: InferenceSettings,
    report: ShardReport, fail: Callable[[dict[str, Any]], None], progress: bool,
) -> None:
    from tqdm.auto import tqdm

    bar = tqdm(total=len(ready), desc=f"{settings.benchmark} ({'+'.join(settings.passes)})", disable=not progress)
    warned: set[str] = set()
    # A video's frames are decoded once for all its questions and passes (while they fit the cache).
    cache = DecodedVideoCache(settings.video_cache_mb * 2**20) if settings.video_cache_mb > 0 else None
    with RowWriter(target) as writer:
        for start in range(0, len(ready), settings.batch_size):
            batch = ready[start : start + settings.batch_size]
            rows, errors = _answer_batch(model, processor, batch, settings, cache)
            videos = {record.qid: video for record, video in batch}
            for record, row in rows:
                video = videos[record.qid]
                message = short_video_warning(video, row["video_duration"], record.duration)
                if message and video not in warned:  # once per file: a video may carry many queries
                    warned.add(video)
                    report.warnings.append(message)
                    tqdm.write(message, file=sys.stderr)
                writer.write(row)
                report.written += 1
            for error in errors:
                fail(error)
            bar.update(len(batch))
    bar.close()
    if cache is not None:
        report.video_decodes, report.video_cache_hits = cache.decodes, cache.hits


@dataclass
class BenchmarkRunSettings:
    """Where the videos are, where predictions and errors go, which passes run and how many queries at once."""

    video_root: Path = field(metadata={"help": "folder with the benchmark's videos"})
    output: Path = field(metadata={"help": "predictions .jsonl (appended; resumable)"})
    errors: Path | None = field(
        default=None, metadata={"help": "error report (default <output stem>.errors.jsonl)"}
    )
    task: str = field(default="all", metadata={"choices": TASK_CHOICES, "help": "run one pass only (default: all)"})
    batch_size: int = 1
    limit: int | None = field(default=None, metadata={"help": "only the first N queries of the file"})
    video_cache_mb: int = field(default=DEFAULT_VIDEO_CACHE_MB, metadata={
        "help": "memory (MB) for decoded videos reused by the other questions about them (0: decode every time)"})
    progress: bool = field(default=True, metadata={"flag": "--no-progress", "help": "no progress bar"})

    def __post_init__(self) -> None:
        self.video_root, self.output = Path(self.video_root), Path(self.output)
        self.errors = Path(self.errors) if self.errors is not None else None
        if self.task not in TASK_CHOICES:
            raise ValueError(f"--task must be one of {', '.join(TASK_CHOICES)}, got {self.task!r}.")
        for name in ("batch_size", "limit"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {value}.")
        if self.video_cache_mb < 0:
            raise ValueError(f"--video-cache-mb must be >= 0, got {self.video_cache_mb}.")
        if self.output.suffix != ".jsonl":
            raise ValueError(f"--output must end in .jsonl, got {self.output}.")

    @property
    def errors_file(self) -> Path:
        return self.errors or errors_path(self.output)


@dataclass
class BenchmarkReport:
    """What `run_benchmark` did. Counts over the whole output (`predicted`) are known on the main process only."""

    output: Path
    errors_file: Path
    queries: int  # annotation queries in this run (after --limit)
    resumed: int  # of them, already in the output when the run started
    skipped: int  # annotation rows that gave no query
    shard: ShardReport  # this process's share
    main_process: bool = True
    predicted: int | None = None  # queries with a row in the merged output (main process only)

    @property
    def missing(self) -> int | None:
        return None if self.predicted is None else self.queries - self.predicted

    def summary(self) -> str:
        """The line `groundvts infer` ends with, e.g. `5 of 5 predictions in preds.jsonl`."""
        if self.predicted is None:
            return f"{self.shard.written} predictions written by this process"
        return (
            f"{self.predicted} of {self.queries} predictions in {self.output}"
            + (f"; {self.missing} missing, see {self.errors_file}" if self.missing else "")
            + (f"; {self.skipped} annotation rows skipped" if self.skipped else "")
        )


def run_provenance(model_path_or_id: str, model: Any, sampling: SamplingSettings) -> dict[str, Any]:
    """What every row records of how it was made besides VTS: the model (path and weights) and the sampling."""
    return {
        "model": str(model_path_or_id), "model_fingerprint": model_fingerprint(model_path_or_id, model),
        "sampling": {name: getattr(sampling, name) for name in ("fps", "num_frames", "max_pixels", "max_new_tokens")},
    }


def load_benchmark_records(data: BenchmarkData, limit: int | None = None) -> tuple[list[Any], list[dict[str, Any]]]:
    """Records (the first `limit`) and the annotation rows that were skipped, as error rows."""
    loaded = data.load()
    no_duration = [row for row in loaded.skipped if reason_category(row.reason) == "missing duration"]
    if no_duration or any(record.duration is None for record in loaded.records):
        first = no_duration[0] if no_duration else None
        where = f" (e.g. {first.file} line {first.line}: {first.reason})" if first else ""
        hint = {"charades_sta": " Pass --duration-file Charades_v1_<split>.csv.", "nextgqa": " Pass --grounding-file."}
        raise ValueError(
            f"{len(no_duration)} annotation rows have no video duration{where}; predictions cannot be clamped or "
            f"scored without it.{hint.get(data.benchmark, '')}"
        )
    skipped = [
        {"qid": None, "video_id": None, "file": f"{row.file}:{row.line}", "stage": "annotation", "reason": row.reason}
        for row in loaded.skipped
    ]
    if not loaded.records:
        first = f"; e.g. {loaded.skipped[0].file}:{loaded.skipped[0].line}: {loaded.skipped[0].reason}" if skipped else ""
        raise ValueError(
            f"{data.annotations} holds no usable {data.benchmark} query ({len(skipped)} rows skipped{first}). Is it a "
            f"{data.benchmark} file?"
        )
    records = loaded.records[:limit] if limit is not None else loaded.records
    return records, skipped


def run_benchmark(
    data: BenchmarkData,
    run: BenchmarkRunSettings,
    sampling: SamplingSettings,
    model_settings: ModelSettings,
    *,
    loader: Loader = load_groundvts,
    log: Callable[[str], None] | None = None,
) -> BenchmarkReport:
    """Predict every query of `data` not yet in `run.output` (see the module docstring); `loader` loads the model
    (default `load_groundvts`), `log` receives the "resuming: ..." notice (main process only).

    Raises ValueError (bad input: no model, annotations without durations, a pass the benchmark lacks, an output
    made with other settings or corrupt) or FileNotFoundError (missing files) before any prediction is made.
    """
    model_settings = model_settings.or_bundled(log)
    if not run.video_root.is_dir():
        raise FileNotFoundError(
            f"video folder {run.video_root} does not exist; pass --video-root with the benchmark's videos."
        )
    check_writable_file(run.output, "--output")
    check_writable_file(run.errors_file, "--errors")
    passes = passes_for(data.benchmark, run.task)
    records, skipped = load_benchmark_records(data, run.limit)

    import torch
    from accelerate import PartialState

    # cpu=True lets accelerate see a multi-process CPU launch (torchrun / accelerate launch --cpu) as one.
    state = PartialState(cpu=model_settings.device == "cpu" or not torch.cuda.is_available())
    rank, world = state.process_index, state.num_processes
    model, processor = model_settings.load(loader, default_device=str(state.device))
    settings = InferenceSettings(
        benchmark=data.benchmark, passes=passes, batch_size=run.batch_size, max_new_tokens=sampling.max_new_tokens,
        fps=sampling.fps, num_frames=sampling.num_frames, max_pixels=sampling.max_pixels,
        video_cache_mb=run.video_cache_mb, provenance=run_provenance(model_settings.model, model, sampling),
    )
    run_settings = {
        "benchmark": data.benchmark, "passes": list(passes), **settings.provenance,
        "keep_ratio": float(model.config.vts_keep_ratio), "strategy": str(model.config.vts_strategy),
    }
    pending = pending_records(records, run.output, run_settings)
    # Every process must see the same pending list before anyone appends.
    state.wait_for_everyone()
    mine = pending[rank::world]
    target = run.output if world == 1 else part_path(run.output, rank)
    errors_file = run.errors_file
    errors_target = errors_file if world == 1 else part_path(errors_file, rank)
    done = len(records) - len(pending)
    if rank == 0 and done and log is not None:
        log(f"resuming: {done} of {len(records)} queries already in {run.output}")
    with RowWriter(errors_target, mode="w") as error_writer:
        if rank == 0:
            for row in skipped:
                error_writer.write(row)
        shard = run_shard(
            model, processor, mine, run.video_root, target, settings,
            progress=rank == 0 and run.progress, on_error=error_writer.write,
        )
    state.wait_for_everyone()
    report = BenchmarkReport(
        output=run.output, errors_file=errors_file, queries=len(records), resumed=done, skipped=len(skipped),
        shard=shard, main_process=rank == 0,
    )
    if rank == 0:
        merge_files(run.output, part_paths(run.output), [r.qid for r in records])
        if world > 1:
            errors_file.unlink(missing_ok=True)  # the report is this run's: its parts only
            concat_files(errors_file, part_paths(errors_file))
        made = {str(row["qid"]) for row in read_rows(run.output)[0]}
        report.predicted = sum(record.qid in made for record in records)
    return report
