"""Score benchmark predictions (the rows `groundvts infer` writes) against the annotations.

`evaluate_predictions(benchmark, annotations, predictions)` returns the results dict that `groundvts evaluate`
writes as JSON (`write_results`); `results_table` is the text it prints and `result_warnings` the lines it prints to
stderr. The metrics are the project's `evaluate` metric scripts (`evaluate_metrics/<name>`), loaded by path:
  charades_sta, activitynet_captions   R1@0.3, R1@0.5, R1@0.7, mIoU (moment_retrieval)
  qvhighlights                         moment_detr metrics: MR-full-R1@0.5/0.7, MR-full-mAP(@0.5/0.75),
                                       HL-min-{Fair,Good,VeryGood}-mAP/Hit1, and GroundVTS's extra MR keys
  nextgqa                              mIoU, mIoP, IoU@0.3/0.5, IoP@0.3/0.5, Acc@QA, Acc@GQA (nextgqa)
By default each benchmark is scored the way the evaluator its published numbers came from scores it
(`DEFAULT_CONVENTION`: GroundVTS eval_auto, moment_detr standalone_eval, NExT-GQA eval_ground.py); `convention`
picks another one the metric names. The metric sees what the model answered and what the file says: a row's
`raw_window` (the answer's own numbers, before the parser sorted or clamped them) and the annotation's windows
before loading clamped them. Every number in the results names its convention (`conventions`).
A query without a prediction (missing row) or with an unparsed answer counts as a failure and stays in the
denominator; for QVHighlights highlight detection both are an empty score list, which earns no credit.
A qid given twice in the predictions file is an error.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

from groundvts.processing.annotations import load_annotations, reason_category, split_of

from groundvts.scripts.inference.prediction_store import read_rows

__all__ = [
    "METRIC_OF", "HEADLINE", "metrics_dir", "load_metric", "evaluate_predictions", "results_table",
    "missing_warning", "result_warnings", "write_results", "DEFAULT_CONVENTION",
]

DEFAULT_CONVENTION = {
    "moment_retrieval": "eval_auto",
    "qvhighlights": "moment_detr",
    "nextgqa": "eval_ground",
}
METRIC_OF = {
    "charades_sta": "moment_retrieval",
    "activitynet_captions": "moment_retrieval",
    "qvhighlights": "qvhighlights",
    "nextgqa": "nextgqa",
}
NO_ANSWER = -1  # an option index no question has
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


def _rows_by_qid(rows: list[dict[str, Any]], benchmark: str, path: Path) -> dict[str, dict[str, Any]]:
    by_qid: dict[str, dict[str, Any]] = {}
    first_row: dict[str, int] = {}
    for number, row in enumerate(rows, start=1):
        if row.get("benchmark", benchmark) != benchmark:
            raise ValueError(f"the predictions are for {row['benchmark']!r}, not {benchmark!r}.")
        qid = str(row["qid"])
        if qid in by_qid:
            # The metric modules refuse a repeated qid too: which of two answers counts is not ours to pick.
            raise ValueError(
                f"{path}: qid {qid} appears twice (rows {first_row[qid]} and {number}); keep one row per query "
                "(groundvts infer merges its part files that way)."
            )
        by_qid[qid], first_row[qid] = row, number
    return by_qid


def _answered_window(row: dict[str, Any]) -> list[float] | None:
    """The window the model answered: `raw_window` when the parser sorted or clamped it, else `window`."""
    return row.get("raw_window") or row.get("window")


def _references(records: list[Any]) -> list[list[float]]:
    return [[list(w) for w in r.reference_windows] for r in records]


def moment_inputs(records: list[Any], preds: dict[str, dict[str, Any]]) -> tuple[list, list]:
    predictions = [{"qid": r.qid, "windows": _answered_window(preds.get(r.qid) or {})} for r in records]
    references = [{"qid": r.qid, "windows": windows, "duration": r.duration}
                  for r, windows in zip(records, _references(records))]
    return predictions, references


def _ranked_windows(row: dict[str, Any]) -> list:
    """pred_relevant_windows, the first one as the model answered it (`raw_window`) when the parser changed it."""
    windows = [list(w) for w in row.get("pred_relevant_windows") or []]
    if windows and row.get("raw_window"):
        windows[0][:2] = row["raw_window"]
    return windows


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
            item["pred_relevant_windows"] = _ranked_windows(row)
        if has_hd:
            # Missing row or no scores: an empty list, which the metric scores as no prediction (no credit).
            item["pred_saliency_scores"] = row.get("pred_saliency_scores") or []
        predictions.append(item)
    references = [
        {
            "qid": r.qid, "duration": r.duration, "relevant_windows": windows,
            "relevant_clip_ids": list(r.relevant_clip_ids), "saliency_scores": [list(s) for s in r.saliency_scores],
        }
        for r, windows in zip(records, _references(records))
    ]
    return predictions, references


def _answer_index(row: dict[str, Any], options: tuple[str, ...] | None) -> int:
    """The option index a row answered (`answer_index`, or its `answer` text among the options); -1 for none."""
    if isinstance(row.get("answer_index"), int) and not isinstance(row["answer_index"], bool):
        return row["answer_index"]
    text = row.get("answer")
    if isinstance(text, str) and options:
        folded = [option.strip().casefold() for option in options]
        if text.strip().casefold() in folded:
            return folded.index(text.strip().casefold())
    return NO_ANSWER


def nextgqa_inputs(records: list[Any], preds: dict[str, dict[str, Any]]) -> tuple[list, list]:
    with_answers = any("answer" in row or "answer_index" in row for row in preds.values())
    predictions = []
    for record in records:
        row = preds.get(record.qid) or {}
        item = {"qid": record.qid, "window": _answered_window(row)}
        if with_answers:
            # Option indices, as eval_ground.py compares them. The metric leaves Acc out when no prediction has
            # an answer; an index that matches no option keeps unparsed and missing answers in it as wrong ones.
            item["answer"] = _answer_index(row, record.options)
        predictions.append(item)
    references = [
        {"qid": r.qid, "windows": windows, "duration": r.duration, "answer": r.answer_index}
        for r, windows in zip(records, _references(records))
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
    convention: str | None = None,
) -> dict[str, Any]:
    """The results dict written by `groundvts evaluate`: benchmark, annotations, split, metric, convention, the counts
    (num_queries, num_predictions, num_missing, num_unknown_predictions, num_annotation_rows_skipped),
    `skipped_reasons` (category -> rows), `unknown_qids` (the first few), `metrics` and `conventions` (metric key ->
    the convention that produced it). `split` defaults to the one the annotation file's name states (`split_of`);
    `convention` to the benchmark's `DEFAULT_CONVENTION`."""
    loaded = load_annotations(benchmark, annotations, duration_file=duration_file, grounding_file=grounding_file)
    if not loaded.records:
        raise ValueError(f"{annotations} holds no usable {benchmark} query.")
    predictions = Path(predictions)
    if not predictions.is_file():
        raise FileNotFoundError(f"predictions file {predictions} does not exist.")
    preds = _rows_by_qid(read_rows(predictions)[0], benchmark, predictions)
    qids = {r.qid for r in loaded.records}
    name = METRIC_OF[benchmark]
    convention = convention or DEFAULT_CONVENTION[name]
    metric_predictions, references = INPUTS[name](loaded.records, preds)
    try:
        metrics = load_metric(name).compute(predictions=metric_predictions, references=references, convention=convention)
    except ValueError as error:
        # The metric names the item or option; re-raised here so the command reports it as bad input.
        raise ValueError(f"{name} metric on {predictions}: {error}") from None
    metrics.pop("convention")
    key_conventions = metrics.pop("key_conventions", {})
    metrics = {key: _plain(value) for key, value in metrics.items()}
    unknown = [qid for qid in preds if qid not in qids]
    return {
        "benchmark": benchmark,
        "annotations": str(annotations),
        "split": split or split_of(annotations),
        "metric": name,
        "convention": convention,
        "num_queries": len(loaded.records),
        "num_predictions": sum(qid in preds for qid in qids),
        "num_missing": sum(qid not in preds for qid in qids),
        "num_unknown_predictions": len(unknown),
        "unknown_qids": unknown[:5],
        "num_annotation_rows_skipped": len(loaded.skipped),
        "skipped_reasons": dict(Counter(reason_category(row.reason) for row in loaded.skipped)),
        "metrics": metrics,
        "conventions": {
            key: key_conventions.get(key, convention) for key, value in metrics.items()
            if not _is_count(key) and isinstance(value, (int, float))
        },
    }


def _is_count(key: str) -> bool:
    return key.startswith(("num_", "MR-num", "HL-num")) or key.endswith("-num-queries")


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None  # JSON has no NaN (e.g. an empty QVHighlights length bucket)
    return value


def results_table(results: dict[str, Any]) -> str:
    """The headline metrics with the convention that produced them, then the counts, as aligned text."""
    metrics, conventions = results["metrics"], results.get("conventions", {})
    headline = [key for key in HEADLINE[results["metric"]] if key in metrics]
    lines = [f"{results['benchmark']} ({results['split'] or Path(results['annotations']).name}): {results['num_queries']} queries, "
             f"{results['num_predictions']} predicted, {results['num_missing']} missing; "
             f"convention {results.get('convention')}"]
    width = max(len(key) for key in headline) if headline else 0
    for key in headline:
        value = metrics[key]
        text = f"{value:6.2f}" if isinstance(value, (int, float)) else "     -"
        other = conventions.get(key, results.get("convention"))
        lines.append(f"  {key:<{width}}  {text}" + (f"  ({other})" if other != results.get("convention") else ""))
    counts = {k: v for k, v in metrics.items() if k.startswith(("num_", "MR-num", "HL-num"))}
    if counts:
        lines.append("  " + ", ".join(f"{k}={v}" for k, v in counts.items()))
    lines.append(
        f"  annotation rows skipped: {results['num_annotation_rows_skipped']}, "
        f"predictions for unknown qids: {results['num_unknown_predictions']}"
    )
    return "\n".join(lines)


def missing_warning(results: dict[str, Any]) -> str | None:
    """A warning line when some queries have no prediction (they count as failures), else None."""
    if not results["num_missing"]:
        return None
    return (
        f"warning: {results['num_missing']} of {results['num_queries']} queries have no prediction; they count "
        "as failures."
    )


def result_warnings(results: dict[str, Any]) -> list[str]:
    """Warning lines: queries without a prediction, annotation rows skipped (by reason) and predictions for qids the
    annotations do not have (ignored)."""
    warnings = [line for line in [missing_warning(results)] if line]
    if results["num_annotation_rows_skipped"]:
        reasons = ", ".join(f"{n} {reason}" for reason, n in results.get("skipped_reasons", {}).items())
        warnings.append(
            f"warning: {results['num_annotation_rows_skipped']} rows of {results['annotations']} were skipped "
            f"({reasons}); they are not scored."
        )
    if results["num_unknown_predictions"]:
        examples = ", ".join(results.get("unknown_qids", []))
        warnings.append(
            f"warning: {results['num_unknown_predictions']} predictions have qids that are not in the annotations "
            f"(e.g. {examples}); they are ignored. Check --benchmark and --annotations."
        )
    return warnings


def write_results(results: dict[str, Any], path: str | Path) -> Path:
    """Write the results dict as indented JSON (creating the folder); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    return path
