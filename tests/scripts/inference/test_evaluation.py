"""scripts/inference/evaluation.py: metric inputs from annotations + prediction rows, missing rows as failures,
the results JSON, the golden QVHighlights numbers on the real files, and bad input."""

import json
from pathlib import Path

import pytest

from groundvts.scripts.cli import evaluate as ev
from groundvts.scripts.inference.evaluation import evaluate_predictions
from shared_data import SHARED_DATA as SHARED, require_shared

STA = "a 1.0 3.0##a person opens a door.\nb 0 2##the man walks.\nc 2 6##a dog in the kitchen.\nd 0 4##sits.\n"


@pytest.fixture
def sta(tmp_path) -> Path:
    (tmp_path / "sta_test.txt").write_text(STA)
    (tmp_path / "Charades_v1_test.csv").write_text("id,length\na,8.0\nb,6.0\nc,10.0\nd,4.0\n")
    return tmp_path / "sta_test.txt"


def write_rows(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_moment_metrics_count_missing_and_unparsed_as_failures(sta, tmp_path, capsys):
    preds = write_rows(tmp_path / "p.jsonl", [
        {"qid": "a_0", "benchmark": "charades_sta", "window": [1.0, 3.0]},  # IoU 1
        {"qid": "b_0", "benchmark": "charades_sta", "window": [1.0, 2.0]},  # IoU 0.5
        {"qid": "c_0", "benchmark": "charades_sta", "window": None},  # unparsed
        {"qid": "zz_9", "benchmark": "charades_sta", "window": [0, 1]},  # not in the annotations
    ])  # d_0 missing
    out = tmp_path / "results" / "r.json"
    assert ev.main(["--benchmark", "charades_sta", "--annotations", str(sta), "--predictions", str(preds),
                    "--output", str(out)]) == 0
    captured = capsys.readouterr()
    assert "1 of 4 queries have no prediction" in captured.err
    assert "R1@0.5" in captured.out and "mIoU" in captured.out
    results = json.loads(out.read_text())
    assert results["benchmark"] == "charades_sta" and results["split"] == "test"
    assert (results["num_queries"], results["num_predictions"], results["num_missing"]) == (4, 3, 1)
    assert results["num_unknown_predictions"] == 1
    metrics = results["metrics"]
    assert metrics["R1@0.3"] == 50.0 and metrics["R1@0.5"] == 50.0 and metrics["R1@0.7"] == 25.0
    assert metrics["mIoU"] == pytest.approx(37.5)
    assert metrics["num_unparsed"] == 2 and metrics["num_queries"] == 4


def test_nextgqa_metrics(tmp_path):
    header = "video_id,frame_count,width,height,question,answer,qid,type,a0,a1,a2,a3,a4\n"
    (tmp_path / "test.csv").write_text(header + "v,1,1,1,why,yes,1,CW,no,yes,x,y,z\nw,1,1,1,how,z,2,CH,no,yes,x,y,z\n")
    (tmp_path / "gsub_test.json").write_text(json.dumps({
        "v": {"duration": 10, "location": {"1": [[0, 4]]}, "fps": 30},
        "w": {"duration": 10, "location": {"2": [[5, 10]]}, "fps": 30},
    }))
    preds = write_rows(tmp_path / "p.jsonl", [
        {"qid": "v_1", "window": [2.0, 4.0], "answer": "yes"},  # IoU 0.5, IoP 1, right
        {"qid": "w_2", "window": [0.0, 6.0], "answer": "no"},  # IoU 0.1, IoP 1/6, wrong
    ])
    results = evaluate_predictions("nextgqa", tmp_path / "test.csv", preds)
    metrics = results["metrics"]
    for key in ("mIoU", "mIoP", "IoU@0.3", "IoU@0.5", "IoP@0.3", "IoP@0.5", "Acc@QA", "Acc@GQA"):
        assert key in metrics, key
    assert metrics["Acc@QA"] == 50.0 and metrics["Acc@GQA"] == 50.0 and metrics["IoU@0.5"] == 50.0
    assert metrics["mIoU"] == pytest.approx(30.0)

    # No answer parsed and one row missing: accuracy is still reported, as 0, not left out.
    write_rows(preds, [{"qid": "v_1", "window": None, "answer": None, "passes": ["mr", "qa"]}])
    results = evaluate_predictions("nextgqa", tmp_path / "test.csv", preds)
    assert results["metrics"]["Acc@QA"] == 0.0 and results["metrics"]["Acc@GQA"] == 0.0
    assert results["num_missing"] == 1 and results["metrics"]["num_unparsed"] == 2


def test_qvhighlights_golden_numbers_through_the_command(tmp_path):
    """moment_detr's sample predictions on the real val file give its published metrics."""
    data = require_shared(SHARED / "qvhighlights")
    out = tmp_path / "r.json"
    assert ev.main(["--benchmark", "qvhighlights", "--annotations", str(data / "highlight_val_release.jsonl"),
                    "--predictions", str(data / "sample_val_preds.jsonl"), "--output", str(out)]) == 0
    results = json.loads(out.read_text())
    assert results["num_predictions"] == 1550 and results["num_missing"] == 0
    golden = json.loads((data / "sample_val_preds_metrics_raw.json").read_text())
    metrics = results["metrics"]
    assert metrics["MR-full-R1@0.5"] == golden["brief"]["MR-full-R1@0.5"] == 53.94
    assert metrics["MR-full-mAP"] == golden["brief"]["MR-full-mAP"]
    assert metrics["HL-min-VeryGood-mAP"] == golden["brief"]["HL-min-VeryGood-mAP"]
    assert metrics["HL-min-VeryGood-Hit1"] == golden["brief"]["HL-min-VeryGood-Hit1"]


def test_bad_input_exits_2(sta, tmp_path, capsys):
    write_rows(tmp_path / "other.jsonl", [{"qid": "a_0", "benchmark": "qvhighlights", "window": [0, 1]}])
    (tmp_path / "corrupt.jsonl").write_text('{"qid": "a_0"}\n{oops\n{"qid": "b_0"}\n')
    no_gt = write_rows(tmp_path / "highlight_test_release.jsonl", [{"qid": 1, "query": "q", "duration": 10, "vid": "v"}])
    base = ["--benchmark", "charades_sta", "--annotations", str(sta)]
    cases = {
        "missing predictions": ([*base, "--predictions", str(tmp_path / "none.jsonl")], "does not exist"),
        "other benchmark": ([*base, "--predictions", str(tmp_path / "other.jsonl")], "not 'charades_sta'"),
        "corrupt": ([*base, "--predictions", str(tmp_path / "corrupt.jsonl")], "line 2"),
        "no ground truth": (["--benchmark", "qvhighlights", "--annotations", str(no_gt), "--predictions",
                             str(tmp_path / "other.jsonl")], "no ground truth"),
        "unknown benchmark": (["--benchmark", "kinetics", "--annotations", str(sta), "--predictions", "x"], "invalid choice"),
    }
    for name, (argv, message) in cases.items():
        assert ev.main(argv) == 2, name
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (name, err)


def test_duplicate_qids_are_an_error_like_in_the_metric(sta, tmp_path, capsys):
    preds = write_rows(tmp_path / "p.jsonl", [
        {"qid": "a_0", "window": [1.0, 3.0]}, {"qid": "b_0", "window": [0, 2]}, {"qid": "a_0", "window": [5.0, 6.0]},
    ])
    assert ev.main(["--benchmark", "charades_sta", "--annotations", str(sta), "--predictions", str(preds)]) == 2
    err = capsys.readouterr().err
    assert "qid a_0 appears twice (rows 1 and 3)" in err and "Traceback" not in err


def test_skipped_rows_unknown_qids_and_conventions_are_printed(sta, tmp_path, capsys):
    sta.write_text(STA + "e 5 2##reversed.\nzz 0 1##no such video.\n")  # 2 rows the loader skips
    preds = write_rows(tmp_path / "p.jsonl", [{"qid": "a_0", "window": [1.0, 3.0]}, {"qid": "x_9", "window": [0, 1]}])
    out = tmp_path / "r.json"
    assert ev.main(["--benchmark", "charades_sta", "--annotations", str(sta), "--predictions", str(preds),
                    "--output", str(out)]) == 0
    captured = capsys.readouterr()
    assert "2 rows of" in captured.err and "were skipped" in captured.err
    assert "1 predictions have qids that are not in the annotations (e.g. x_9)" in captured.err
    assert "convention eval_auto" in captured.out
    assert "annotation rows skipped: 2, predictions for unknown qids: 1" in captured.out
    results = json.loads(out.read_text())
    assert results["convention"] == "eval_auto" and results["unknown_qids"] == ["x_9"]
    assert results["num_annotation_rows_skipped"] == 2 and sum(results["skipped_reasons"].values()) == 2
    assert results["conventions"] == {key: "eval_auto" for key in ("R1@0.3", "R1@0.5", "R1@0.7", "mIoU")}


def test_the_answer_as_given_is_scored_against_the_file_as_given(sta, tmp_path):
    """eval_auto scores the model's own numbers (`raw_window`, before the parser sorted or clamped them) against
    the annotation's windows before loading clamped them; the clamped convention clamps both itself."""
    (tmp_path / "sta_test.txt").write_text("a 1.0 9.0##past the end.\nb 0 2##reversed answer.\n")
    preds = write_rows(tmp_path / "p.jsonl", [
        {"qid": "a_0", "window": [1.0, 8.0], "clamped": True, "raw_window": [1.0, 9.5]},  # video a is 8 s long
        {"qid": "b_0", "window": [0.0, 2.0], "swapped": True, "raw_window": [2.0, 0.0]},
    ])
    paper = evaluate_predictions("charades_sta", sta, preds)
    assert paper["metrics"]["mIoU"] == pytest.approx(100 * 8 / 8.5 / 2, abs=1e-4)  # [1, 9.5] vs [1, 9]; 0
    assert paper["metrics"]["num_reversed"] == 1 and paper["metrics"]["num_reference_clamped"] == 1
    clamped = evaluate_predictions("charades_sta", sta, preds, convention="clamped")
    assert clamped["metrics"]["mIoU"] == pytest.approx(100.0) and clamped["convention"] == "clamped"
    lighthouse = evaluate_predictions("charades_sta", sta, preds, convention="lighthouse")
    assert lighthouse["metrics"]["mIoU"] == pytest.approx(100 * 7 / 8.5 / 2, abs=1e-4)  # [1, 9.5] vs [1, 8]


def test_charades_sta_reference_ends_past_the_video_are_not_clamped_by_default(tmp_path):
    """The real test file: 562 ends run past the Charades csv length. GroundVTS eval_auto keeps them, so a
    prediction clamped to the video is not perfect; lighthouse's clipped references make it so."""
    data = require_shared(SHARED / "charades_sta")
    from groundvts.processing.annotations import load_annotations

    records = load_annotations("charades_sta", data / "charades_sta_test.txt").records
    preds = write_rows(tmp_path / "p.jsonl", [{"qid": r.qid, "window": list(r.windows[0])} for r in records])
    paper = evaluate_predictions("charades_sta", data / "charades_sta_test.txt", preds)
    assert paper["metrics"]["num_reference_clamped"] == 562
    assert paper["metrics"]["mIoU"] < 99.9 and paper["metrics"]["R1@0.5"] == 100.0
    lighthouse = evaluate_predictions("charades_sta", data / "charades_sta_test.txt", preds, convention="lighthouse")
    assert lighthouse["metrics"]["mIoU"] == pytest.approx(100.0)


def test_qvhighlights_missing_or_unparsed_highlights_earn_no_credit(tmp_path):
    rows = [{"qid": 1, "query": "q", "duration": 8, "vid": "v", "relevant_windows": [[0, 2]],
             "relevant_clip_ids": [0], "saliency_scores": [[4, 4, 4]]},
            {"qid": 2, "query": "q", "duration": 8, "vid": "w", "relevant_windows": [[0, 2]],
             "relevant_clip_ids": [0], "saliency_scores": [[4, 4, 4]]}]
    annotations = write_rows(tmp_path / "qvh_val.jsonl", rows)
    preds = write_rows(tmp_path / "p.jsonl", [{"qid": 1, "pred_saliency_scores": []}])  # unparsed; 2 missing
    metrics = evaluate_predictions("qvhighlights", annotations, preds)["metrics"]
    assert metrics["HL-num-empty"] == 2
    assert metrics["HL-min-Fair-Hit1"] == 0.0 and metrics["HL-min-Fair-mAP"] == 0.0


def test_nextgqa_answers_are_option_indices_and_outside_windows_score_zero(tmp_path):
    header = "video_id,frame_count,width,height,question,answer,qid,type,a0,a1,a2,a3,a4\n"
    (tmp_path / "test.csv").write_text(header + "v,1,1,1,why,yes,1,CW,no,yes,x,y,z\nw,1,1,1,how,z,2,CH,no,yes,x,y,z\n")
    (tmp_path / "gsub_test.json").write_text(json.dumps({
        "v": {"duration": 10, "location": {"1": [[6, 10]]}, "fps": 30},
        "w": {"duration": 10, "location": {"2": [[0, 4]]}, "fps": 30},
    }))
    preds = write_rows(tmp_path / "p.jsonl", [
        # The model answered 12-15 s; the parser clamped it to the point [10, 10], which touches the truth.
        {"qid": "v_1", "window": [10.0, 10.0], "clamped": True, "raw_window": [12.0, 15.0], "answer_index": 1},
        {"qid": "w_2", "window": [0.0, 4.0], "answer": " Z"},  # text only: matched to option 4
    ])
    for convention in ("eval_ground", "clamped"):
        results = evaluate_predictions("nextgqa", tmp_path / "test.csv", preds, convention=convention)
        metrics = results["metrics"]
        assert metrics["mIoP"] == 50.0 and metrics["IoP@0.5"] == 50.0, convention  # v_1 scores 0
        assert metrics["Acc@QA"] == 100.0 and metrics["Acc@GQA"] == 50.0
    assert results["metrics"]["num_outside"] == 1
