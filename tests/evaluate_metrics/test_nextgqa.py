"""nextgqa: hand-computed IoU/IoP/Acc, the zero-length convention, bad input and real NExT-GQA data."""

import csv
import json

import numpy as np
import pytest


@pytest.fixture
def metric(load_metric):
    return load_metric("nextgqa")


HAND_PREDICTIONS = [
    {"qid": "v_a", "window": [2.0, 6.0], "answer": "dance"},
    {"qid": "v_b", "window": [0.0, 10.0], "answer": "run"},
    {"qid": "v_c", "window": [3.0, 3.0], "answer": "Z "},
]
HAND_REFERENCES = [
    {"qid": "v_a", "windows": [[0.0, 4.0], [5.0, 10.0]], "answer": "dance"},
    # IoU is best against [0, 4] (0.4), IoP against [5, 20] (0.5): the maxima are independent.
    {"qid": "v_b", "windows": [[0.0, 4.0], [5.0, 20.0]], "answer": "walk"},
    {"qid": "v_c", "windows": [[0.0, 5.0]], "answer": "z"},
]


def test_hand_computed_official_convention(metric):
    result = metric.compute(predictions=HAND_PREDICTIONS, references=HAND_REFERENCES)
    # IoU: 1/3, 0.4, 0 (zero length); IoP: 0.5, 0.5, 1 (a point inside the GT).
    assert result["mIoU"] == pytest.approx(100 * (1 / 3 + 0.4) / 3)
    assert result["mIoP"] == pytest.approx(100 * 2 / 3)
    assert result["IoU@0.3"] == pytest.approx(100 * 2 / 3)
    assert result["IoU@0.5"] == 0.0
    assert result["IoP@0.3"] == result["IoP@0.5"] == 100.0
    assert result["Acc@QA"] == pytest.approx(100 * 2 / 3)  # "Z " matches "z"
    assert result["Acc@GQA"] == pytest.approx(100 * 2 / 3)
    assert result["num_zero_length"] == 1
    assert result["num_wrong_answers"] == 1


def test_zero_length_iop_can_be_zero(metric):
    result = metric.compute(predictions=HAND_PREDICTIONS, references=HAND_REFERENCES, zero_length_iop="zero")
    assert result["mIoP"] == pytest.approx(100 / 3)
    assert result["IoP@0.5"] == pytest.approx(100 * 2 / 3)
    assert result["Acc@GQA"] == pytest.approx(100 / 3)


@pytest.mark.parametrize(("point", "expected_iop"), [(0.0, 100.0), (5.0, 100.0), (5.5, 0.0)])
def test_zero_length_bounds_are_inclusive(metric, point, expected_iop):
    result = metric.compute(predictions=[[point, point]], references=[{"windows": [[0.0, 5.0]]}])
    assert result["mIoP"] == expected_iop
    assert result["mIoU"] == 0.0


def test_acc_at_gqa_needs_iop_of_half(metric):
    predictions = [
        {"qid": 1, "window": [0.0, 10.0], "answer": "a"},  # IoP 0.5, correct -> grounded
        {"qid": 2, "window": [0.0, 10.0], "answer": "a"},  # IoP 0.49, correct -> not grounded
        {"qid": 3, "window": None, "answer": "a"},  # unparsed, correct -> QA only
    ]
    references = [
        {"qid": 1, "windows": [[5.0, 30.0]], "answer": "a"},
        {"qid": 2, "windows": [[5.1, 30.0]], "answer": "a"},
        {"qid": 3, "windows": [[5.0, 30.0]], "answer": "a"},
    ]
    result = metric.compute(predictions=predictions, references=references)
    assert result["Acc@QA"] == 100.0
    assert result["Acc@GQA"] == pytest.approx(100 / 3)
    assert result["num_unparsed"] == 1


def test_grounding_only_has_no_accuracy(metric):
    result = metric.compute(predictions=[[2.0, 6.0], None], references=[{"windows": [[0.0, 4.0]]}] * 2)
    assert "Acc@QA" not in result and "Acc@GQA" not in result
    assert result["mIoU"] == pytest.approx(100 / 6)
    assert result["num_unparsed"] == 1


def test_windows_are_used_as_given_unless_clamped(metric):
    references = [{"qid": 1, "windows": [[6.0, 12.0]], "duration": 10.0}]
    predictions = [{"qid": 1, "window": [14.0, 6.0]}]
    official = metric.compute(predictions=predictions, references=references)
    assert official["mIoU"] == official["mIoP"] == 0.0  # a reversed window scores 0 in eval_ground.py
    assert (official["num_reversed"], official["num_clamped"], official["num_reference_clamped"]) == (1, 1, 1)
    assert official["convention"] == "eval_ground"
    clamped = metric.compute(predictions=predictions, references=references, convention="clamped")
    assert clamped["mIoU"] == 100.0  # [6, 14] -> [6, 10]; GT [6, 12] -> [6, 10]
    assert (clamped["num_reversed"], clamped["num_clamped"], clamped["num_reference_clamped"]) == (1, 1, 1)


@pytest.mark.parametrize("window", [[35.0, 40.0], [30.0, 34.0], [40.0, 40.0], [-6.0, -1.0]])
@pytest.mark.parametrize("convention", ["eval_ground", "clamped"])
def test_a_window_outside_the_video_scores_zero(metric, window, convention):
    """Clamped to [30, 30] (or [0, 0]), a window after (before) the video would be a zero-length point on the
    boundary, which the zero-length rule scores IoP 1 against a truth touching it; the official script gives 0."""
    references = [{"qid": 1, "windows": [[25.0, 30.0], [0.0, 2.0]], "duration": 30.0, "answer": "0"}]
    result = metric.compute(predictions=[{"qid": 1, "window": window, "answer": 0}], references=references,
                            convention=convention)
    assert result["mIoU"] == result["mIoP"] == result["Acc@GQA"] == 0.0
    assert result["Acc@QA"] == 100.0
    assert result["num_outside"] == (convention == "clamped")


def test_add_batch_matches_compute(metric, load_metric):
    expected = load_metric("nextgqa").compute(predictions=HAND_PREDICTIONS, references=HAND_REFERENCES)
    metric.add_batch(predictions=HAND_PREDICTIONS[:2], references=HAND_REFERENCES[1::-1])
    metric.add(prediction=HAND_PREDICTIONS[2], reference=HAND_REFERENCES[2])
    assert metric.compute() == expected


@pytest.mark.parametrize(
    ("predictions", "references", "kwargs", "message"),
    [
        ([{"qid": "a", "window": [1, 2]}], [{"qid": "b", "windows": [[0, 4]]}], {}, "no prediction for qid b"),
        (
            [{"qid": "a", "window": [1, float("inf")]}],
            [{"qid": "a", "windows": [[0, 4]]}],
            {},
            r"prediction for qid a: window \[1, inf\] is not finite",
        ),
        (
            [{"qid": "a", "window": [1, 2], "answer": "x"}],
            [{"qid": "a", "windows": [[0, 4]]}],
            {},
            "reference for qid a: no answer",
        ),
        (
            [{"qid": "a", "window": [[1, 2], [3, 4]]}],
            [{"qid": "a", "windows": [[0, 4]]}],
            {},
            "prediction for qid a: window",
        ),
        (
            [{"qid": "a", "window": [1, 2]}],
            [{"qid": "a", "windows": []}],
            {},
            "reference for qid a: 'windows' must be a non-empty list",
        ),
        (
            [{"qid": "a", "span": [1, 2]}],
            [{"qid": "a", "windows": [[0, 4]]}],
            {},
            "prediction for qid a: missing key 'window'",
        ),
        ([[1, 2]], [{"windows": [[0, 4]]}], {"zero_length_iop": "one"}, "zero_length_iop"),
        ([[1, 2]], [{"windows": [[0, 4]]}], {"iop_thresholds": [2.0]}, "threshold 2.0"),
    ],
)
def test_bad_input_names_the_item(metric, predictions, references, kwargs, message):
    with pytest.raises(ValueError, match=message):
        metric.compute(predictions=predictions, references=references, **kwargs)


def _nextgqa_val(shared_data):
    folder = shared_data / "nextgqa"
    spans = json.loads((folder / "gsub_val.json").read_text(encoding="utf-8"))
    with open(folder / "val.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [
        {
            "qid": f"{row['video_id']}_{row['qid']}",
            "windows": spans[row["video_id"]]["location"][row["qid"]],
            "answer": row["answer"],
            "duration": spans[row["video_id"]]["duration"],
        }
        for row in rows
    ]


def test_nextgqa_val_ground_truth_as_prediction(metric, shared_data):
    references = _nextgqa_val(shared_data)
    predictions = [{"qid": r["qid"], "window": r["windows"][0], "answer": r["answer"]} for r in references]
    result = metric.compute(predictions=predictions, references=references)
    assert result["num_queries"] == 3358
    assert result["mIoU"] == result["mIoP"] == result["Acc@GQA"] == pytest.approx(100.0)
    assert result["num_reference_clamped"] == 3  # 3 val segments end past the integer duration


def _official_get_tiou(loc, span):
    """doc-doc/NExT-GQA eval_ground.py get_tIoU(loc=ground truth, span=prediction)."""
    if span[0] == span[-1]:
        return (0, 1) if loc[0] <= span[0] <= loc[1] else (0, 0)
    union = (min(loc[0], span[0]), max(loc[-1], span[-1]))
    inter = max(loc[0], span[0]), min(loc[-1], span[-1])
    dis_i = inter[1] - inter[0]
    iou = dis_i / (union[1] - union[0]) if union[1] > union[0] else 0.0
    iop = dis_i / (span[-1] - span[0]) if span[-1] > span[0] else 0.0
    return iou, iop


def _official_scores(window, locs):
    best_iou, best_iop = 0, 0
    for loc in locs:
        iou, iop = _official_get_tiou(loc, window)
        best_iou = iou if iou > best_iou else best_iou
        best_iop = iop if iop > best_iop else best_iop
    return best_iou, best_iop


def test_nextgqa_val_raw_predictions_match_the_official_script(metric, shared_data):
    """Shifted, reversed, zero-length and out-of-video windows, option-index answers, durations given: the
    default convention gives the official script's numbers."""
    references = _nextgqa_val(shared_data)
    rng = np.random.default_rng(1)
    predictions, ious, iops, grounded, correct = [], [], [], [], []
    for i, ref in enumerate(references):
        start, end = ref["windows"][0]
        if i % 7 == 0:
            window = [start, start]
        elif i % 11 == 0:
            window = [ref["duration"] + 1.0, ref["duration"] + 6.0]  # after the video
        else:
            window = [start + rng.uniform(-3, 3), end + rng.uniform(-3, 3)]  # sometimes reversed
        truth = i % 5
        answer = truth if i % 3 else (truth + 1) % 5
        predictions.append({"qid": ref["qid"], "window": window, "answer": answer})
        ref["answer"] = truth
        iou, iop = _official_scores(window, ref["windows"])
        ious.append(iou)
        iops.append(iop)
        correct.append(answer == truth)
        grounded.append(answer == truth and iop >= 0.5)
    result = metric.compute(predictions=predictions, references=references)
    assert result["mIoU"] == pytest.approx(100 * np.mean(ious), abs=1e-9)
    assert result["mIoP"] == pytest.approx(100 * np.mean(iops), abs=1e-9)
    for t in (0.3, 0.5):
        assert result[f"IoU@{t}"] == 100 * np.mean(np.array(ious) >= t)
        assert result[f"IoP@{t}"] == 100 * np.mean(np.array(iops) >= t)
    assert result["Acc@QA"] == pytest.approx(100 * np.mean(correct))
    assert result["Acc@GQA"] == pytest.approx(100 * np.mean(grounded))
    assert result["num_reversed"] > 0 and result["num_clamped"] > 0


def test_nextgqa_test_windows_after_the_video_score_zero(metric, shared_data):
    """Every test question answered with a window after the video's end: 0 under both conventions. Clamped to a
    zero-length point at the end, it would score IoP 1 wherever the truth reaches the end."""
    folder = shared_data / "nextgqa"
    spans = json.loads((folder / "gsub_test.json").read_text(encoding="utf-8"))
    references, touching = [], 0
    for vid, entry in spans.items():
        for qid, windows in entry["location"].items():
            references.append({"qid": f"{vid}_{qid}", "windows": windows, "duration": entry["duration"]})
            touching += any(s <= entry["duration"] <= e for s, e in windows)
    predictions = [{"qid": r["qid"], "window": [r["duration"] + 2.0, r["duration"] + 8.0]} for r in references]
    assert len(references) == 5553
    assert touching / len(references) == pytest.approx(0.107, abs=0.001)
    for convention in ("eval_ground", "clamped"):
        result = metric.compute(predictions=predictions, references=references, convention=convention)
        assert result["mIoP"] == 0.0 and result["IoP@0.3"] == 0.0, convention
