"""QVHighlights evaluation: moment retrieval (MR) and highlight detection (HD).

Self-contained `evaluate` metric (loaded standalone by `evaluate.load` and copied to a Hub Space):
it imports no other metric module and no GroundVTS code.
"""

import math
import numbers
from typing import Any, Optional

import datasets
import evaluate
import numpy as np


_CITATION = """\
@inproceedings{lei2021qvhighlights,
  title     = {QVHighlights: Detecting Moments and Highlights in Videos via Natural Language Queries},
  author    = {Lei, Jie and Berg, Tamara L. and Bansal, Mohit},
  booktitle = {NeurIPS},
  year      = {2021}
}
"""

_DESCRIPTION = """\
The standard QVHighlights evaluation (moment_detr `standalone_eval/eval.py` and `utils.py`),
re-implemented; it reproduces moment_detr's `sample_val_preds_metrics_raw.json` exactly at its
2-decimal precision. Keys use the names of that file, flattened: `MR-{bucket}-mAP`,
`MR-{bucket}-mAP@{t}`, `MR-{bucket}-R1@{t}`, `HL-min-{level}-mAP`, `HL-min-{level}-Hit1`; plus the keys
the official GroundVTS `eval/eval_qvhighlights.py` adds: `MR-{bucket}-R1@{0.3,0.35,0.4,0.45}`,
`MR-{bucket}-mIoU`, `MR-{bucket}-R5@{t}`, and (with `lenient_hit1=True`) `HL-min-{level}-Hit1-lenient`.

Moment retrieval, over the length buckets short (0, 10], middle (10, 30], long (30, 150] s of
the ground-truth windows (a query joins a bucket with its windows in that range) and full (all):
- mAP: the first `max_pred_windows` (10) listed windows, ranked by score (stable), are matched
  greedily to the ground-truth windows of their query (each matched once, best IoU first, ties
  broken towards the later window as the reference's reversed argsort does; a window with IoU < t
  is a false positive); AP = interpolated precision-recall area (VOC 2011 style: precision made
  monotone from the right, summed over recall steps, recall completed to 1 with precision 0);
  mAP = mean over queries, at t = 0.50:0.05:0.95, and their average (`MR-{bucket}-mAP`).
  IoU = inter / (len_p + len_g - inter).
- R1@t (t = 0.30:0.05:0.95): the **first-listed** window (not the top-scored one) against the
  ground truth of highest IoU (first one on ties); that pair is scored with the reference's
  "hull" IoU, inter / (max end - min start), and 100 * mean[IoU >= t]. Using the same two
  formulas as the reference decides threshold ties as it does.
- mIoU (GroundVTS): 100 * mean of that R1 IoU.
- R5@t (GroundVTS `compute_mr_r5`): among the first 5 **listed** windows and the ground-truth
  windows, the pair of highest IoU (first in row order on ties), scored with the hull IoU.

Highlight detection (2-second clips, `int(duration / clip_length)` clips; the 3 annotators'
0-4 scores are binarised **per annotator** at Fair >= 2, Good >= 3, VeryGood >= 4):
- mAP: for each (query, annotator), AP = mean, over the distinct positive recall levels of the
  ranking by predicted score (ties form one threshold), of the interpolated precision (maximum
  precision at any recall >= that level); a column with no positive clip scores 0, an
  all-positive column 1. Predictions are truncated, or padded with `saliency_pad_value` (0, as
  the reference does), to the clip count. mAP = 100 * mean over all (query, annotator) pairs.
- Hit1 (moment_detr `compute_hl_hit1`): the **first** argmax clip of the unpadded predicted scores
  is a hit if any annotator marks it positive; an argmax past the last clip is a miss.
- Hit1-lenient (GroundVTS `compute_hl_hit1_multiple`, with `lenient_hit1=True`): the maximum is
  taken over **all** predicted scores, not cut to the clip count; a miss if it is 0, else a hit
  if any clip tied at it lies inside the video and is positive for any annotator (a maximum only
  past the last clip is a miss). It is inflated by ties and not comparable with Hit1.
- An empty `pred_saliency_scores` list means "no highlight prediction" (e.g. an unparsed answer):
  it earns no credit, AP 0 for every annotator and a miss for both Hit1 variants, and is counted in
  `HL-num-empty`. (The references raise on it; treating it as "clip 0 predicted" would give credit.)

Conventions (`convention`, reported in the output as `convention`; `key_conventions` names the
keys whose definition comes from GroundVTS's script, `"groundvts_eval_qvhighlights"`):
- `"moment_detr"` (default): the reference above, exactly, except for its defects: an IoU of 0/0
  (e.g. a reversed window [30, 20] against [0, 10], or one mirroring its ground truth) is NaN there,
  and NaN < t is False, so the reference counts it as a true positive; here it is 0. An empty
  window list scores IoU 0 and AP 0 instead of crashing (`MR-num-empty`). Windows are used as given:
  a reversed window scores 0, and one past the duration is not clamped.
- `"clamped"`: windows are sorted (start <= end) and clamped to [0, duration] before scoring.
`MR-num-reversed` / `MR-num-clamped` count reversed windows and windows outside [0, duration] under
either convention. Predictions without a score (`[start, end]`) are ranked in listed order.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: one dict per query, as in a QVHighlights submission line:
        `{"qid": ..., "pred_relevant_windows": [[start, end, score], ...], "pred_saliency_scores": [...]}`.
        Either field may be left out (then that task is not evaluated), but consistently for all
        queries; `[]` is an empty prediction (no credit). Other keys (query, vid) are ignored.
    references: one dict per query, as in `highlight_{split}_release.jsonl`:
        `{"qid", "duration", "relevant_windows", "relevant_clip_ids", "saliency_scores"}`.
        The qids of predictions and references must be the same set (a duplicate qid is an error).
    max_pred_windows (`int`, default 10): windows per query used for mAP (`None`: all).
    clip_length (`float`, default 2.0): highlight clip length in seconds.
    saliency_pad_value (`float`, default 0.0): value used to pad short saliency predictions.
    lenient_hit1 (`bool`, default False): also report GroundVTS's tie-lenient Hit1.
    convention (`str`, default `"moment_detr"`): `"moment_detr"` or `"clamped"` (see above).
    decimals (`int`, default 2, as the reference output): rounding of percentages; `None` keeps them raw.
Returns:
    A flat dict: `num_queries`; MR keys `MR-{full,short,middle,long}-mAP`, `-mAP@{t}` (t = 0.5, 0.55, ...,
    0.95), `-R1@{t}` and `-R5@{t}` (t = 0.3, 0.35, ..., 0.95), `-mIoU`, `MR-{bucket}-num-queries`,
    `MR-num-empty`, `MR-num-reversed`, `MR-num-clamped`; HD keys `HL-min-{Fair,Good,VeryGood}-mAP` and
    `-Hit1` (and `-Hit1-lenient`), `HL-num-empty`, `HL-num-padded`, `HL-num-truncated`; `convention` and
    `key_conventions`. A bucket without queries gives NaN.
Examples:
    >>> metric = evaluate.load("/abs/path/to/evaluate_metrics/qvhighlights")  # doctest: +SKIP
    >>> metric.compute(predictions=preds_jsonl_rows, references=gt_jsonl_rows)["MR-full-R1@0.5"]  # doctest: +SKIP
"""

_PREDICTION = {
    "qid": datasets.Value("string"),
    "pred_relevant_windows": datasets.Sequence(datasets.Sequence(datasets.Value("float64"))),
    "pred_saliency_scores": datasets.Sequence(datasets.Value("float64")),
}
_REFERENCE = {
    "qid": datasets.Value("string"),
    "duration": datasets.Value("float64"),
    "relevant_windows": datasets.Sequence(datasets.Sequence(datasets.Value("float64"))),
    "relevant_clip_ids": datasets.Sequence(datasets.Value("int64")),
    "saliency_scores": datasets.Sequence(datasets.Sequence(datasets.Value("float64"))),
}
_FEATURES = datasets.Features({"predictions": _PREDICTION, "references": _REFERENCE})

# (name, lower, upper]: ground-truth window length buckets of the reference evaluation.
_BUCKETS = (("full", None, None), ("short", 0.0, 10.0), ("middle", 10.0, 30.0), ("long", 30.0, 150.0))
_MR_THRESHOLDS = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
# R1 and R5 thresholds of GroundVTS's script (moment_detr reports R1 from 0.5).
_RECALL_THRESHOLDS = (0.3, 0.35, 0.4, 0.45) + _MR_THRESHOLDS
_R5_WINDOWS = 5
CONVENTIONS = ("moment_detr", "clamped")
GROUNDVTS = "groundvts_eval_qvhighlights"  # convention name of the keys defined by GroundVTS's script
_HD_LEVELS = (("Fair", 2.0), ("Good", 3.0), ("VeryGood", 4.0))


def _plain(value: Any) -> Any:
    """numpy arrays / torch tensors -> Python lists, so one code path checks everything."""
    return value.tolist() if hasattr(value, "tolist") else value


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _checked_qid(item: dict, where: str) -> str:
    qid = _plain(item.get("qid"))
    if isinstance(qid, bool) or not isinstance(qid, (str, int)) or qid == "":
        raise ValueError(f"{where}: qid {qid!r} must be a non-empty string or an integer")
    return str(qid)


def _checked_numbers(values: Any, where: str, what: str) -> list:
    values = _plain(values)
    if not isinstance(values, (list, tuple)) or not all(_is_number(v) for v in values):
        raise ValueError(f"{where}: {what} {values!r} must be a list of numbers")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"{where}: {what} {list(values)!r} is not finite")
    return [float(v) for v in values]


def _checked_windows(values: Any, where: str, widths: tuple) -> list:
    values = _plain(values)
    if not isinstance(values, (list, tuple)):
        raise ValueError(f"{where}: expected a list of windows, got {values!r}")
    windows = []
    for window in values:
        window = _plain(window)
        if not isinstance(window, (list, tuple)) or len(window) not in widths:
            shape = "[start, end]" if widths == (2,) else "[start, end, score] or [start, end]"
            raise ValueError(f"{where}: window {window!r} must be {shape}")
        windows.append(_checked_numbers(window, where, "window"))
    if len({len(w) for w in windows}) > 1:
        raise ValueError(f"{where}: windows mix [start, end] and [start, end, score]")
    return windows


def _canonical_prediction(item: Any, index: int) -> dict:
    item = _plain(item)
    if not isinstance(item, dict):
        raise ValueError(f"prediction #{index}: expected a dict with qid and predictions, got {type(item).__name__}")
    qid = _checked_qid(item, f"prediction #{index}")
    where = f"prediction for qid {qid}"
    windows = item.get("pred_relevant_windows")
    if windows is not None:
        windows = _checked_windows(windows, where, (2, 3))
        # Unscored windows keep their listed order as the ranking.
        windows = [w if len(w) == 3 else [w[0], w[1], -float(rank)] for rank, w in enumerate(windows)]
    scores = item.get("pred_saliency_scores")
    if scores is not None:
        scores = _checked_numbers(scores, where, "pred_saliency_scores")
    return {"qid": qid, "pred_relevant_windows": windows, "pred_saliency_scores": scores}


def _canonical_reference(item: Any, index: int) -> dict:
    item = _plain(item)
    if not isinstance(item, dict):
        raise ValueError(f"reference #{index}: expected a dict, got {type(item).__name__}")
    qid = _checked_qid(item, f"reference #{index}")
    where = f"reference for qid {qid}"
    duration = _plain(item.get("duration"))
    if not _is_number(duration) or not math.isfinite(duration) or duration <= 0:
        raise ValueError(f"{where}: duration {duration!r} must be a finite number > 0")
    windows = _checked_windows(item.get("relevant_windows") or [], where, (2,))
    clip_ids = _plain(item.get("relevant_clip_ids")) or []
    if not isinstance(clip_ids, (list, tuple)) or not all(
        isinstance(c, numbers.Integral) and not isinstance(c, bool) for c in clip_ids
    ):
        raise ValueError(f"{where}: relevant_clip_ids {clip_ids!r} must be a list of integers")
    rows = [_checked_numbers(r, where, "saliency_scores row") for r in _plain(item.get("saliency_scores")) or []]
    if len(rows) != len(clip_ids):
        raise ValueError(f"{where}: {len(clip_ids)} relevant_clip_ids but {len(rows)} saliency_scores rows")
    if len({len(r) for r in rows}) > 1 or any(len(r) == 0 for r in rows):
        raise ValueError(f"{where}: saliency_scores rows must all have the same (non-zero) number of annotators")
    return {
        "qid": qid,
        "duration": float(duration),
        "relevant_windows": windows,
        "relevant_clip_ids": list(clip_ids),
        "saliency_scores": rows,
    }


def _pair_by_qid(predictions: list, references: list) -> list:
    by_qid = {}
    for pred in predictions:
        if pred["qid"] in by_qid:
            raise ValueError(f"prediction for qid {pred['qid']}: duplicate qid")
        by_qid[pred["qid"]] = pred
    ref_ids = set()
    for ref in references:
        if ref["qid"] in ref_ids:
            raise ValueError(f"reference for qid {ref['qid']}: duplicate qid")
        ref_ids.add(ref["qid"])
    missing = [r["qid"] for r in references if r["qid"] not in by_qid]
    if missing:
        raise ValueError(f"no prediction for qid {missing[0]} ({len(missing)} of {len(references)} queries missing)")
    extra = [q for q in by_qid if q not in ref_ids]
    if extra:
        raise ValueError(f"prediction for qid {extra[0]}: no such reference ({len(extra)} unknown qids)")
    if not references:
        raise ValueError("no queries to evaluate")
    return [(by_qid[r["qid"]], r) for r in references]


def _submitted(pairs: list, field: str) -> bool:
    """True if every prediction has `field`, False if none has; mixed submissions are an error."""
    present = [pred[field] is not None for pred, _ in pairs]
    if any(present) and not all(present):
        qid = pairs[present.index(False)][0]["qid"]
        raise ValueError(f"prediction for qid {qid}: no {field}, while other predictions have them")
    return present[0]


def temporal_iou(a: tuple, b: tuple) -> float:
    """inter / (len_a + len_b - inter), the reference's `compute_temporal_iou_batch_cross`; 0 instead of its
    NaN when the union is 0, and 0 for a reversed window (no intersection).

    Same definition as groundvts.processing.parsing.temporal_iou (a copy: this script loads without groundvts).
    """
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = (a[1] - a[0]) + (b[1] - b[0]) - inter
    return inter / union if union > 0 else 0.0


def hull_iou(a: tuple, b: tuple) -> float:
    """inter / (max end - min start), the reference's `compute_temporal_iou_batch_paired` (R1, R5): equal to
    `temporal_iou` for overlapping windows, but rounded differently, which decides ties at a threshold."""
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    hull = max(a[1], b[1]) - min(a[0], b[0])
    return inter / hull if hull != 0 else 0.0


def _interpolated_ap(tp: np.ndarray, num_gt: int) -> float:
    """VOC-2011 interpolated AP of a ranked list of true/false positives."""
    tp_cum = np.cumsum(tp)
    precision = tp_cum / np.arange(1, len(tp) + 1)
    recall = tp_cum / num_gt
    precision = np.concatenate([[0.0], precision, [0.0]])
    recall = np.concatenate([[0.0], recall, [1.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.nonzero(recall[1:] != recall[:-1])[0] + 1
    return float(np.sum((recall[steps] - recall[steps - 1]) * precision[steps]))


def detection_ap(windows: list, gts: list, thresholds: tuple) -> np.ndarray:
    """AP of one query's scored windows [s, e, score] against its ground truth, per IoU threshold."""
    if not windows:
        return np.zeros(len(thresholds))
    ranked = sorted(windows, key=lambda w: -w[2])  # stable: ties keep the listed order
    ious = np.array([[temporal_iou(w, g) for g in gts] for w in ranked])
    # The reference tries ground truths in `argsort()[::-1]` order: ties go to the later window first.
    gt_order = np.argsort(ious, axis=1, kind="stable")[:, ::-1]
    aps = np.zeros(len(thresholds))
    for t_index, threshold in enumerate(thresholds):
        matched = np.zeros(len(gts), dtype=bool)
        tp = np.zeros(len(ranked))
        for w_index, order in enumerate(gt_order):
            for g_index in order:
                if ious[w_index, g_index] < threshold:
                    break
                if not matched[g_index]:
                    matched[g_index] = True
                    tp[w_index] = 1.0
                    break
        aps[t_index] = _interpolated_ap(tp, len(gts))
    return aps


def saliency_ap(scores: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """AP per annotator column of `positive` (clips x annotators) for one ranking of clips."""
    num_clips = len(scores)
    order = np.argsort(-scores, kind="stable")
    labels = positive[order].astype(float)
    # One precision/recall point per distinct score: the last clip of each tie group.
    ends = np.append(np.nonzero(np.diff(scores[order]))[0], num_clips - 1)
    tp = np.cumsum(labels, axis=0)[ends]
    precision = tp / (ends + 1)[:, None]
    best_after = np.maximum.accumulate(precision[::-1], axis=0)[::-1]
    new_recall = np.diff(np.vstack([np.zeros((1, tp.shape[1])), tp]), axis=0) > 0
    num_pos = labels.sum(axis=0)
    mean_at_recalls = (best_after * new_recall).sum(axis=0) / np.maximum(new_recall.sum(axis=0), 1)
    return np.where(num_pos == 0, 0.0, np.where(num_pos == num_clips, 1.0, mean_at_recalls))


def _percent(value: float, decimals: Optional[int]) -> float:
    value = 100.0 * value
    return float(f"{value:.{decimals}f}") if decimals is not None else float(value)


def _fitted_windows(windows: list, duration: float, fix: bool, counts: dict) -> list:
    """Count reversed windows and windows outside [0, duration]; with `fix`, sort and clamp them."""
    fitted = []
    for start, end, score in windows:
        if start > end:
            counts["MR-num-reversed"] += 1
            if fix:
                start, end = end, start
        if min(start, end) < 0 or max(start, end) > duration:
            counts["MR-num-clamped"] += 1
            if fix:
                start, end = min(max(start, 0.0), duration), min(max(end, 0.0), duration)
        fitted.append((start, end, score))
    return fitted


def _moment_retrieval(pairs: list, max_pred_windows: Optional[int], fix: bool, decimals: Optional[int]) -> dict:
    counts = {"MR-num-empty": 0, "MR-num-reversed": 0, "MR-num-clamped": 0}
    queries = []
    for pred, ref in pairs:
        if not ref["relevant_windows"]:
            raise ValueError(f"reference for qid {ref['qid']}: no relevant_windows")
        gts = [tuple(w) for w in ref["relevant_windows"]]
        windows = _fitted_windows(pred["pred_relevant_windows"], ref["duration"], fix, counts)
        counts["MR-num-empty"] += not windows
        queries.append((windows, gts))
    results = {}
    for bucket, low, high in _BUCKETS:
        selected = []
        for windows, gts in queries:
            kept = gts if low is None else [g for g in gts if low < g[1] - g[0] <= high]
            if kept:
                selected.append((windows, kept))
        results.update(_bucket_metrics(bucket, selected, max_pred_windows, decimals))
    results.update(counts)
    return results


def _first_window_iou(windows: list, gts: list) -> float:
    """R1 / mIoU: the first-listed window's hull IoU with the ground truth it overlaps best (first on ties)."""
    if not windows:
        return 0.0
    best = int(np.argmax([temporal_iou(windows[0], g) for g in gts]))
    return hull_iou(windows[0], gts[best])


def _best_of_five_iou(windows: list, gts: list) -> float:
    """R5 (GroundVTS `compute_mr_r5`): the hull IoU of the best (window, ground truth) pair among the first 5
    listed windows, the first such pair in row order on ties."""
    if not windows:
        return 0.0
    ious = np.array([[temporal_iou(w, g) for g in gts] for w in windows[:_R5_WINDOWS]])
    row, column = np.unravel_index(int(np.argmax(ious)), ious.shape)
    return hull_iou(windows[row], gts[column])


def _bucket_metrics(bucket: str, queries: list, max_pred_windows: Optional[int], decimals: Optional[int]) -> dict:
    nan = float("nan")
    if queries:
        aps = np.mean([detection_ap(w[:max_pred_windows], g, _MR_THRESHOLDS) for w, g in queries], axis=0)
        top1 = np.array([_first_window_iou(w, gts) for w, gts in queries])
        top5 = np.array([_best_of_five_iou(w, gts) for w, gts in queries])
    results = {f"MR-{bucket}-mAP": _percent(float(np.mean(aps)), decimals) if queries else nan}
    for t_index, threshold in enumerate(_MR_THRESHOLDS):
        results[f"MR-{bucket}-mAP@{threshold:g}"] = _percent(aps[t_index], decimals) if queries else nan
    for threshold in _RECALL_THRESHOLDS:
        results[f"MR-{bucket}-R1@{threshold:g}"] = _percent(np.mean(top1 >= threshold), decimals) if queries else nan
    results[f"MR-{bucket}-mIoU"] = _percent(float(np.mean(top1)), decimals) if queries else nan
    for threshold in _RECALL_THRESHOLDS:
        results[f"MR-{bucket}-R5@{threshold:g}"] = _percent(np.mean(top5 >= threshold), decimals) if queries else nan
    results[f"MR-{bucket}-num-queries"] = len(queries)
    return results


def _saliency_matrix(ref: dict, clip_length: float) -> np.ndarray:
    """Clip x annotator scores over the whole video (0 outside relevant_clip_ids)."""
    where = f"reference for qid {ref['qid']}"
    num_clips = int(ref["duration"] / clip_length)
    if num_clips < 1:
        raise ValueError(f"{where}: duration {ref['duration']} is shorter than one {clip_length}-s clip")
    if not ref["saliency_scores"]:
        raise ValueError(f"{where}: no saliency_scores (needed for highlight detection)")
    clip_ids = ref["relevant_clip_ids"]
    bad = [c for c in clip_ids if not 0 <= c < num_clips]
    if bad:
        raise ValueError(f"{where}: relevant_clip_id {bad[0]} is outside the {num_clips} clips of the video")
    if len(set(clip_ids)) != len(clip_ids):
        raise ValueError(f"{where}: duplicate relevant_clip_ids")
    matrix = np.zeros((num_clips, len(ref["saliency_scores"][0])))
    matrix[clip_ids] = np.asarray(ref["saliency_scores"])
    return matrix


def _lenient_hit(scores: np.ndarray, positive: np.ndarray) -> bool:
    """GroundVTS compute_hl_hit1_multiple: the maximum over all scores (not cut to the clip count); a miss if it
    is 0, else a hit if a clip tied at it lies inside the video and is positive."""
    top = scores.max()
    if top == 0:
        return False
    tied = np.nonzero(scores == top)[0]
    return bool(positive[tied[tied < len(positive)]].any())


def _highlight_detection(
    pairs: list, clip_length: float, pad_value: float, lenient: bool, decimals: Optional[int]
) -> dict:
    aps = {name: [] for name, _ in _HD_LEVELS}
    hits = {name: [] for name, _ in _HD_LEVELS}
    lenient_hits = {name: [] for name, _ in _HD_LEVELS}
    counts = {"HL-num-empty": 0, "HL-num-padded": 0, "HL-num-truncated": 0}
    for pred, ref in pairs:
        gt = _saliency_matrix(ref, clip_length)
        num_clips, num_annotators = gt.shape
        raw = np.asarray(pred["pred_saliency_scores"], dtype=float)
        if len(raw) == 0:  # no highlight prediction: no credit (the references raise here)
            counts["HL-num-empty"] += 1
            for name, _ in _HD_LEVELS:
                aps[name].extend([0.0] * num_annotators)
                hits[name].append(False)
                lenient_hits[name].append(False)
            continue
        counts["HL-num-padded"] += len(raw) < num_clips
        counts["HL-num-truncated"] += len(raw) > num_clips
        fitted = np.concatenate([raw[:num_clips], np.full(max(num_clips - len(raw), 0), pad_value)])
        top = int(np.argmax(raw))  # first argmax of the unpadded scores
        for name, level in _HD_LEVELS:
            positive = gt >= level
            aps[name].extend(saliency_ap(fitted, positive))
            hits[name].append(top < num_clips and positive[top].any())
            lenient_hits[name].append(_lenient_hit(raw, positive))
    results = {}
    for name, _ in _HD_LEVELS:
        results[f"HL-min-{name}-mAP"] = _percent(float(np.mean(aps[name])), decimals)
        results[f"HL-min-{name}-Hit1"] = _percent(float(np.mean(hits[name])), decimals)
        if lenient:
            results[f"HL-min-{name}-Hit1-lenient"] = _percent(float(np.mean(lenient_hits[name])), decimals)
    results.update(counts)
    return results


def _key_conventions(results: dict) -> dict:
    """The keys whose definition comes from GroundVTS's eval_qvhighlights.py, not from moment_detr."""
    groundvts = ("-mIoU", "-Hit1-lenient")
    return {key: GROUNDVTS for key in results if key.endswith(groundvts) or "-R5@" in key}


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Qvhighlights(evaluate.Metric):
    """Standard QVHighlights moment retrieval and highlight detection metrics."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=_FEATURES,
            codebase_urls=["https://github.com/jayleicn/moment_detr/tree/main/standalone_eval"],
            reference_urls=["https://arxiv.org/abs/2107.09609"],
        )

    def _canonical_batch(self, predictions: Any, references: Any) -> tuple:
        # Canonicalise before evaluate's own encoding so bad input fails here, naming the item.
        if predictions is None or references is None:
            raise ValueError("both predictions and references are required")
        predictions, references = list(_plain(predictions)), list(_plain(references))
        if len(predictions) != len(references):
            raise ValueError(f"{len(predictions)} predictions but {len(references)} references in this batch")
        offset = getattr(self, "_num_seen", 0)  # global item index, for error messages
        preds = [_canonical_prediction(p, offset + i) for i, p in enumerate(predictions)]
        refs = [_canonical_reference(r, offset + i) for i, r in enumerate(references)]
        self._num_seen = offset + len(preds)
        return preds, refs

    def add_batch(self, *, predictions=None, references=None, **kwargs) -> None:
        """Check and add a batch of predictions and references (see the inputs description)."""
        predictions, references = self._canonical_batch(predictions, references)
        super().add_batch(predictions=predictions, references=references, **kwargs)

    def add(self, *, prediction=None, reference=None, **kwargs) -> None:
        """Check and add one prediction and its reference (see the inputs description)."""
        preds, refs = self._canonical_batch([prediction], [reference])
        super().add(prediction=preds[0], reference=refs[0], **kwargs)

    def _compute(
        self,
        predictions: list,
        references: list,
        max_pred_windows: Optional[int] = 10,
        clip_length: float = 2.0,
        saliency_pad_value: float = 0.0,
        lenient_hit1: bool = False,
        convention: str = "moment_detr",
        decimals: Optional[int] = 2,
    ) -> dict:
        self._num_seen = 0
        if max_pred_windows is not None and (not isinstance(max_pred_windows, numbers.Integral) or max_pred_windows < 1):
            raise ValueError(f"max_pred_windows: {max_pred_windows!r} is not a positive integer")
        if not _is_number(clip_length) or not clip_length > 0:
            raise ValueError(f"clip_length: {clip_length!r} must be > 0")
        if convention not in CONVENTIONS:
            raise ValueError(f"convention: {convention!r} is not one of {', '.join(map(repr, CONVENTIONS))}")
        pairs = _pair_by_qid(predictions, references)
        do_mr = _submitted(pairs, "pred_relevant_windows")
        do_hd = _submitted(pairs, "pred_saliency_scores")
        if not (do_mr or do_hd):
            raise ValueError("predictions hold neither pred_relevant_windows nor pred_saliency_scores")
        results = {"num_queries": len(pairs)}
        if do_mr:
            results.update(_moment_retrieval(pairs, max_pred_windows, convention == "clamped", decimals))
        if do_hd:
            results.update(_highlight_detection(pairs, clip_length, saliency_pad_value, lenient_hit1, decimals))
        results["convention"] = convention
        results["key_conventions"] = _key_conventions(results)
        return results
