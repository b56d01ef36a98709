"""NExT-GQA grounded video QA: mIoU, mIoP, IoU@t, IoP@t, Acc@QA and Acc@GQA.

Self-contained `evaluate` metric (loaded standalone by `evaluate.load` and copied to a Hub Space):
it imports no other metric module and no GroundVTS code.
"""

import math
import numbers
from typing import Any, Optional

import datasets
import evaluate


_CITATION = """\
@inproceedings{xiao2024can,
  title     = {Can I Trust Your Answer? Visually Grounded Video Question Answering},
  author    = {Xiao, Junbin and Yao, Angela and Li, Yicong and Chua, Tat-Seng},
  booktitle = {CVPR},
  year      = {2024}
}
"""

_DESCRIPTION = """\
NExT-GQA grounding and grounded-QA metrics, as defined by the official evaluation
(doc-doc/NExT-GQA `code/TempGQA/eval_ground.py`, `get_tIoU` and `eval_ground`). One predicted
window per question.

- inter = min(p_end, g_end) - max(p_start, g_start) (negative when apart); IoU = inter / (max end -
  min start) (the official "hull" union; 0 when it is 0); IoP = inter / (p_end - p_start)
  (intersection over the **prediction** length; 0 unless p_end > p_start). Computed in that order,
  so a tie at a threshold is decided as the official script decides it.
- A question may have several ground-truth segments: the maximum IoU and the maximum IoP are
  taken over them **independently** (they may come from different segments), starting from 0, so
  negative values count as 0.
- mIoU / mIoP = 100 * mean over questions; IoU@t / IoP@t = 100 * mean[max IoU >= t] /
  [max IoP >= t] (t = 0.3, 0.5 by default).
- Acc@QA = 100 * mean[predicted answer == ground-truth answer]. The official script compares
  **option indices**; pass the index (0-4) on both sides to reproduce it. Text answers are accepted
  too and compared after stripping and case-folding.
- Acc@GQA = 100 * mean[answer correct and max IoP >= 0.5].
- Zero-length prediction (start == end): `zero_length_iop="official"` (default) follows the
  official script: IoU 0 and IoP 1 if the point lies inside (bounds included) some ground-truth
  segment, else 0; `"zero"` gives IoP 0, as nncore/VideoMind do (their IoP divides by a zero
  length, a non-finite value they map to 0). `num_zero_length` reports how many there were.
- An unparsed prediction (window None) scores IoU 0 and IoP 0 and stays in the denominator
  (`num_unparsed`). The official script skips questions without a prediction, which is
  optimistic; here every reference needs a prediction row (send window None when the model gave
  no usable answer), and a qid without one is an error.

Conventions (`convention`, reported in the output as `convention`):
- `"eval_ground"` (default): the official script, exactly: windows are used as given, with or
  without durations. A reversed window (start > end) scores 0, as there.
- `"clamped"`: windows are sorted (start <= end); with a duration, predictions and reference
  segments are clamped to [0, duration]. A prediction entirely outside the video (no part of it
  inside [0, duration]) scores IoU 0 and IoP 0 (`num_outside`): clamping would turn it into a
  zero-length point on the boundary, which the official zero-length rule scores IoP 1 whenever the
  truth touches that boundary.
`num_reversed` / `num_clamped` (and `num_reference_*`) count reversed windows and windows reaching
outside [0, duration] under either convention.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: one entry per question: a dict `{"qid": ..., "window": [start, end] or None,
        "answer": option index or text}` (`answer` may be omitted/None when only grounding is evaluated;
        other keys are ignored), or just the window (`[start, end]` or None), matched by position.
    references: one dict per question: `{"qid": ..., "windows": [[start, end], ...],
        "answer": ..., "duration": seconds (optional)}`. A NExT-GQA qid is per video, so use a
        key such as `f"{video_id}_{qid}"`. When both sides carry qids, they are matched by qid.
    iou_thresholds (`list[float]`, default `[0.3, 0.5]`), iop_thresholds (`list[float]`, default `[0.3, 0.5]`).
    gqa_iop_threshold (`float`, default 0.5): IoP needed for Acc@GQA.
    zero_length_iop (`str`, default `"official"`): `"official"` or `"zero"`, see above.
    convention (`str`, default `"eval_ground"`): `"eval_ground"` or `"clamped"`, see above.
    decimals (`int`, optional): round the percentages.
Returns:
    `mIoU`, `mIoP`, `IoU@t`, `IoP@t`, and, when predicted answers are given, `Acc@QA` and
    `Acc@GQA` (percent); counts `num_queries`, `num_unparsed`, `num_zero_length`, `num_outside`,
    `num_reversed`, `num_clamped`, `num_reference_reversed`, `num_reference_clamped` and, with answers,
    `num_wrong_answers` (wrong or missing); and `convention`.
Examples:
    >>> metric = evaluate.load("/abs/path/to/evaluate_metrics/nextgqa")  # doctest: +SKIP
    >>> metric.compute(predictions=[{"qid": "v_1", "window": [2, 6], "answer": "dance"}],
    ...                references=[{"qid": "v_1", "windows": [[0, 4]], "answer": "dance"}])  # doctest: +SKIP
"""

_FEATURES = datasets.Features(
    {
        "predictions": {
            "qid": datasets.Value("string"),
            "window": datasets.Sequence(datasets.Value("float64")),
            "answer": datasets.Value("string"),
        },
        "references": {
            "qid": datasets.Value("string"),
            "windows": datasets.Sequence(datasets.Sequence(datasets.Value("float64"))),
            "answer": datasets.Value("string"),
            "duration": datasets.Value("float64"),
        },
    }
)
# evaluate rejects None in string features, so "" stands for "no qid" / "no answer".
_NONE = ""


def _plain(value: Any) -> Any:
    """numpy arrays / torch tensors -> Python lists, so one code path checks everything."""
    return value.tolist() if hasattr(value, "tolist") else value


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _describe(kind: str, index: int, qid: str) -> str:
    return f"{kind} for qid {qid}" if qid else f"{kind} #{index}"


def _checked_window(window: Any, where: str) -> list:
    window = _plain(window)
    if not isinstance(window, (list, tuple)) or len(window) != 2:
        raise ValueError(f"{where}: window {window!r} must be [start, end]")
    if not all(_is_number(v) for v in window):
        raise ValueError(f"{where}: window {list(window)!r} must hold two numbers")
    if not all(math.isfinite(v) for v in window):
        raise ValueError(f"{where}: window {list(window)!r} is not finite")
    return [float(v) for v in window]


def _checked_text(value: Any, where: str, what: str) -> str:
    value = _plain(value)
    if value is None:
        return _NONE
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return str(value)
    raise ValueError(f"{where}: {what} {value!r} must be a string or an integer")


def _prediction_window(value: Any, where: str) -> list:
    """None/[] -> [] (unparsed); [s, e] or [[s, e]] -> [s, e]."""
    value = _plain(value)
    if value is None or (isinstance(value, (list, tuple)) and len(value) == 0):
        return []
    if isinstance(value, (list, tuple)) and len(value) == 1:
        value = _plain(value[0])  # a one-window list
    return _checked_window(value, where)


def _canonical_prediction(item: Any, index: int) -> dict:
    where = _describe("prediction", index, _NONE)
    if not isinstance(item, dict):
        return {"qid": _NONE, "window": _prediction_window(item, where), "answer": _NONE}
    qid = _checked_text(item.get("qid"), where, "qid")
    where = _describe("prediction", index, qid)
    if "window" not in item:
        raise ValueError(f"{where}: missing key 'window' (use None for an unparsed answer)")
    return {
        "qid": qid,
        "window": _prediction_window(item["window"], where),
        "answer": _checked_text(item.get("answer"), where, "answer"),
    }


def _canonical_reference(item: Any, index: int) -> dict:
    where = _describe("reference", index, _NONE)
    if not isinstance(item, dict):
        raise ValueError(f"{where}: expected a dict with 'windows' (and 'qid', 'answer'), got {type(item).__name__}")
    qid = _checked_text(item.get("qid"), where, "qid")
    where = _describe("reference", index, qid)
    windows = _plain(item.get("windows"))
    if not isinstance(windows, (list, tuple)) or not windows:
        raise ValueError(f"{where}: 'windows' must be a non-empty list of [start, end] segments")
    duration = _plain(item.get("duration"))
    if duration is not None and (not _is_number(duration) or not math.isfinite(duration) or duration <= 0):
        raise ValueError(f"{where}: duration {duration!r} must be a finite number > 0")
    return {
        "qid": qid,
        "windows": [_checked_window(w, where) for w in windows],
        "answer": _checked_text(item.get("answer"), where, "answer"),
        "duration": None if duration is None else float(duration),
    }


def _pair(predictions: list, references: list) -> list:
    """Pair by qid when both sides have qids, else by position."""
    pred_ids = [p["qid"] for p in predictions]
    ref_ids = [r["qid"] for r in references]
    for kind, ids in (("prediction", pred_ids), ("reference", ref_ids)):
        if _NONE in ids and any(ids):
            raise ValueError(f"{kind} #{ids.index(_NONE)} has no qid while other {kind}s have one")
    if _NONE in pred_ids or _NONE in ref_ids or not pred_ids:
        if len(predictions) != len(references):
            raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
        return list(zip(predictions, references))
    by_qid = {}
    for pred in predictions:
        if pred["qid"] in by_qid:
            raise ValueError(f"prediction for qid {pred['qid']}: duplicate qid")
        by_qid[pred["qid"]] = pred
    if len(set(ref_ids)) != len(ref_ids):
        duplicate = next(q for q in ref_ids if ref_ids.count(q) > 1)
        raise ValueError(f"reference for qid {duplicate}: duplicate qid")
    absent = [q for q in ref_ids if q not in by_qid]
    if absent:
        raise ValueError(
            f"no prediction for qid {absent[0]} ({len(absent)} of {len(ref_ids)} questions missing; "
            "send window None for a question the model did not answer)"
        )
    known = set(ref_ids)
    extra = [q for q in pred_ids if q not in known]
    if extra:
        raise ValueError(f"prediction for qid {extra[0]}: no such reference ({len(extra)} unknown qids)")
    return [(by_qid[r["qid"]], r) for r in references]


CONVENTIONS = ("eval_ground", "clamped")


def _fitted_window(window: list, duration: Optional[float], fix: bool, counts: dict, prefix: str) -> tuple:
    """Count a reversed window and one reaching outside [0, duration]; with `fix`, sort and clamp it."""
    start, end = window
    if start > end:
        counts[f"num_{prefix}reversed"] += 1
        if fix:
            start, end = end, start
    if duration is not None and (min(start, end) < 0 or max(start, end) > duration):
        counts[f"num_{prefix}clamped"] += 1
        if fix:
            start, end = min(max(start, 0.0), duration), min(max(end, 0.0), duration)
    return start, end


def _outside(window: list, duration: Optional[float]) -> bool:
    """No part of the (sorted) window lies inside [0, duration]: a positive-length window only touching the
    video's ends, or a point outside it."""
    start, end = sorted(window)
    if duration is None:
        return False
    if start == end:
        return start < 0 or start > duration
    return end <= 0 or start >= duration


def iou_iop(pred: tuple, gt: tuple, zero_length_iop: str = "official") -> tuple:
    """(IoU, IoP) of a predicted window against one ground-truth segment, as the official `get_tIoU` computes
    them (negative when apart: the maxima over segments start from 0)."""
    if pred[0] == pred[1]:
        inside = gt[0] <= pred[0] <= gt[1]
        return 0.0, 1.0 if (zero_length_iop == "official" and inside) else 0.0
    inter = min(gt[1], pred[1]) - max(gt[0], pred[0])
    hull = max(gt[1], pred[1]) - min(gt[0], pred[0])
    iou = inter / hull if hull > 0 else 0.0
    iop = inter / (pred[1] - pred[0]) if pred[1] > pred[0] else 0.0
    return iou, iop


def _same_answer(predicted: str, truth: str) -> bool:
    return predicted != _NONE and predicted.strip().casefold() == truth.strip().casefold()


def _check_options(thresholds: list, zero_length_iop: str, convention: str) -> None:
    for t in thresholds:
        if not _is_number(t) or not 0 < t <= 1:
            raise ValueError(f"threshold {t!r} is not in (0, 1]")
    if zero_length_iop not in ("official", "zero"):
        raise ValueError(f"zero_length_iop: {zero_length_iop!r} is not 'official' or 'zero'")
    if convention not in CONVENTIONS:
        raise ValueError(f"convention: {convention!r} is not one of {', '.join(map(repr, CONVENTIONS))}")


def _percent(value: float, decimals: Optional[int]) -> float:
    value = 100.0 * value
    return float(f"{value:.{decimals}f}") if decimals is not None else float(value)


def _grounding(pairs: list, zero_length_iop: str, fix: bool, counts: dict) -> tuple:
    """Per question: the max IoU and the max IoP over its ground-truth segments, from 0 (0 if unparsed)."""
    ious, iops = [], []
    for pred, ref in pairs:
        duration = ref["duration"]
        gts = [_fitted_window(w, duration, fix, counts, "reference_") for w in ref["windows"]]
        if not pred["window"]:
            counts["num_unparsed"] += 1
            ious.append(0.0)
            iops.append(0.0)
            continue
        window = _fitted_window(pred["window"], duration, fix, counts, "")
        if fix and _outside(pred["window"], duration):
            counts["num_outside"] += 1
            ious.append(0.0)
            iops.append(0.0)
            continue
        counts["num_zero_length"] += window[0] == window[1]
        scores = [iou_iop(window, g, zero_length_iop) for g in gts]
        ious.append(max([0.0] + [s[0] for s in scores]))
        iops.append(max([0.0] + [s[1] for s in scores]))
    return ious, iops


def _grounding_summary(
    ious: list, iops: list, iou_thresholds: list, iop_thresholds: list, decimals: Optional[int]
) -> dict:
    num = len(ious)
    results = {"mIoU": _percent(sum(ious) / num, decimals), "mIoP": _percent(sum(iops) / num, decimals)}
    for t in iou_thresholds:
        results[f"IoU@{t:g}"] = _percent(sum(v >= t for v in ious) / num, decimals)
    for t in iop_thresholds:
        results[f"IoP@{t:g}"] = _percent(sum(v >= t for v in iops) / num, decimals)
    return results


def _answers_correct(pairs: list) -> Optional[list]:
    """Per question: is the predicted answer right? None when no prediction carries an answer."""
    if all(pred["answer"] == _NONE for pred, _ in pairs):
        return None
    correct = []
    for pred, ref in pairs:
        if ref["answer"] == _NONE:
            raise ValueError(f"reference for qid {ref['qid']}: no answer, but predictions have answers")
        correct.append(_same_answer(pred["answer"], ref["answer"]))
    return correct


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Nextgqa(evaluate.Metric):
    """NExT-GQA grounding (IoU/IoP) and grounded QA accuracy."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=_FEATURES,
            codebase_urls=["https://github.com/doc-doc/NExT-GQA"],
            reference_urls=["https://arxiv.org/abs/2309.01327"],
        )

    def _canonical_batch(self, predictions: Any, references: Any) -> tuple:
        # Canonicalise before evaluate's own encoding so bad input fails here, naming the item.
        if predictions is None or references is None:
            raise ValueError("both predictions and references are required")
        predictions, references = list(_plain(predictions)), list(_plain(references))
        offset = getattr(self, "_num_seen", 0)  # global item index, for error messages
        preds = [_canonical_prediction(p, offset + i) for i, p in enumerate(predictions)]
        refs = [_canonical_reference(r, offset + i) for i, r in enumerate(references)]
        if len(preds) != len(refs):
            # evaluate stores predictions and references as rows of one table, so a question
            # without a prediction must still be sent: with a qid and window None.
            raise ValueError(f"{len(preds)} predictions but {len(refs)} references in this batch")
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
        iou_thresholds: tuple = (0.3, 0.5),
        iop_thresholds: tuple = (0.3, 0.5),
        gqa_iop_threshold: float = 0.5,
        zero_length_iop: str = "official",
        convention: str = "eval_ground",
        decimals: Optional[int] = None,
    ) -> dict:
        self._num_seen = 0
        iou_thresholds, iop_thresholds = list(iou_thresholds), list(iop_thresholds)
        _check_options(iou_thresholds + iop_thresholds + [gqa_iop_threshold], zero_length_iop, convention)
        pairs = _pair(predictions, references)
        if not pairs:
            raise ValueError("no questions to evaluate")
        counts = dict.fromkeys(
            ["num_unparsed", "num_zero_length", "num_outside", "num_reversed", "num_clamped"]
            + ["num_reference_reversed", "num_reference_clamped"],
            0,
        )
        ious, iops = _grounding(pairs, zero_length_iop, convention == "clamped", counts)
        results = _grounding_summary(ious, iops, iou_thresholds, iop_thresholds, decimals)
        correct = _answers_correct(pairs)
        if correct is not None:
            grounded = [c and v >= gqa_iop_threshold for c, v in zip(correct, iops)]
            results["Acc@QA"] = _percent(sum(correct) / len(pairs), decimals)
            results["Acc@GQA"] = _percent(sum(grounded) / len(pairs), decimals)
            counts["num_wrong_answers"] = len(pairs) - sum(correct)
        results["num_queries"] = len(pairs)
        results.update(counts)
        results["convention"] = convention
        return results
