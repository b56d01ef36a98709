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
