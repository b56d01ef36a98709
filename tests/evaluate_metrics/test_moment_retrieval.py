"""moment_retrieval: hand-computed R@k / mIoU, edge cases, bad input and real Charades-STA data."""

import csv
import json

import numpy as np
import pytest
import torch


@pytest.fixture
def metric(load_metric):
    return load_metric("moment_retrieval")


def test_hand_computed_r1_and_miou(metric):
    predictions = [[2.0, 8.0], [12.0, 30.0], [0.0, 4.0], [10.0, 17.0]]
    references = [[[0.0, 10.0]], [[15.0, 25.0], [40.0, 50.0]], [[5.0, 9.0]], [[10.0, 20.0]]]
    # IoUs: 6/10, best of (10/18, 0), 0, 7/10.
    result = metric.compute(predictions=predictions, references=references)
    assert result["R1@0.3"] == pytest.approx(75.0)
    assert result["R1@0.5"] == pytest.approx(75.0)
    assert result["R1@0.7"] == pytest.approx(25.0)
    assert result["mIoU"] == pytest.approx(100 * (0.6 + 10 / 18 + 0.0 + 0.7) / 4)
    assert result["num_queries"] == 4
    assert result["num_unparsed"] == 0


def test_best_ground_truth_window_is_used(metric):
    result = metric.compute(predictions=[[40.0, 50.0]], references=[[[0.0, 10.0], [41.0, 50.0]]])
    assert result["mIoU"] == pytest.approx(90.0)


def test_recall_at_k_uses_the_first_k_ranked_windows(metric):
    predictions = [[[20.0, 30.0], [0.0, 10.0]], [[0.0, 5.0], [30.0, 40.0], [50.0, 60.0]]]
    references = [[[0.0, 10.0]], [[50.0, 60.0]]]
    result = metric.compute(predictions=predictions, references=references, ks=[1, 2, 3], iou_thresholds=[0.5])
    assert result["R1@0.5"] == 0.0
    assert result["R2@0.5"] == pytest.approx(50.0)
    assert result["R3@0.5"] == pytest.approx(100.0)
    assert result["mIoU"] == 0.0  # mIoU is always about the top-1 window


def test_custom_thresholds_name_the_keys(metric):
    result = metric.compute(predictions=[[0.0, 1.5]], references=[[[0.0, 10.0]]], iou_thresholds=[0.1, 0.25])
    assert set(k for k in result if k.startswith("R")) == {"R1@0.1", "R1@0.25"}
    assert result["R1@0.1"] == 100.0 and result["R1@0.25"] == 0.0


def test_unparsed_predictions_score_zero_and_stay_in_the_denominator(metric):
    result = metric.compute(
        predictions=[None, [], [0.0, 10.0]], references=[[[0.0, 10.0]], [[0.0, 10.0]], [[0.0, 10.0]]]
    )
    assert result["num_unparsed"] == 2
    assert result["num_queries"] == 3
    assert result["R1@0.3"] == pytest.approx(100 / 3)
    assert result["mIoU"] == pytest.approx(100 / 3)


def test_reversed_window_scores_zero_as_in_eval_auto_and_is_sorted_when_clamped(metric):
    """nncore's IoU of [8, 2] is 0 (no intersection); the "clamped" convention sorts it first."""
    result = metric.compute(predictions=[[8.0, 2.0]], references=[[[0.0, 10.0]]])
    assert result["mIoU"] == 0.0 and result["R1@0.3"] == 0.0
    assert result["num_reversed"] == 1 and result["convention"] == "eval_auto"
    clamped = metric.compute(predictions=[[8.0, 2.0]], references=[[[0.0, 10.0]]], convention="clamped")
    assert clamped["mIoU"] == pytest.approx(60.0)
    assert clamped["num_reversed"] == 1 and clamped["convention"] == "clamped"


def test_windows_are_clamped_only_under_the_clamped_convention(metric):
    kwargs = dict(predictions=[[-5.0, 5.0]], references=[{"windows": [[0.0, 5.0]], "duration": 10.0}])
    as_given = metric.compute(**kwargs)
    assert as_given["mIoU"] == pytest.approx(50.0)
    assert as_given["num_clamped"] == 1  # counted, not changed
    assert metric.compute(**kwargs, convention="lighthouse")["mIoU"] == pytest.approx(50.0)
    clamped = metric.compute(**kwargs, convention="clamped")
    assert clamped["mIoU"] == pytest.approx(100.0)
    without_duration = metric.compute(predictions=[[-5.0, 5.0]], references=[[[0.0, 5.0]]], convention="clamped")
    assert without_duration["mIoU"] == pytest.approx(50.0)
    assert without_duration["num_clamped"] == 0


@pytest.mark.parametrize(
    ("convention", "expected_miou", "expected_r1_07"),
    [("eval_auto", 100 * 5 / 7.5, 0.0), ("lighthouse", 100.0, 100.0), ("clamped", 100.0, 100.0)],
)
def test_reference_clipping_follows_the_convention(metric, convention, expected_miou, expected_r1_07):
    kwargs = dict(predictions=[[5.0, 10.0]], references=[{"windows": [[5.0, 12.5]], "duration": 10.0}])
    result = metric.compute(**kwargs, convention=convention)
    assert result["mIoU"] == pytest.approx(expected_miou)
    assert result["R1@0.7"] == expected_r1_07
    assert result["num_reference_clamped"] == 1  # the reference reaches past the video under every convention


def _eval_auto_oracle(window, gts):
    """GroundVTS eval/eval_auto.py's IoU: nncore temporal_iou on float32 tensors, non-finite -> 0."""
    pred = torch.tensor([window], dtype=torch.float32)
    span = torch.tensor(gts, dtype=torch.float32)
    inter = (torch.min(pred[:, None, 1], span[:, 1]) - torch.max(pred[:, None, 0], span[:, 0])).clamp(0)
    iou = inter / ((pred[:, 1] - pred[:, 0])[:, None] + (span[:, 1] - span[:, 0]) - inter)
    return torch.where(iou.isfinite(), iou, 0)


def _float64_iou(window, gts):
    best = 0.0
    for s, e in gts:
        inter = max(0.0, min(window[1], e) - max(window[0], s))
        union = (window[1] - window[0]) + (e - s) - inter
        best = max(best, inter / union if union > 0 else 0.0)
    return best


def test_threshold_ties_are_decided_in_float32_as_eval_auto_decides_them(metric):
    """[7.3, 15.3] vs [7.7, 11.7] has IoU 4/8: float64 gives 0.49999999999999994 (a miss at 0.5), the
    reference's float32 gives exactly 0.5 (a hit)."""
    result = metric.compute(predictions=[[7.3, 15.3]], references=[[[7.7, 11.7]]], iou_thresholds=[0.5])
    assert result["R1@0.5"] == 100.0
    rng = np.random.default_rng(0)
    predictions, references, oracle_hits, oracle_iou, straddles = [], [], {0.3: 0, 0.5: 0, 0.7: 0}, 0.0, 0
    for _ in range(4000):
        gts = [sorted(np.round(rng.uniform(0, 40, 2), 1).tolist()) for _ in range(int(rng.integers(1, 3)))]
        window = np.round(rng.uniform(0, 40, 2), 1).tolist()  # sometimes reversed, as a raw answer can be
        predictions.append(window)
        references.append(gts)
        iou = _eval_auto_oracle(window, gts)
        oracle_iou += iou[0].max().item()
        for t in oracle_hits:
            oracle_hits[t] += bool(iou[:1].max() >= t)
            straddles += (_float64_iou(window, gts) >= t) != bool(iou[:1].max() >= t)
    result = metric.compute(predictions=predictions, references=references)
    for t, hits in oracle_hits.items():
        assert result[f"R1@{t:g}"] == 100 * hits / 4000, t
    assert result["mIoU"] == pytest.approx(100 * oracle_iou / 4000, abs=1e-9)
    assert straddles > 0  # the set holds ties that float64 arithmetic would decide the other way


def test_keyed_inputs_are_matched_by_qid(metric):
    predictions = [{"qid": 2, "windows": [[0.0, 5.0]]}, {"qid": 1, "windows": [[0.0, 10.0]], "text": "0 to 10"}]
    references = [{"qid": 1, "windows": [[0.0, 10.0]]}, {"qid": "2", "windows": [[0.0, 10.0]]}]
    result = metric.compute(predictions=predictions, references=references)
    assert result["mIoU"] == pytest.approx(75.0)


def test_add_and_add_batch_match_compute(metric, load_metric):
    predictions = [[2.0, 8.0], None, [[0.0, 3.0], [4.0, 9.0]], [9.0, 1.0]]
    references = [[[0.0, 10.0]], [[1.0, 2.0]], [[4.0, 8.0]], [[0.0, 10.0]]]
    expected = load_metric("moment_retrieval").compute(predictions=predictions, references=references, ks=[1, 2])
    metric.add(prediction=predictions[0], reference=references[0])
    metric.add_batch(predictions=predictions[1:3], references=references[1:3])
    metric.add(prediction=predictions[3], reference=references[3])
    assert metric.compute(ks=[1, 2]) == expected


def test_decimals_rounds_percentages(metric):
    result = metric.compute(predictions=[[0.0, 1.0]] * 3, references=[[[0.0, 1.0]], [[0.0, 2.0]], [[5.0, 6.0]]], decimals=2)
    assert result["mIoU"] == 50.0
    assert result["R1@0.3"] == 66.67


@pytest.mark.parametrize(
    ("predictions", "references", "message"),
    [
        (
            [{"qid": 7, "windows": [5.0, float("nan")]}],
            [{"qid": 7, "windows": [[0.0, 1.0]]}],
            r"prediction for qid 7: window \[5.0, nan\] is not finite",
        ),
        ([[1.0, 2.0, 3.0]], [[[0.0, 1.0]]], r"prediction #0: window \[1.0, 2.0, 3.0\] must be \[start, end\]"),
        ([[0.0, 1.0]], [[[0.0, "x"]]], "reference #0: window .* must hold two numbers"),
        ([{"qid": 1, "windows": [0.0, 1.0]}], [{"qid": 2, "windows": [[0.0, 1.0]]}], "no prediction for qid 2"),
        (
            [{"qid": 1, "windows": [0.0, 1.0]}, {"qid": 1, "windows": [0.0, 1.0]}],
            [{"qid": 1, "windows": [[0.0, 1.0]]}, {"qid": 2, "windows": [[0.0, 1.0]]}],
            "prediction for qid 1: duplicate qid",
        ),
        (
            [{"qid": 1, "window": [0.0, 1.0]}],
            [{"qid": 1, "windows": [[0.0, 1.0]]}],
            "prediction for qid 1: missing key 'windows'",
        ),
        ([[0.0, 1.0]], [{"qid": 3, "windows": [], "duration": 5.0}], "reference for qid 3: no ground-truth windows"),
        ([[0.0, 1.0]], [{"windows": [[0.0, 1.0]], "duration": float("nan")}], "reference #0: duration nan"),
        ([[0.0, 1.0]], [[[0.0, 1.0]], [[0.0, 1.0]]], "1 predictions but 2 references"),
        (
            [[0.0, 1.0], [0.0, 1.0]],
            [{"qid": 1, "windows": [[0.0, 1.0]]}, {"windows": [[0.0, 1.0]]}],
            "reference #1 has no qid while other references have one",
        ),
    ],
)
def test_bad_input_names_the_item(metric, predictions, references, message):
    with pytest.raises(ValueError, match=message):
        metric.compute(predictions=predictions, references=references)


@pytest.mark.parametrize(
    ("option", "value"),
    [("iou_thresholds", [0.0]), ("iou_thresholds", [1.5]), ("ks", [0]), ("convention", "videomind")],
)
def test_bad_options_are_rejected(metric, option, value):
    with pytest.raises(ValueError, match=option):
        metric.compute(predictions=[[0.0, 1.0]], references=[[[0.0, 1.0]]], **{option: value})


def _charades_test(shared_data):
    """Original Charades-STA test queries with durations from the Charades_v1 csv."""
    folder = shared_data / "charades_sta"
    with open(folder / "Charades_v1_test.csv", newline="", encoding="utf-8") as f:
        lengths = {row["id"]: float(row["length"]) for row in csv.DictReader(f)}
    queries = []
    for line in (folder / "charades_sta_test.txt").read_text(encoding="utf-8").splitlines():
        vid, start, end = line.split("##")[0].split()
        queries.append({"windows": [[float(start), float(end)]], "duration": lengths[vid]})
    return queries


def test_charades_sta_ground_truth_as_prediction(metric, shared_data):
    references = _charades_test(shared_data)
    predictions = [r["windows"][0] for r in references]
    result = metric.compute(predictions=predictions, references=references)
    assert result["num_queries"] == 3720
    assert result["R1@0.7"] == pytest.approx(100.0)
    assert result["mIoU"] == pytest.approx(100.0)
    # The data README: 562 test ends run past the video length; eval_auto keeps them as they are.
    assert result["num_clamped"] == result["num_reference_clamped"] == 562


def test_charades_sta_clamped_prediction_misses_only_under_eval_auto(metric, shared_data):
    """A perfect prediction clamped to the video loses IoU against the unclamped end under eval_auto (the
    paper's evaluator); lighthouse's clipped references and the clamped convention give it full credit."""
    references = _charades_test(shared_data)
    predictions = [[min(s, r["duration"]), min(e, r["duration"])] for r in references for s, e in r["windows"]]
    eval_auto = metric.compute(predictions=predictions, references=references)
    assert eval_auto["mIoU"] < 100.0 and eval_auto["num_clamped"] == 0
    assert eval_auto["R1@0.3"] == 100.0
    for convention in ("lighthouse", "clamped"):
        assert metric.compute(predictions=predictions, references=references, convention=convention)["mIoU"] == (
            pytest.approx(100.0)
        )


def test_charades_sta_whole_video_baseline(metric, shared_data):
    """Lighthouse jsonl (ends already clipped): predicting [0, duration] gives IoU = GT length / duration."""
    rows = [json.loads(line) for line in (shared_data / "charades_sta" / "charades_test_release.jsonl").open()]
    references = [{"qid": r["qid"], "windows": r["relevant_windows"], "duration": r["duration"]} for r in rows]
    predictions = [{"qid": r["qid"], "windows": [0.0, r["duration"]]} for r in rows]
    expected = np.array([(e - s) / r["duration"] for r in rows for s, e in r["relevant_windows"][:1]])
    result = metric.compute(predictions=predictions, references=references)
    assert result["mIoU"] == pytest.approx(100 * expected.mean())
    assert result["R1@0.3"] == pytest.approx(100 * np.mean(expected >= 0.3))
    assert result["num_clamped"] == 0
