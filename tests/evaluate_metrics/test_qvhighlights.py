"""qvhighlights: the moment_detr golden file, hand-computed MR/HD cases, the reference's defects, bad input."""

import json
import sys

import numpy as np
import pytest
from sklearn.metrics import precision_recall_curve


@pytest.fixture
def metric(load_metric):
    return load_metric("qvhighlights")


def _read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _flatten_reference_metrics(raw: dict) -> dict:
    """moment_detr's nested metrics file -> our flat keys."""
    flat = dict(raw["brief"])
    for bucket in ("full", "short", "middle", "long"):
        for threshold, value in raw[bucket]["MR-mAP"].items():
            flat[f"MR-{bucket}-mAP" if threshold == "average" else f"MR-{bucket}-mAP@{threshold}"] = value
        for threshold, value in raw[bucket]["MR-R1"].items():
            flat[f"MR-{bucket}-R1@{threshold}"] = value
    return flat


@pytest.fixture(scope="module")
def golden(shared_data):
    folder = shared_data / "qvhighlights"
    predictions = _read_jsonl(folder / "sample_val_preds.jsonl")
    references = _read_jsonl(folder / "highlight_val_release.jsonl")
    expected = _flatten_reference_metrics(json.loads((folder / "sample_val_preds_metrics_raw.json").read_text()))
    return predictions, references, expected


def test_reproduces_moment_detr_sample_metrics(load_metric, golden):
    predictions, references, expected = golden
    metric = load_metric("qvhighlights", keep_in_memory=False)  # evaluate's default, file-backed path
    result = metric.compute(predictions=predictions, references=references)  # decimals=2, as the reference
    assert len(expected) == 90
    for key, value in expected.items():
        assert result[key] == pytest.approx(value, abs=1e-4), key
    assert result["num_queries"] == 1550
    assert (result["MR-short-num-queries"], result["MR-middle-num-queries"], result["MR-long-num-queries"]) == (429, 957, 574)
    # 13 predictions have one clip fewer than int(duration / 2): zero-padded, as the reference does.
    assert result["HL-num-padded"] == 13


def test_unrounded_values_round_to_the_reference(load_metric, golden):
    predictions, references, expected = golden
    metric = load_metric("qvhighlights", keep_in_memory=False)
    result = metric.compute(predictions=predictions, references=references, decimals=None)
    for key, value in expected.items():
        assert abs(result[key] - value) <= 0.005 + 1e-9, key
    assert result["MR-full-R1@0.5"] == pytest.approx(100 * 836 / 1550)


def _query(qid=1, windows=None, saliency=None, gt_windows=((0, 10),), duration=150, clip_ids=None, scores=None):
    pred = {"qid": qid}
    if windows is not None:
        pred["pred_relevant_windows"] = [list(w) for w in windows]
    if saliency is not None:
        pred["pred_saliency_scores"] = list(saliency)
    ref = {
        "qid": qid,
        "duration": duration,
        "relevant_windows": [list(w) for w in gt_windows],
        "relevant_clip_ids": list(clip_ids or []),
        "saliency_scores": [list(s) for s in scores or []],
    }
    return pred, ref


def _run(metric, *queries, **kwargs):
    predictions, references = zip(*queries)
    return metric.compute(predictions=list(predictions), references=list(references), decimals=None, **kwargs)


@pytest.mark.parametrize(
    ("windows", "gt_windows", "expected_map", "expected_r1"),
    [
        ([(0, 10, 0.9), (20, 30, 0.8)], [(0, 10)], 100.0, 100.0),  # TP then FP: AP 1
        ([(20, 30, 0.9), (0, 10, 0.8)], [(0, 10)], 50.0, 0.0),  # FP then TP: AP 1/2; R1 = first listed
        ([(20, 30, 0.1), (0, 10, 0.9)], [(0, 10)], 100.0, 0.0),  # ranked by score, R1 by listing
        ([(20, 30), (0, 10)], [(0, 10)], 50.0, 0.0),  # unscored windows keep their listed order
        # TP, duplicate of a matched GT (FP), TP: P = 1, 1/2, 2/3 at R = 1/2, 1/2, 1 -> 1/2 + 1/2 * 2/3.
        ([(0, 10, 0.9), (1, 10, 0.8), (20, 30, 0.7)], [(0, 10), (20, 30)], 100 * (0.5 + 1 / 3), 100.0),
    ],
)
def test_hand_computed_mr_map_and_r1(metric, windows, gt_windows, expected_map, expected_r1):
    result = _run(metric, _query(windows=windows, gt_windows=gt_windows))
    assert result["MR-full-mAP"] == pytest.approx(expected_map)
    assert result["MR-full-mAP@0.5"] == pytest.approx(expected_map)
    assert result["MR-full-R1@0.5"] == pytest.approx(expected_r1)


def test_iou_threshold_sweep(metric):
    result = _run(metric, _query(windows=[(0, 8, 1.0)], gt_windows=[(0, 10)]))  # IoU 0.8
    assert result["MR-full-mAP@0.75"] == 100.0
    assert result["MR-full-mAP@0.8"] == 100.0
    assert result["MR-full-mAP@0.85"] == 0.0
    assert result["MR-full-mAP"] == pytest.approx(70.0)  # 7 of 10 thresholds
    assert result["MR-full-R1@0.8"] == 100.0
    assert result["MR-full-R1@0.85"] == 0.0


def test_length_buckets(metric):
    short = _query(qid=1, windows=[(0, 6, 1.0)], gt_windows=[(0, 6)])
    # Two GT windows, 20 s (middle) and 70 s (long); the prediction finds the long one.
    mixed = _query(qid=2, windows=[(30, 100, 0.9)], gt_windows=[(0, 20), (30, 100)])
    result = _run(metric, short, mixed)
    assert result["MR-full-mAP"] == pytest.approx(75.0)  # (1 + 1/2) / 2
    assert result["MR-short-mAP"] == 100.0
    assert result["MR-middle-mAP"] == 0.0
    assert result["MR-long-mAP"] == 100.0
    assert result["MR-middle-R1@0.5"] == 0.0
    assert result["MR-full-R1@0.5"] == 100.0
    assert [result[f"MR-{b}-num-queries"] for b in ("full", "short", "middle", "long")] == [2, 1, 1, 1]


def test_empty_bucket_is_nan(metric):
    result = _run(metric, _query(windows=[(0, 6, 1.0)], gt_windows=[(0, 6)]))
    assert np.isnan(result["MR-long-mAP"]) and result["MR-long-num-queries"] == 0


def test_only_the_first_ten_windows_count_for_map(metric):
    windows = [(20 + 2 * i, 21 + 2 * i, 1.0 - 0.05 * i) for i in range(10)] + [(100, 110, 0.1)]
    query = _query(windows=windows, gt_windows=[(100, 110)])
    assert _run(metric, query)["MR-full-mAP"] == 0.0
    assert _run(metric, query, max_pred_windows=None)["MR-full-mAP"] == pytest.approx(100 / 11)


def test_reversed_window_no_longer_counts_as_a_hit(metric):
    """Reference defect: [30, 20] vs GT [0, 10] has union 0, IoU NaN, and NaN < t is False -> TP."""
    result = _run(metric, _query(windows=[(30, 20, 0.9)], gt_windows=[(0, 10)]))
    assert result["MR-full-mAP"] == 0.0
    assert result["MR-full-R1@0.5"] == 0.0
    assert result["MR-num-reversed"] == 1


def test_reversed_window_mirroring_the_gt_scores_zero_unless_clamped(metric):
    """Reference defect: [20, 10] vs GT [10, 20] also has IoU 0/0 -> a TP there. Windows are used as given
    (a reversed window has no intersection), and the clamped convention sorts them."""
    query = _query(windows=[(20, 10, 0.9)], gt_windows=[(10, 20)])
    result = _run(metric, query)
    assert result["MR-full-mAP"] == 0.0 and result["MR-full-R1@0.3"] == 0.0
    assert result["MR-num-reversed"] == 1 and result["convention"] == "moment_detr"
    clamped = _run(metric, query, convention="clamped")
    assert clamped["MR-full-mAP"] == 100.0 and clamped["MR-num-reversed"] == 1


def test_empty_window_list_scores_zero_instead_of_crashing(metric):
    result = _run(metric, _query(qid=1, windows=[]), _query(qid=2, windows=[(0, 10, 1.0)]))
    assert result["MR-full-R1@0.5"] == pytest.approx(50.0)
    assert result["MR-full-mAP"] == pytest.approx(50.0)
    assert result["MR-num-empty"] == 1


def test_windows_past_the_duration_are_clamped_only_under_the_clamped_convention(metric):
    query = _query(windows=[(0, 40, 1.0)], gt_windows=[(0, 30)], duration=30)
    as_given = _run(metric, query)
    assert as_given["MR-full-mAP@0.8"] == 0.0  # IoU 0.75, as the reference scores it
    assert as_given["MR-num-clamped"] == 1  # counted, not changed
    clamped = _run(metric, query, convention="clamped")
    assert clamped["MR-full-mAP"] == 100.0 and clamped["convention"] == "clamped"


# Highlight detection: 8 s -> 4 clips; clip 1 scored [4, 1, 2] and clip 2 [2, 3, 0] by the 3 annotators.
HD_QUERY = dict(duration=8, clip_ids=[1, 2], scores=[[4, 1, 2], [2, 3, 0]])


def test_hand_computed_hd_map_and_hit1(metric):
    # Ranking: clip 1, 2, 3, 0. Fair: AP 1, 1/2, 1; Good: 1, 1/2, 0 (no positive); VeryGood: 1, 0, 0.
    result = _run(metric, _query(saliency=[0.1, 0.9, 0.5, 0.2], **HD_QUERY))
    assert result["HL-min-Fair-mAP"] == pytest.approx(100 * 2.5 / 3)
    assert result["HL-min-Good-mAP"] == pytest.approx(50.0)
    assert result["HL-min-VeryGood-mAP"] == pytest.approx(100 / 3)
    assert result["HL-min-Fair-Hit1"] == result["HL-min-VeryGood-Hit1"] == 100.0
    assert "MR-full-mAP" not in result  # HD-only submission


def test_ties_first_argmax_and_lenient_hit1(metric):
    first = _query(qid=1, saliency=[0.1, 0.9, 0.5, 0.2], **HD_QUERY)
    # Clips 0, 1, 3 tie at the top; only clip 3 is positive. Strict Hit1 takes clip 0 (a miss);
    # the tie group is one threshold: precision 1/3 at recall 1, so AP = 1/3 for every annotator.
    tied = _query(qid=2, saliency=[0.5, 0.5, 0.2, 0.5], duration=8, clip_ids=[3], scores=[[4, 4, 4]])
    result = _run(metric, first, tied, lenient_hit1=True)
    assert result["HL-min-Fair-mAP"] == pytest.approx(100 * (2.5 + 1) / 6)
    assert result["HL-min-Good-mAP"] == pytest.approx(100 * (1.5 + 1) / 6)
    assert result["HL-min-VeryGood-mAP"] == pytest.approx(100 * 2 / 6)
    assert result["HL-min-VeryGood-Hit1"] == 50.0
    assert result["HL-min-VeryGood-Hit1-lenient"] == 100.0


def test_lenient_hit1_misses_an_all_zero_prediction(metric):
    query = _query(saliency=[0.0, 0.0, 0.0, 0.0], duration=8, clip_ids=[0], scores=[[4, 4, 4]])
    result = _run(metric, query, lenient_hit1=True)
    assert result["HL-min-Fair-Hit1"] == 100.0  # first argmax of all zeros is clip 0
    assert result["HL-min-Fair-Hit1-lenient"] == 0.0
    assert "HL-min-Fair-Hit1-lenient" not in _run(metric, query)


def test_short_saliency_is_zero_padded_and_argmax_uses_raw_scores(metric):
    query = _query(saliency=[-1.0, -2.0], duration=8, clip_ids=[3], scores=[[4, 4, 4]])
    result = _run(metric, query)
    # Padded to [-1, -2, 0, 0]: clips 2 and 3 tie on top -> precision 1/2 at recall 1.
    assert result["HL-min-VeryGood-mAP"] == pytest.approx(50.0)
    assert result["HL-min-VeryGood-Hit1"] == 0.0  # raw argmax: clip 0
    assert result["HL-num-padded"] == 1
    # Padding below every score ranks clip 3 last: precision 1/4.
    assert _run(metric, query, saliency_pad_value=-10.0)["HL-min-VeryGood-mAP"] == pytest.approx(25.0)


def test_argmax_past_the_last_clip_is_a_miss(metric):
    query = _query(saliency=[0.1, 0.0, 0.0, 0.0, 0.0, 0.9], duration=8, clip_ids=[0], scores=[[4, 4, 4]])
    result = _run(metric, query)
    assert result["HL-min-Fair-Hit1"] == 0.0
    assert result["HL-min-Fair-mAP"] == 100.0  # truncated to 4 clips, clip 0 ranks first
    assert result["HL-num-truncated"] == 1


def _oracle_ap(labels, scores):
    """The reference get_ap formula written against sklearn's PR curve."""
    if labels.min() == labels.max():
        return float(labels[0])
    precision, recall, _ = precision_recall_curve(labels, scores)
    precision = np.maximum.accumulate(precision)  # reference order runs from high to low recall
    return float(np.mean(precision[np.nonzero(np.diff(recall))]))


def test_hd_map_matches_an_sklearn_oracle_on_random_queries(metric):
    rng = np.random.default_rng(0)
    queries, oracle = [], {"Fair": [], "VeryGood": []}
    for qid in range(40):
        num_clips = int(rng.integers(2, 20))
        gt = rng.integers(0, 5, size=(num_clips, 3))
        scores = np.round(rng.normal(size=num_clips), 1)  # coarse values -> ties
        queries.append(
            _query(qid=qid, saliency=scores, duration=2 * num_clips, clip_ids=range(num_clips), scores=gt.tolist())
        )
        for name, level in (("Fair", 2), ("VeryGood", 4)):
            oracle[name] += [_oracle_ap((gt[:, a] >= level).astype(int), scores) for a in range(3)]
    result = _run(metric, *queries)
    assert result["HL-min-Fair-mAP"] == pytest.approx(100 * np.mean(oracle["Fair"]), abs=1e-9)
    assert result["HL-min-VeryGood-mAP"] == pytest.approx(100 * np.mean(oracle["VeryGood"]), abs=1e-9)


def test_saliency_ap_helper_against_oracle(metric):
    module = sys.modules[type(metric).__module__]
    labels = np.array([[0], [1], [1], [0], [1], [0]])
    scores = np.array([0.3, 0.3, 0.9, 0.1, 0.5, 0.5])
    assert module.saliency_ap(scores, labels.astype(bool))[0] == pytest.approx(_oracle_ap(labels[:, 0], scores))


def test_mr_only_submission_and_int_or_str_qids(metric):
    pred, ref = _query(qid=5, windows=[(0, 10, 1.0)])
    ref["qid"] = "5"
    result = _run(metric, (pred, ref))
    assert result["MR-full-mAP"] == 100.0
    assert not any(key.startswith("HL-") for key in result)


def test_add_batch_matches_compute(metric, load_metric):
    queries = [
        _query(qid=1, windows=[(0, 10, 0.9)], saliency=[0.1, 0.9, 0.5, 0.2], **HD_QUERY),
        _query(qid=2, windows=[(2, 6, 0.9), (0, 8, 0.5)], saliency=[0.3, 0.2, 0.1, 0.0], **HD_QUERY),
        _query(qid=3, windows=[], saliency=[0.0, 0.0, 1.0, 0.0], **HD_QUERY),
    ]
    expected = _run(load_metric("qvhighlights"), *queries)
    metric.add_batch(predictions=[queries[0][0], queries[1][0]], references=[queries[1][1], queries[0][1]])
    metric.add(prediction=queries[2][0], reference=queries[2][1])
    result = metric.compute(decimals=None)
    assert result.pop("key_conventions") == expected.pop("key_conventions")
    assert result == pytest.approx(expected, nan_ok=True)  # middle/long are empty


def _bad(pred_update=None, ref_update=None, second=None):
    pred, ref = _query(qid=1, windows=[(0, 10, 1.0)], saliency=[0.1, 0.2, 0.3, 0.4], **HD_QUERY)
    pred.update(pred_update or {})
    ref.update(ref_update or {})
    return [pred] + ([second[0]] if second else []), [ref] + ([second[1]] if second else [])


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (_bad(ref_update={"qid": 2}), "no prediction for qid 2"),
        (
            _bad(pred_update={"pred_saliency_scores": [0.1, float("nan")]}),
            r"prediction for qid 1: pred_saliency_scores \[0.1, nan\] is not finite",
        ),
        (_bad(pred_update={"pred_relevant_windows": [[1.0]]}), r"prediction for qid 1: window \[1.0\] must be"),
        (_bad(pred_update={"pred_relevant_windows": [[1, 2, 0.5], [1, 2]]}), "prediction for qid 1: windows mix"),
        (
            _bad(ref_update={"relevant_clip_ids": [1, 4], "saliency_scores": [[1, 1, 1], [2, 2, 2]]}),
            "reference for qid 1: relevant_clip_id 4 is outside the 4 clips",
        ),
        (
            _bad(ref_update={"relevant_clip_ids": [1, 2], "saliency_scores": [[1, 1, 1]]}),
            "reference for qid 1: 2 relevant_clip_ids but 1 saliency_scores rows",
        ),
        (_bad(ref_update={"duration": float("inf")}), "reference for qid 1: duration inf"),
        (_bad(ref_update={"relevant_windows": []}), "reference for qid 1: no relevant_windows"),
        (_bad(pred_update={"qid": None}), "prediction #0: qid None"),
        (
            _bad(second=_query(qid=1, windows=[(0, 1, 1.0)], saliency=[0, 0, 0, 0], **HD_QUERY)),
            "prediction for qid 1: duplicate qid",
        ),
        (
            _bad(second=_query(qid=2, saliency=[0, 0, 0, 0], **HD_QUERY)),
            "prediction for qid 2: no pred_relevant_windows",
        ),
        (([{"qid": 1}], [_query()[1]]), "neither pred_relevant_windows nor pred_saliency_scores"),
    ],
)
def test_bad_input_names_the_item(metric, inputs, message):
    predictions, references = inputs
    with pytest.raises(ValueError, match=message):
        metric.compute(predictions=predictions, references=references)


def test_r1_ties_use_the_reference_hull_iou(metric):
    """[5.9, 31.8] vs [5.0, 19.3]: IoU 13.4/26.8 = 0.5. The len_p + len_g - inter union rounds it to
    0.49999999999999994, the reference's hull union (max end - min start) to 0.5, a hit."""
    result = _run(metric, _query(windows=[(5.9, 31.8, 1.0)], gt_windows=[(5.0, 19.3)]))
    assert result["MR-full-R1@0.5"] == 100.0
    assert result["MR-full-mIoU"] == 50.0


def test_greedy_matching_tries_the_later_of_tied_ground_truths_first(metric):
    """[0, 20] has IoU 0.5 with both GTs; the reference's reversed argsort matches it to [10, 20], which
    leaves [0, 10] for the next window: two true positives at 0.5."""
    query = _query(windows=[(0, 20, 0.9), (0, 9, 0.8)], gt_windows=[(0, 10), (10, 20)])
    assert _run(metric, query)["MR-full-mAP@0.5"] == 100.0


def test_groundvts_recall_keys_hand_computed(metric):
    # First-listed window IoU 0.4 (R1 at 0.3..0.4, not 0.45); the third window is the best of five (IoU 0.8).
    query = _query(windows=[(0, 4, 0.1), (20, 30, 0.9), (0, 8, 0.5)], gt_windows=[(0, 10)])
    result = _run(metric, query)
    assert [result[f"MR-full-R1@{t}"] for t in (0.3, 0.35, 0.4, 0.45, 0.5)] == [100.0, 100.0, 100.0, 0.0, 0.0]
    assert result["MR-full-mIoU"] == pytest.approx(40.0)
    assert result["MR-full-R5@0.8"] == 100.0 and result["MR-full-R5@0.85"] == 0.0
    windows = [(20 + 5 * i, 22 + 5 * i, 1.0) for i in range(5)] + [(0, 10, 1.0)]  # the hit is sixth
    assert _run(metric, _query(windows=windows, gt_windows=[(0, 10)]))["MR-full-R5@0.3"] == 0.0
    assert result["key_conventions"]["MR-full-mIoU"] == "groundvts_eval_qvhighlights"
    assert "MR-full-R1@0.3" not in result["key_conventions"]  # the moment_detr R1 definition, more thresholds


def _groundvts_r1_r5(pred_windows, gt_windows):
    """GroundVTS eval_qvhighlights.py compute_mr_r1 / compute_mr_r5 for one query (hull IoU of the chosen pair)."""

    def cross(p, g):
        p, g = np.asarray(p, float).reshape(-1, 2), np.asarray(g, float)
        inter = np.clip(np.minimum(p[:, None, 1], g[None, :, 1]) - np.maximum(p[:, None, 0], g[None, :, 0]), 0, None)
        return inter / ((p[:, 1] - p[:, 0])[:, None] + (g[:, 1] - g[:, 0])[None, :] - inter)

    def paired(p, g):
        inter = max(0.0, min(p[1], g[1]) - max(p[0], g[0]))
        union = max(p[1], g[1]) - min(p[0], g[0])
        return inter / union if union != 0 else 0.0

    first = pred_windows[0][:2]
    r1 = paired(first, gt_windows[int(np.argmax(cross([first], gt_windows)[0]))])
    top5 = [w[:2] for w in pred_windows[:5]]
    ious = cross(top5, gt_windows)
    ious[np.isnan(ious)] = 0
    rows, cols = np.where(ious == np.max(ious))
    return r1, paired(top5[rows[0]], gt_windows[cols[0]])


def test_groundvts_keys_match_its_definitions_on_the_golden_predictions(load_metric, golden):
    predictions, references, _ = golden
    result = load_metric("qvhighlights").compute(predictions=predictions, references=references, decimals=None)
    by_qid = {p["qid"]: p for p in predictions}
    pairs = [_groundvts_r1_r5(by_qid[r["qid"]]["pred_relevant_windows"], r["relevant_windows"]) for r in references]
    r1, r5 = np.array(pairs).T
    assert result["MR-full-mIoU"] == pytest.approx(100 * r1.mean(), abs=1e-9)
    for t in (0.3, 0.35, 0.4, 0.45, 0.5, 0.7):
        assert result[f"MR-full-R1@{t}"] == pytest.approx(100 * np.mean(r1 >= t), abs=1e-9), t
        assert result[f"MR-full-R5@{t}"] == pytest.approx(100 * np.mean(r5 >= t), abs=1e-9), t


def _groundvts_lenient_hit(scores, binary):
    """GroundVTS compute_hl_hit1_multiple for one query: max over all scores, ties past the clips miss."""
    top = np.max(scores)
    if top == 0:
        return 0
    return int(any(i < len(binary) and np.any(binary[i] > 0) for i in np.where(np.asarray(scores) == top)[0]))


def test_lenient_hit1_is_groundvts_on_score_lists_longer_than_the_video(load_metric, golden):
    """Scores past the last clip take part in the maximum (GroundVTS); cutting them off first, as this metric
    did before, turns those queries' misses into hits."""
    predictions, references, _ = golden
    rng = np.random.default_rng(0)
    long_preds = []
    for pred in predictions:
        scores = list(pred["pred_saliency_scores"])
        tail = rng.integers(0, 5, size=20).astype(float) * max(scores) / 2  # some tails beat every clip
        long_preds.append({**pred, "pred_saliency_scores": scores + tail.tolist()})
    result = load_metric("qvhighlights").compute(
        predictions=long_preds, references=references, lenient_hit1=True, decimals=None
    )
    by_qid = {p["qid"]: p["pred_saliency_scores"] for p in long_preds}
    for name, level in (("Fair", 2), ("VeryGood", 4)):
        oracle, cut = [], []
        for ref in references:
            gt = np.zeros((int(ref["duration"] / 2), 3))
            gt[ref["relevant_clip_ids"]] = ref["saliency_scores"]
            binary = (gt >= level).astype(float)
            scores = by_qid[ref["qid"]]
            oracle.append(_groundvts_lenient_hit(scores, binary))
            cut.append(_groundvts_lenient_hit(scores[: len(binary)], binary))
        assert result[f"HL-min-{name}-Hit1-lenient"] == pytest.approx(100 * np.mean(oracle), abs=1e-9)
        assert np.mean(cut) - np.mean(oracle) > 0.2  # the old cut definition is far more generous here
    assert result["HL-num-truncated"] == 1550
    assert result["key_conventions"]["HL-min-VeryGood-Hit1-lenient"] == "groundvts_eval_qvhighlights"


def test_empty_saliency_scores_earn_no_credit(metric):
    """[] is "no highlight prediction": AP 0 and a miss. All-zero scores are a real (tied) prediction."""
    empty = _query(qid=1, saliency=[], duration=8, clip_ids=[0], scores=[[4, 4, 4]])
    result = _run(metric, empty, lenient_hit1=True)
    assert result["HL-min-Fair-mAP"] == 0.0
    assert result["HL-min-Fair-Hit1"] == 0.0 and result["HL-min-Fair-Hit1-lenient"] == 0.0
    assert result["HL-num-empty"] == 1
    zeros = _run(metric, _query(qid=1, saliency=[0, 0, 0, 0], duration=8, clip_ids=[0], scores=[[4, 4, 4]]))
    assert zeros["HL-min-Fair-Hit1"] == 100.0 and zeros["HL-min-Fair-mAP"] == 25.0
    assert zeros["HL-num-empty"] == 0
