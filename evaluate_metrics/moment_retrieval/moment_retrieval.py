"""Moment retrieval (video temporal grounding): R@k at IoU thresholds and mIoU.

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
@inproceedings{gao2017tall,
  title     = {TALL: Temporal Activity Localization via Language Query},
  author    = {Gao, Jiyang and Sun, Chen and Yang, Zhenheng and Nevatia, Ram},
  booktitle = {ICCV},
  year      = {2017}
}
@inproceedings{krishna2017dense,
  title     = {Dense-Captioning Events in Videos},
  author    = {Krishna, Ranjay and Hata, Kenji and Ren, Frederic and Fei-Fei, Li and Niebles, Juan Carlos},
  booktitle = {ICCV},
  year      = {2017}
}
"""

_DESCRIPTION = """\
Moment retrieval metrics for single-query temporal grounding benchmarks (Charades-STA,
ActivityNet Captions): the recall of the top-k predicted windows at temporal-IoU thresholds
and the mean IoU of the top-1 window.

Exact definition: the official GroundVTS `eval/eval_auto.py` (the same as VideoMind's
`videomind/eval/eval_auto.py`), which scores with nncore `ops/temporal.py` in float32:

- IoU(p, g) = inter / (len_p + len_g - inter), inter = max(0, min(p_end, g_end) - max(p_start, g_start)),
  computed in float32 in that order, as nncore does on float32 tensors; a non-finite IoU (0/0) is 0.
  A reversed window (start > end) has inter 0, so it scores 0.
- Several ground-truth windows per query: a predicted window scores its best IoU over them.
- Rk@t = 100 * mean over queries of [max IoU of the first k predicted windows >= t], compared in
  float32 as the reference compares a float32 tensor with a Python float (so a tie at the threshold is
  decided exactly as the reference decides it). mIoU = 100 * mean over queries of the top-1 IoU.
- A query whose prediction could not be parsed (empty window list or None) scores IoU 0 and
  stays in the denominator (as VideoMind, lmms-eval and GroundVTS do; TRACE drops such queries,
  which is optimistic). The number of such queries is reported as `num_unparsed`.

Conventions (`convention`, reported in the output as `convention`):
- `"eval_auto"` (default): the reference above, exactly. Neither side is clamped or sorted: the
  reference windows are used as the annotation file gives them (Charades-STA test has 562 ends past
  the Charades csv length).
- `"lighthouse"`: as `"eval_auto"`, but reference windows are clipped to [0, duration], as
  lighthouse's Charades-STA release (`charades_test_release.jsonl`) stores them.
- `"clamped"`: windows are sorted (start <= end) and both predictions and references are clamped to
  [0, duration]; a perfect but clamped prediction then still scores 100.
`num_reversed` / `num_clamped` (and `num_reference_*`) count the windows that were reversed or that
reach outside [0, duration], whether or not the convention fixes them.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: one entry per query. Either a list of ranked windows `[[start, end], ...]`
        (best first), a single window `[start, end]`, `None`/`[]` for an unparsed answer, or a
        dict `{"qid": ..., "windows": <one of those>}` (other keys are ignored).
    references: one entry per query. Either a list of ground-truth windows `[[start, end], ...]`
        (or a single `[start, end]`), or a dict
        `{"qid": ..., "windows": [[start, end], ...], "duration": seconds}` (other keys ignored).
        When both sides carry qids, queries are matched by qid; otherwise by position.
    iou_thresholds (`list[float]`, default `[0.3, 0.5, 0.7]`): IoU thresholds in (0, 1].
    ks (`list[int]`, default `[1]`): ranks k for Rk@t.
    convention (`str`, default `"eval_auto"`): `"eval_auto"`, `"lighthouse"` or `"clamped"` (see above).
    decimals (`int`, optional): round the percentages to this many decimals.
Returns:
    `Rk@t` for every k and t (percent), `mIoU` (percent), the counts `num_queries`,
    `num_unparsed`, `num_reversed`, `num_clamped`, `num_reference_reversed`, `num_reference_clamped`,
    and `convention` (the convention name).
Examples:
    >>> metric = evaluate.load("/abs/path/to/evaluate_metrics/moment_retrieval")  # doctest: +SKIP
    >>> metric.compute(predictions=[[2.0, 8.0], None], references=[[[0.0, 10.0]], [[5.0, 9.0]]])  # doctest: +SKIP
    {'R1@0.3': 50.0, 'R1@0.5': 50.0, 'R1@0.7': 0.0, 'mIoU': 30.0, 'num_queries': 2, 'num_unparsed': 1, ..., 'convention': 'eval_auto'}
"""

_WINDOWS = datasets.Sequence(datasets.Sequence(datasets.Value("float64")))
_FEATURES = datasets.Features(
    {
        "predictions": {"qid": datasets.Value("string"), "windows": _WINDOWS},
        "references": {
            "qid": datasets.Value("string"),
            "windows": _WINDOWS,
            "duration": datasets.Value("float64"),
        },
    }
)


def _plain(value: Any) -> Any:
    """numpy arrays / torch tensors -> Python lists, so one code path checks everything."""
    return value.tolist() if hasattr(value, "tolist") else value


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _describe(kind: str, index: int, qid: Optional[str]) -> str:
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


def _checked_windows(value: Any, where: str) -> list:
    """Accept None, [], one [s, e] window or a list of windows; return a list of windows."""
    value = _plain(value)
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{where}: expected a list of [start, end] windows, got {value!r}")
    if value and all(_is_number(v) for v in value):
        value = [value]  # a single flat window
    return [_checked_window(w, where) for w in value]


def _checked_qid(value: Any, where: str) -> str:
    """qids are stored as strings; "" stands for "no qid" (evaluate rejects None in string features)."""
    value = _plain(value)
    if value is None:
        return ""
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return str(value)
    raise ValueError(f"{where}: qid {value!r} must be a string or an integer")


def _checked_duration(value: Any, where: str) -> Optional[float]:
    value = _plain(value)
    if value is None:
        return None
    if not _is_number(value) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{where}: duration {value!r} must be a finite number > 0")
    return float(value)


def _canonical_prediction(item: Any, index: int) -> dict:
    where = _describe("prediction", index, None)
    if isinstance(item, dict):
        qid = _checked_qid(item.get("qid"), where)
        where = _describe("prediction", index, qid)
        if "windows" not in item:
            raise ValueError(f"{where}: missing key 'windows' (use None or [] for an unparsed answer)")
        return {"qid": qid, "windows": _checked_windows(item["windows"], where)}
    return {"qid": "", "windows": _checked_windows(item, where)}


def _canonical_reference(item: Any, index: int) -> dict:
    where = _describe("reference", index, None)
    if isinstance(item, dict):
        qid = _checked_qid(item.get("qid"), where)
        where = _describe("reference", index, qid)
        if "windows" not in item:
            raise ValueError(f"{where}: missing key 'windows'")
        windows = _checked_windows(item["windows"], where)
        duration = _checked_duration(item.get("duration"), where)
    else:
        qid, windows, duration = "", _checked_windows(item, where), None
    if not windows:
        raise ValueError(f"{where}: no ground-truth windows")
    return {"qid": qid, "windows": windows, "duration": duration}


def _align(predictions: list, references: list) -> list:
    """Pair predictions with references: by qid when both sides have qids, else by position."""
    pred_ids = [p["qid"] for p in predictions]
    ref_ids = [r["qid"] for r in references]
    for kind, ids in (("prediction", pred_ids), ("reference", ref_ids)):
        if "" in ids and any(ids):
            raise ValueError(f"{kind} #{ids.index('')} has no qid while other {kind}s have one")
    if "" in pred_ids or "" in ref_ids or not pred_ids:
        if len(predictions) != len(references):
            raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
        return list(zip(predictions, references))
    by_qid = {}
    for pred in predictions:
        if pred["qid"] in by_qid:
            raise ValueError(f"prediction for qid {pred['qid']}: duplicate qid")
        by_qid[pred["qid"]] = pred
    seen = set()
    for qid in ref_ids:
        if qid in seen:
            raise ValueError(f"reference for qid {qid}: duplicate qid")
        seen.add(qid)
    missing = [q for q in ref_ids if q not in by_qid]
    if missing:
        raise ValueError(f"no prediction for qid {missing[0]} ({len(missing)} of {len(ref_ids)} queries missing)")
    extra = [q for q in pred_ids if q not in seen]
    if extra:
        raise ValueError(f"prediction for qid {extra[0]}: no such reference ({len(extra)} unknown qids)")
    return [(by_qid[r["qid"]], r) for r in references]


# convention -> (sort and clamp predictions, clamp references) to [0, duration].
CONVENTIONS = {"eval_auto": (False, False), "lighthouse": (False, True), "clamped": (True, True)}


def _fitted(windows: list, duration: Optional[float], fix: bool, counts: dict, prefix: str) -> list:
    """Count reversed windows and windows outside [0, duration]; with `fix`, sort and clamp them."""
    fitted = []
    for start, end in windows:
        if start > end:
            counts[f"num_{prefix}reversed"] += 1
            if fix:
                start, end = end, start
        if duration is not None and (min(start, end) < 0 or max(start, end) > duration):
            counts[f"num_{prefix}clamped"] += 1
            if fix:
                start, end = min(max(start, 0.0), duration), min(max(end, 0.0), duration)
        fitted.append((start, end))
    return fitted


def iou_matrix(windows: list, gts: list) -> np.ndarray:
    """IoU of every predicted window (rows) with every ground-truth window (columns), in float32 and in the
    operation order of nncore `temporal_iou` (the reference evaluator's); non-finite values are 0."""
    pred = np.asarray(windows, dtype=np.float32).reshape(-1, 2)
    gt = np.asarray(gts, dtype=np.float32).reshape(-1, 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        inter = np.maximum(np.minimum(pred[:, None, 1], gt[:, 1]) - np.maximum(pred[:, None, 0], gt[:, 0]), np.float32(0))
        iou = inter / ((pred[:, 1] - pred[:, 0])[:, None] + (gt[:, 1] - gt[:, 0]) - inter)
    return np.where(np.isfinite(iou), iou, np.float32(0))


def _check_options(iou_thresholds: list, ks: list) -> None:
    for t in iou_thresholds:
        if not _is_number(t) or not 0 < t <= 1:
            raise ValueError(f"iou_thresholds: {t!r} is not in (0, 1]")
    for k in ks:
        if not isinstance(k, numbers.Integral) or isinstance(k, bool) or k < 1:
            raise ValueError(f"ks: {k!r} is not a positive integer")
    if not iou_thresholds or not ks:
        raise ValueError("iou_thresholds and ks must not be empty")


def _percent(value: float, decimals: Optional[int]) -> float:
    value = 100.0 * value
    return float(f"{value:.{decimals}f}") if decimals is not None else float(value)


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class MomentRetrieval(evaluate.Metric):
    """R@k at IoU thresholds and mIoU for video moment retrieval."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=_FEATURES,
            codebase_urls=["https://github.com/yeliudev/nncore", "https://github.com/yeliudev/VideoMind"],
            reference_urls=["https://arxiv.org/abs/1705.02101", "https://arxiv.org/abs/1705.00754"],
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
        iou_thresholds: tuple = (0.3, 0.5, 0.7),
        ks: tuple = (1,),
        convention: str = "eval_auto",
        decimals: Optional[int] = None,
    ) -> dict:
        self._num_seen = 0
        iou_thresholds, ks = list(iou_thresholds), list(ks)
        _check_options(iou_thresholds, ks)
        if convention not in CONVENTIONS:
            raise ValueError(f"convention: {convention!r} is not one of {', '.join(map(repr, CONVENTIONS))}")
        fix_predictions, clamp_references = CONVENTIONS[convention]
        counts = dict.fromkeys(
            ["num_unparsed", "num_reversed", "num_clamped", "num_reference_reversed", "num_reference_clamped"], 0
        )
        ranked_ious = []  # per query: float32 best IoU of each ranked predicted window
        for pred, ref in _align(predictions, references):
            duration = ref["duration"]
            gts = _fitted(ref["windows"], duration, fix_predictions, counts, "reference_")
            if clamp_references and duration is not None:
                gts = [(min(max(s, 0.0), duration), min(max(e, 0.0), duration)) for s, e in gts]
            windows = _fitted(pred["windows"], duration, fix_predictions, counts, "")
            if not windows:
                counts["num_unparsed"] += 1
            ranked_ious.append(iou_matrix(windows, gts).max(axis=1) if windows else np.zeros(0, np.float32))
        results = self._summarise(ranked_ious, iou_thresholds, ks, counts, decimals)
        results["convention"] = convention
        return results

    @staticmethod
    def _summarise(ranked_ious: list, iou_thresholds: list, ks: list, counts: dict, decimals: Optional[int]) -> dict:
        num = len(ranked_ious)
        if num == 0:
            raise ValueError("no queries to evaluate")
        results = {}
        for k in ks:
            best_at_k = [ious[:k].max() if len(ious) else np.float32(0) for ious in ranked_ious]
            for t in iou_thresholds:
                # float32 against float32(t): the reference compares a float32 tensor with a Python float.
                hits = sum(bool(v >= np.float32(t)) for v in best_at_k)
                results[f"R{k}@{t:g}"] = _percent(hits / num, decimals)
        top1 = sum(float(ious[0]) if len(ious) else 0.0 for ious in ranked_ious)
        results["mIoU"] = _percent(top1 / num, decimals)
        results["num_queries"] = num
        results.update(counts)
        return results
