"""Run a GroundVTS model over a benchmark's annotations and write resumable predictions (`groundvts infer`).

    groundvts infer --benchmark charades_sta --annotations charades_sta_test.txt --video-root Charades_v1 \\
        --model ./groundvts-q --output preds/charades.jsonl --batch-size 4
    accelerate launch --num_processes 8 -m groundvts.scripts.cli infer ...   # one shard per process

Benchmarks and what runs per query:
  charades_sta          grounding prompt -> `window` (txt + Charades_v1_*.csv durations via --duration-file,
                        or the lighthouse jsonl)
  activitynet_captions  grounding prompt -> `window`. Split: pass val_2.json, as VideoMind does (lighthouse
                        and others use val_1); state the split with your numbers.
  qvhighlights          grounding prompt + highlight prompt -> moment_detr rows (`pred_relevant_windows`,
                        `pred_saliency_scores`, one score per 2-s clip)
  nextgqa               grounding prompt + multiple-choice prompt -> `window` and `answer` (--grounding-file
                        gsub_<split>.json)
`--task mr|hd|qa` runs one pass only.

One JSON line per query is appended and flushed as soon as it is made. Rerunning the same command resumes:
queries already in the output are skipped, and a partial last line (a killed run) is dropped and redone. With
several processes each appends to `<output stem>.rank<i>.jsonl`; the first process merges them into the output,
in annotation order, at the end. Queries whose video is missing or unreadable are listed (file, qid, reason) in
`<output stem>.errors.jsonl` and the run goes on. Sampling follows the processor saved with the model (true
frame times read from each file) unless --fps / --num-frames is given (both within the processor's max_frames);
--keep-ratio and --strategy override VTS. Rows flag spans `clamped` to the video or `swapped`, and record the
decoded `video_duration`; a video decoding to under 90% of its annotated duration gets a warning.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from groundvts.modeling.vts import VTS_STRATEGIES
from groundvts.processing.annotations import BENCHMARKS, load_annotations, reason_category, resolve_video

from groundvts.scripts.inference.benchmark_tasks import TASK_CHOICES, merge_row, pass_prompt, passes_for
from groundvts.scripts.inference.generation import VideoReadError, configure_vts, generate_answers, load_groundvts
from groundvts.scripts.inference.grounding import parse_args
from groundvts.scripts.inference.prediction_store import (
    CorruptPredictionsError,
    RowWriter,
    concat_files,
    existing_rows,
    merge_files,
    part_path,
    part_paths,
    read_rows,
    repair,
)

# Settings that must agree between a run and the rows it resumes (mixing them would corrupt the results).
RUN_SETTINGS = ("benchmark", "passes", "keep_ratio", "strategy")
# A video decoding to less than this share of its annotated duration gets a warning (truncated or wrong file).
SHORT_VIDEO_RATIO = 0.9


@dataclass
class InferenceSettings:
    benchmark: str
    passes: tuple[str, ...]
    batch_size: int = 1
    max_new_tokens: int = 256
    fps: float | None = None
    num_frames: int | None = None
    max_pixels: int | None = None


@dataclass
class ShardReport:
    written: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class SettingsMismatchError(ValueError):
    """The output already holds rows made with other settings."""


def errors_path(output: Path) -> Path:
    return output.with_name(f"{output.stem}.errors.jsonl")


def check_resumable(rows: list[dict[str, Any]], settings: dict[str, Any], output: Path) -> None:
    """Refuse to mix runs: every existing row must carry the same run settings."""
    for row in rows:
        for key in RUN_SETTINGS:
            if key in row and row[key] != settings[key]:
                raise SettingsMismatchError(
                    f"{output} already holds predictions made with {key}={row[key]!r}, but this run uses "
                    f"{settings[key]!r}. Use another --output, or delete the file to start over."
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
    model: Any, processor: Any, items: list[tuple[Any, str]], settings: InferenceSettings
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
                max_new_tokens=settings.max_new_tokens,
            )
    except VideoReadError as error:
        if len(items) == 1:
            record, video = items[0]
            return [], [_error_row(record, video, "video", str(error))]
        done, errors = [], []
        for item in items:
            one_done, one_errors = _answer_batch(model, processor, [item], settings)
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
    """Predict `records` (this process's share of the pending ones), appending each row to `target`."""
    from tqdm.auto import tqdm

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
    bar = tqdm(total=len(ready), desc=f"{settings.benchmark} ({'+'.join(settings.passes)})", disable=not progress)
    warned: set[str] = set()
    with RowWriter(target) as writer:
        for start in range(0, len(ready), settings.batch_size):
            batch = ready[start : start + settings.batch_size]
            rows, errors = _answer_batch(model, processor, batch, settings)
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
    return report


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="groundvts infer", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--benchmark", required=True, choices=BENCHMARKS)
    parser.add_argument("--annotations", required=True, type=Path, help="the benchmark's annotation file")
    parser.add_argument("--duration-file", type=Path, default=None, help="Charades-STA: Charades_v1_<split>.csv")
    parser.add_argument("--grounding-file", type=Path, default=None, help="NExT-GQA: gsub_<split>.json")
    parser.add_argument("--video-root", required=True, type=Path, help="folder with the benchmark's videos")
    parser.add_argument("--model", default=None, help="GroundVTS model folder or Hub id (required for now)")
    parser.add_argument("--output", required=True, type=Path, help="predictions .jsonl (appended; resumable)")
    parser.add_argument("--errors", type=Path, default=None, help="error report (default <output stem>.errors.jsonl)")
    parser.add_argument("--task", choices=TASK_CHOICES, default="all", help="run one pass only (default: all)")
    parser.add_argument("--batch-size", type=int, default=1)
    sampling = parser.add_mutually_exclusive_group()
    sampling.add_argument("--fps", type=float, default=None, help="sampling fps (default: the processor's, 2.0)")
    sampling.add_argument(
        "--num-frames", type=int, default=None,
        help="sample a fixed number of frames (at most the processor's max_frames)",
    )
    parser.add_argument(
        "--max-pixels", type=int, default=None,
        help="pixels per frame at most (default: the processor's; the official Qwen eval uses 50176 = 64*28*28)",
    )
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--keep-ratio", type=float, default=None, help="override rho (config vts_keep_ratio)")
    parser.add_argument("--strategy", choices=VTS_STRATEGIES, default=None, help="override config vts_strategy")
    parser.add_argument("--limit", type=int, default=None, help="only the first N queries of the file")
    parser.add_argument("--device", default=None, help="default: this process's accelerator device")
    parser.add_argument("--dtype", default="auto", help="auto, float32, bfloat16 or float16")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _load_records(args: argparse.Namespace) -> tuple[list[Any], list[dict[str, Any]]]:
    """Records (the first --limit) and the annotation rows that were skipped, as error rows."""
    loaded = load_annotations(
        args.benchmark, args.annotations, duration_file=args.duration_file, grounding_file=args.grounding_file
    )
    no_duration = [row for row in loaded.skipped if reason_category(row.reason) == "missing duration"]
    if no_duration or any(record.duration is None for record in loaded.records):
        first = no_duration[0] if no_duration else None
        where = f" (e.g. {first.file} line {first.line}: {first.reason})" if first else ""
        hint = {"charades_sta": " Pass --duration-file Charades_v1_<split>.csv.", "nextgqa": " Pass --grounding-file."}
        raise ValueError(
            f"{len(no_duration)} annotation rows have no video duration{where}; predictions cannot be clamped or "
            f"scored without it.{hint.get(args.benchmark, '')}"
        )
    skipped = [
        {"qid": None, "video_id": None, "file": f"{row.file}:{row.line}", "stage": "annotation", "reason": row.reason}
        for row in loaded.skipped
    ]
    if not loaded.records:
        raise ValueError(f"{args.annotations} holds no usable {args.benchmark} query ({len(skipped)} rows skipped).")
    records = loaded.records[: args.limit] if args.limit is not None else loaded.records
    return records, skipped


def _check_args(args: argparse.Namespace) -> str | None:
    if args.model is None:
        return "pass --model (a GroundVTS model folder or Hub id)."
    if not args.video_root.is_dir():
        return f"video folder {args.video_root} does not exist; pass --video-root with the benchmark's videos."
    for name in ("batch_size", "max_new_tokens", "limit", "num_frames", "max_pixels"):
        value = getattr(args, name)
        if value is not None and value < 1:
            return f"--{name.replace('_', '-')} must be >= 1, got {value}."
    if args.fps is not None and not args.fps > 0:
        return f"--fps must be > 0, got {args.fps}."
    if args.output.suffix != ".jsonl":
        return f"--output must end in .jsonl, got {args.output}."
    return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(build_parser(), argv)
    if isinstance(args, int):
        return args
    if problem := _check_args(args):
        return _fail(problem)
    try:
        passes = passes_for(args.benchmark, args.task)
        records, skipped = _load_records(args)
    except (FileNotFoundError, ValueError) as error:
        return _fail(str(error))

    import torch
    from accelerate import PartialState

    # cpu=True lets accelerate see a multi-process CPU launch (torchrun / accelerate launch --cpu) as one.
    state = PartialState(cpu=args.device == "cpu" or not torch.cuda.is_available())
    rank, world = state.process_index, state.num_processes
    try:
        model, processor = load_groundvts(args.model, device=args.device or str(state.device), dtype=args.dtype)
        configure_vts(model, keep_ratio=args.keep_ratio, strategy=args.strategy)
    except (FileNotFoundError, ValueError, OSError) as error:
        return _fail(str(error))
    settings = InferenceSettings(
        benchmark=args.benchmark, passes=passes, batch_size=args.batch_size, max_new_tokens=args.max_new_tokens,
        fps=args.fps, num_frames=args.num_frames, max_pixels=args.max_pixels,
    )
    run_settings = {
        "benchmark": args.benchmark, "passes": list(passes),
        "keep_ratio": float(model.config.vts_keep_ratio), "strategy": str(model.config.vts_strategy),
    }
    try:
        pending = pending_records(records, args.output, run_settings)
    except (CorruptPredictionsError, SettingsMismatchError) as error:
        return _fail(str(error))
    # Every process must see the same pending list before anyone appends.
    state.wait_for_everyone()
    mine = pending[rank::world]
    target = args.output if world == 1 else part_path(args.output, rank)
    errors_file = args.errors or errors_path(args.output)
    errors_target = errors_file if world == 1 else part_path(errors_file, rank)
    done = len(records) - len(pending)
    if rank == 0 and done:
        print(f"resuming: {done} of {len(records)} queries already in {args.output}", file=sys.stderr)
    with RowWriter(errors_target, mode="w") as error_writer:
        if rank == 0:
            for row in skipped:
                error_writer.write(row)
        run_shard(
            model, processor, mine, args.video_root, target, settings,
            progress=rank == 0 and not args.no_progress, on_error=error_writer.write,
        )
    state.wait_for_everyone()
    if rank == 0:
        merge_files(args.output, part_paths(args.output), [r.qid for r in records])
        if world > 1:
            errors_file.unlink(missing_ok=True)  # the report is this run's: its parts only
            concat_files(errors_file, part_paths(errors_file))
        made = {str(row["qid"]) for row in read_rows(args.output)[0]}
        total = sum(record.qid in made for record in records)
        missing = len(records) - total
        print(
            f"{total} of {len(records)} predictions in {args.output}"
            + (f"; {missing} missing, see {errors_file}" if missing else "")
            + (f"; {len(skipped)} annotation rows skipped" if skipped else "")
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
