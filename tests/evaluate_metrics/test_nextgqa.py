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


def test_windows_are_sorted_and_clamped_with_a_duration(metric):
    references = [{"qid": 1, "windows": [[6.0, 12.0]], "duration": 10.0}]
    result = metric.compute(predictions=[{"qid": 1, "window": [14.0, 6.0]}], references=references)
    assert result["mIoU"] == 100.0  # [6, 14] -> [6, 10]; GT [6, 12] -> [6, 10]
    assert (result["num_reversed"], result["num_clamped"], result["num_reference_clamped"]) == (1, 1, 1)
    kept = metric.compute(
        predictions=[{"qid": 1, "window": [14.0, 6.0]}], references=references, clamp_references=False
    )
    assert kept["mIoU"] == pytest.approx(100 * 4 / 6)


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


def _official_iou_iop(pred, gt):
    """doc-doc/NExT-GQA eval_ground.py's definitions: hull-union IoU, IoP over the prediction."""
    if pred[0] == pred[1]:
        return 0.0, float(gt[0] <= pred[0] <= gt[1])
    inter = min(pred[1], gt[1]) - max(pred[0], gt[0])
    hull = max(pred[1], gt[1]) - min(pred[0], gt[0])
    return max(inter / hull, 0.0), max(inter / (pred[1] - pred[0]), 0.0)


def test_nextgqa_val_shifted_predictions_match_the_official_definitions(metric, shared_data):
    references = _nextgqa_val(shared_data)
    rng = np.random.default_rng(1)
    predictions, ious, iops, grounded = [], [], [], []
    for i, ref in enumerate(references):
        start, end = ref["windows"][0]
        window = [start + rng.uniform(-3, 3), end + rng.uniform(-3, 3)] if i % 7 else [start, start]
        window = sorted(window)
        answer = ref["answer"] if i % 3 else "wrong"
        predictions.append({"qid": ref["qid"], "window": window, "answer": answer})
        scores = [_official_iou_iop(window, gt) for gt in ref["windows"]]
        ious.append(max(s[0] for s in scores))
        iops.append(max(s[1] for s in scores))
        grounded.append(answer == ref["answer"] and iops[-1] >= 0.5)
    # No durations: the official script neither clamps nor sorts.
    unclamped = [{k: v for k, v in ref.items() if k != "duration"} for ref in references]
    result = metric.compute(predictions=predictions, references=unclamped)
    assert result["mIoU"] == pytest.approx(100 * np.mean(ious))
    assert result["mIoP"] == pytest.approx(100 * np.mean(iops))
    assert result["IoP@0.5"] == pytest.approx(100 * np.mean(np.array(iops) >= 0.5))
    assert result["Acc@GQA"] == pytest.approx(100 * np.mean(grounded))
