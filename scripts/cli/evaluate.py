"""Score the predictions of `groundvts infer` against a benchmark's annotations (`groundvts evaluate`).

    groundvts evaluate --benchmark charades_sta --annotations charades_sta_test.txt --predictions preds.jsonl \\
        --output results.json

Metrics (the project's `evaluate` metric scripts, loaded by absolute path):
  charades_sta, activitynet_captions   R1@0.3, R1@0.5, R1@0.7, mIoU (moment_retrieval)
  qvhighlights                         moment_detr metrics: MR-full-R1@0.5/0.7, MR-full-mAP(@0.5/0.75),
                                       HL-min-{Fair,Good,VeryGood}-mAP/Hit1 (qvhighlights)
  nextgqa                              mIoU, mIoP, IoU@0.3/0.5, IoP@0.3/0.5, Acc@QA, Acc@GQA (nextgqa)
Conventions: by default each benchmark is scored exactly as the evaluator its published numbers came from scores it:
  charades_sta, activitynet_captions   eval_auto    GroundVTS/VideoMind eval/eval_auto.py (references not clamped)
                                       lighthouse   references clipped to the video, as lighthouse's release has them
                                       clamped      predictions and references sorted and clamped to the video
  qvhighlights                         moment_detr  moment_detr standalone_eval (clamped: windows clamped)
  nextgqa                              eval_ground  NExT-GQA eval_ground.py (clamped: windows clamped, outside = 0)
Every number in the output names its convention.
A query without a prediction (missing row) or with an unparsed answer counts as a failure and stays in the
denominator; `num_missing` says how many rows were missing. For QVHighlights highlight detection a missing or
unparsed answer is an empty score list, which earns no credit. A qid given twice in the predictions is an error.
Skipped annotation rows and predictions for unknown qids are reported on stderr. Prints a table and writes JSON
`{"benchmark", "annotations", "split", "convention", "num_predictions", "num_missing", "metrics": {...},
"conventions": {...}}`.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

from groundvts.scripts.cli._parser import CommandParser
from groundvts.scripts.inference.benchmark_tasks import BenchmarkData
from groundvts.scripts.inference.evaluation import evaluate_predictions, result_warnings, results_table, write_results


@dataclass(kw_only=True)  # keyword-only: `predictions` (required) may follow `split` (optional), as in --help
class EvaluationOutput:
    """The predictions to score, and where the results go."""

    split: str | None = field(
        default=None,
        metadata={"help": "split name recorded with the results (default: the one in the annotation file's name)"},
    )
    predictions: Path = field(metadata={"help": "predictions .jsonl from groundvts infer"})
    output: Path | None = field(default=None, metadata={"help": "write the results JSON here"})
    convention: str | None = field(
        default=None,
        metadata={"help": "scoring convention (default: the benchmark's reference evaluator; see above)"},
    )


def build_parser() -> CommandParser:
    # RawDescriptionHelpFormatter: the help texts state their defaults where they matter, as they always did.
    return CommandParser(
        [BenchmarkData, EvaluationOutput], prog="groundvts evaluate", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _run(data: BenchmarkData, output: EvaluationOutput) -> int:
    results = evaluate_predictions(
        data.benchmark, data.annotations, output.predictions,
        duration_file=data.duration_file, grounding_file=data.grounding_file, split=output.split,
        convention=output.convention,
    )
    for warning in result_warnings(results):
        print(warning, file=sys.stderr)
    print(results_table(results))
    if output.output is not None:
        print(f"results: {write_results(results, output.output)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return build_parser().run(argv, lambda data, output, _: _run(data, output))


if __name__ == "__main__":
    sys.exit(main())
