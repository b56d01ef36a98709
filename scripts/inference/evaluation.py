"""Score benchmark predictions (the rows `groundvts infer` writes) against the annotations.

`evaluate_predictions(benchmark, annotations, predictions)` returns the results dict that `groundvts evaluate`
writes as JSON (`write_results`); `results_table` is the text it prints. The metrics are the project's `evaluate`
metric scripts (`evaluate_metrics/<name>`), loaded by path:
  charades_sta, activitynet_captions   R1@0.3, R1@0.5, R1@0.7, mIoU (moment_retrieval)
  qvhighlights                         moment_detr metrics: MR-full-R1@0.5/0.7, MR-full-mAP(@0.5/0.75),
                                       HL-min-{Fair,Good,VeryGood}-mAP/Hit1 (qvhighlights)
  nextgqa                              mIoU, mIoP, IoU@0.3/0.5, IoP@0.3/0.5, Acc@QA, Acc@GQA (nextgqa)
A query without a prediction (missing row) or with an unparsed answer counts as a failure and stays in the
denominator. For QVHighlights highlight detection a missing or unparsed answer is an all-zero saliency row.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from groundvts.processing.annotations import load_annotations, split_of
from groundvts.processing.prompts import HD_CLIP_SECONDS

from groundvts.scripts.inference.prediction_store import read_rows

__all__ = [
    "METRIC_OF", "HEADLINE", "metrics_dir", "load_metric", "evaluate_predictions", "results_table",
    "missing_warning", "write_results",
]

METRIC_OF = {
    "charades_sta": "moment_retrieval",
    "activitynet_captions": "moment_retrieval",
    "qvhighlights": "qvhighlights",
    "nextgqa": "nextgqa",
}
NO_ANSWER = "<no answer>"
# The headline metrics printed first (all computed metrics go to the JSON).
HEADLINE = {
    "moment_retrieval": ("R1@0.3", "R1@0.5", "R1@0.7", "mIoU"),
    "qvhighlights": (
        "MR-full-R1@0.5", "MR-full-R1@0.7", "MR-full-mAP", "MR-full-mAP@0.5", "MR-full-mAP@0.75",
        "HL-min-Fair-mAP", "HL-min-Fair-Hit1", "HL-min-VeryGood-mAP", "HL-min-VeryGood-Hit1",
    ),
    "nextgqa": ("mIoU", "mIoP", "IoU@0.3", "IoU@0.5", "IoP@0.3", "IoP@0.5", "Acc@QA", "Acc@GQA"),
}


def metrics_dir() -> Path:
    """The folder of the metric scripts (`evaluate_metrics/<name>/<name>.py`)."""
    from importlib.resources import files

    return Path(str(files("groundvts.evaluate_metrics")))


def load_metric(name: str) -> Any:
    import evaluate

    # keep_in_memory: no cache-file lock left behind if a compute raises.
    return evaluate.load(str(metrics_dir() / name), keep_in_memory=True)


def _rows_by_qid(rows: list[dict[str, Any]], benchmark: str) -> dict[str, dict[str, Any]]:
    by_qid: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row.get("benchmark", benchmark) != benchmark:
            raise ValueError(f"the predictions are for {row['benchmark']!r}, not {benchmark!r}.")
        by_qid.setdefault(str(row["qid"]), row)
    return by_qid


def moment_inputs(records: list[Any], preds: dict[str, dict[str, Any]]) -> tuple[list, list]:
    predictions = [{"qid": r.qid, "windows": (preds.get(r.qid) or {}).get("window")} for r in records]
    references = [{"qid": r.qid, "windows": [list(w) for w in r.windows], "duration": r.duration} for r in records]
    return predictions, references


def qvhighlights_inputs(records: list[Any], preds: dict[str, dict[str, Any]]) -> tuple[list, list]:
    if any(r.relevant_clip_ids is None or not r.windows for r in records):
        raise ValueError(
            "these QVHighlights annotations have no ground truth (e.g. highlight_test_release.jsonl); evaluate on "
            "val or highlight_test_with_gt.jsonl, or submit the predictions to the official server."
        )
    present = [row for row in preds.values()]
    has_mr = any("pred_relevant_windows" in row for row in present) or not present
    has_hd = any("pred_saliency_scores" in row for row in present) or not present
    predictions = []
    for record in records:
        row = preds.get(record.qid) or {}
        item: dict[str, Any] = {"qid": record.qid}
        if has_mr:
            item["pred_relevant_windows"] = row.get("pred_relevant_windows") or []
        if has_hd:
            clips = math.ceil(round(record.duration / HD_CLIP_SECONDS, 9))
            item["pred_saliency_scores"] = row.get("pred_saliency_scores") or [0.0] * clips
        predictions.append(item)
    references = [
        {
            "qid": r.qid, "duration": r.duration, "relevant_windows": [list(w) for w in r.windows],
            "relevant_clip_ids": list(r.relevant_clip_ids), "saliency_scores": [list(s) for s in r.saliency_scores],
        }
        for r in records
    ]
    return predictions, references


def nextgqa_inputs(records: list[Any], preds: dict[str, dict[str, Any]]) -> tuple[list, list]:
    with_answers = any("answer" in row for row in preds.values())
    predictions = []
    for record in records:
        row = preds.get(record.qid) or {}
        item = {"qid": record.qid, "window": row.get("window")}
        if with_answers:
            # The metric leaves Acc out when no prediction has an answer; a marker that matches no option
            # keeps unparsed and missing answers in it as wrong ones.
            item["answer"] = row.get("answer") or NO_ANSWER
        predictions.append(item)
    references = [
        {
            "qid": r.qid, "windows": [list(w) for w in r.windows], "duration": r.duration,
            "answer": r.options[r.answer_index] if r.options is not None and r.answer_index is not None else None,
        }
        for r in records
    ]
    return predictions, references


INPUTS = {"moment_retrieval": moment_inputs, "qvhighlights": qvhighlights_inputs, "nextgqa": nextgqa_inputs}


def evaluate_predictions(
    benchmark: str,
    annotations: str | Path,
    predictions: str | Path,
    *,
    duration_file: str | Path | None = None,
    grounding_file: str | Path | None = None,
    split: str | None = None,
) -> dict[str, Any]:
    """The results dict written by `groundvts evaluate`: benchmark, annotations, split, metric, the counts
    (num_queries, num_predictions, num_missing, num_unknown_predictions, num_annotation_rows_skipped) and
    `metrics`. `split` defaults to the one the annotation file's name states (`split_of`)."""
    loaded = load_annotations(benchmark, annotations, duration_file=duration_file, grounding_file=grounding_file)
    if not loaded.records:
        raise ValueError(f"{annotations} holds no usable {benchmark} query.")
    predictions = Path(predictions)
    if not predictions.is_file():
        raise FileNotFoundError(f"predictions file {predictions} does not exist.")
    preds = _rows_by_qid(read_rows(predictions)[0], benchmark)
    qids = {r.qid for r in loaded.records}
    name = METRIC_OF[benchmark]
    metric_predictions, references = INPUTS[name](loaded.records, preds)
    metrics = load_metric(name).compute(predictions=metric_predictions, references=references)
    return {
        "benchmark": benchmark,
        "annotations": str(annotations),
        "split": split or split_of(annotations),
        "metric": name,
        "num_queries": len(loaded.records),
        "num_predictions": sum(qid in preds for qid in qids),
        "num_missing": sum(qid not in preds for qid in qids),
        "num_unknown_predictions": sum(qid not in qids for qid in preds),
        "num_annotation_rows_skipped": len(loaded.skipped),
        "metrics": {key: _plain(value) for key, value in metrics.items()},
    }


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None  # JSON has no NaN (e.g. an empty QVHighlights length bucket)
    return value


def results_table(results: dict[str, Any]) -> str:
    """The headline metrics, then the counts, as aligned text."""
    metrics = results["metrics"]
    headline = [key for key in HEADLINE[results["metric"]] if key in metrics]
    lines = [f"{results['benchmark']} ({results['split'] or Path(results['annotations']).name}): {results['num_queries']} queries, "
             f"{results['num_predictions']} predicted, {results['num_missing']} missing"]
    width = max(len(key) for key in headline) if headline else 0
    for key in headline:
        value = metrics[key]
        lines.append(f"  {key:<{width}}  {value:6.2f}" if isinstance(value, (int, float)) else f"  {key:<{width}}  -")
    counts = {k: v for k, v in metrics.items() if k.startswith(("num_", "MR-num", "HL-num"))}
    if counts:
        lines.append("  " + ", ".join(f"{k}={v}" for k, v in counts.items()))
    return "\n".join(lines)


def missing_warning(results: dict[str, Any]) -> str | None:
    """A warning line when some queries have no prediction (they count as failures), else None."""
    if not results["num_missing"]:
        return None
    return (
        f"warning: {results['num_missing']} of {results['num_queries']} queries have no prediction; they count "
        "as failures."
    )


def write_results(results: dict[str, Any], path: str | Path) -> Path:
    """Write the results dict as indented JSON (creating the folder); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    return path
