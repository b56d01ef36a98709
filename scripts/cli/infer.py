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
--keep-ratio and --strategy override VTS. Only the sampled frames of a video are decoded (seeking to each), once
for all its questions and passes while they fit --video-cache-mb. Rows flag spans `clamped` to the video or
`swapped`, and record the decoded `video_duration`; a video decoding to under 90% of its annotated duration gets a
warning.
"""

from __future__ import annotations

import argparse
import sys

from groundvts.scripts.cli._parser import CommandParser
from groundvts.scripts.inference.benchmark import INFER_MAX_NEW_TOKENS, BenchmarkRunSettings, run_benchmark
from groundvts.scripts.inference.benchmark_tasks import BenchmarkData
from groundvts.scripts.inference.generation import SamplingSettings
from groundvts.scripts.inference.loading import ModelSettings, load_groundvts


def build_parser() -> CommandParser:
    # RawDescriptionHelpFormatter: the help texts state their defaults where they matter, as they always did.
    parser = CommandParser(
        [BenchmarkData, BenchmarkRunSettings, ModelSettings, SamplingSettings], prog="groundvts infer",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(max_new_tokens=INFER_MAX_NEW_TOKENS)
    return parser


def _log(message: str) -> None:
    print(message, file=sys.stderr)


def _run(data: BenchmarkData, run: BenchmarkRunSettings, model_settings: ModelSettings,
         sampling: SamplingSettings) -> int:
    # This module's `load_groundvts`, looked up now: tests replace it here.
    report = run_benchmark(data, run, sampling, model_settings, loader=load_groundvts, log=_log)
    if report.main_process:  # one summary per launch, not per process
        print(report.summary())
    return 0


def main(argv: list[str] | None = None) -> int:
    return build_parser().run(
        argv, lambda data, run, model_settings, sampling, _: _run(data, run, model_settings, sampling)
    )


if __name__ == "__main__":
    sys.exit(main())
