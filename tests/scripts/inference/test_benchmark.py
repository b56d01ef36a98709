"""scripts/inference/benchmark.py (+ cli/infer.py): resumable, batched, sharded benchmark inference; QVHighlights /
NExT-GQA merging; errors."""

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from groundvts.processing.annotations import load_annotations
from groundvts.scripts.cli import infer
from groundvts.scripts.inference.benchmark import InferenceSettings, pending_records, run_provenance, run_shard
from groundvts.scripts.inference.generation import SamplingSettings
from groundvts.scripts.inference.benchmark_tasks import merge_row, parse_mcq_answer, passes_for
from groundvts.scripts.inference.evaluation import evaluate_predictions
from groundvts.scripts.inference.loading import load_groundvts
from groundvts.hub_configs import tiny_model_dir
from groundvts.scripts.inference.prediction_store import RowWriter, merge_files, part_path, part_paths, read_rows, repair
from inference_test_utils import default_script, script_answers, tiny_model_folder, tiny_videos

CHARADES = "a 1.0 3.5##a person opens a door.\nb 0.5 2.0##the man walks.\nc 2 6##a dog in the kitchen.\n" \
           "a 4 7.5##person sits down.\nd 0 2##the woman holds a cup.\n"
OPTIONS = ["dancing", "eating", "sleeping", "running", "reading"]


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Path:
    """Videos a-d and annotation files of the four benchmarks over them."""
    root = tmp_path_factory.mktemp("bench")
    (root / "videos").mkdir()
    for path in tiny_videos().values():
        shutil.copy(path, root / "videos" / path.name)
    (root / "sta_test.txt").write_text(CHARADES)
    (root / "Charades_v1_test.csv").write_text("id,length\na,8.0\nb,6.0\nc,10.0\nd,4.0\n")
    qvh = [
        dict(qid=1, query="a person opens a door", duration=8, vid="a", relevant_windows=[[0, 4]],
             relevant_clip_ids=[0, 1], saliency_scores=[[4, 4, 3], [2, 1, 2]]),
        dict(qid=2, query="the man walks", duration=6, vid="b", relevant_windows=[[2, 4]],
             relevant_clip_ids=[1], saliency_scores=[[1, 2, 4]]),
    ]
    (root / "qvh_val.jsonl").write_text("".join(json.dumps(r) + "\n" for r in qvh))
    header = "video_id,frame_count,width,height,question,answer,qid,type,a0,a1,a2,a3,a4\n"
    rows = [("a", 1, "eating"), ("b", 2, "dancing"), ("c", 3, "eating")]
    (root / "val.csv").write_text(header + "".join(
        f"{vid},30,64,48,what is the person doing,{answer},{qid},CW,{','.join(OPTIONS)}\n" for vid, qid, answer in rows
    ))
    gsub = {"a": {"duration": 8, "location": {"1": [[0.5, 2.5]]}, "fps": 4},
            "b": {"duration": 6, "location": {"2": [[4, 6]]}, "fps": 2},
            "c": {"duration": 10, "location": {"3": [[1, 3], [6, 9]]}, "fps": 3}}
    (root / "gsub_val.json").write_text(json.dumps(gsub))
    return root


def run(bench: Path, output: Path, *extra: str, benchmark: str = "charades_sta", annotations: str = "sta_test.txt"):
    argv = ["--benchmark", benchmark, "--annotations", str(bench / annotations), "--video-root", str(bench / "videos"),
            "--model", str(tiny_model_folder()), "--output", str(output), "--max-new-tokens", "5", "--no-progress"]
    return infer.main(argv + list(extra))


@pytest.fixture(scope="module")
def reference(bench, tmp_path_factory) -> bytes:
    """One uninterrupted run, one query at a time."""
    output = tmp_path_factory.mktemp("ref") / "preds.jsonl"
    assert run(bench, output, "--batch-size", "1") == 0
    return output.read_bytes()


def test_one_row_per_query_in_annotation_order(reference):
    rows = [json.loads(line) for line in reference.decode().splitlines()]
    assert [r["qid"] for r in rows] == ["a_0", "b_0", "c_0", "a_1", "d_0"]
    assert all(r["answers"]["mr"] is not None and r["window"] is None for r in rows)  # garbage answers: unparsed
    assert rows[0]["num_video_tokens"] == 32 and rows[0]["num_kept_tokens"] == 16
    assert len({r["answers"]["mr"] for r in rows}) > 1


def test_batched_run_equals_one_by_one(bench, reference, tmp_path):
    assert run(bench, tmp_path / "p.jsonl", "--batch-size", "3") == 0
    assert (tmp_path / "p.jsonl").read_bytes() == reference


def test_killed_run_resumes_without_duplicates_or_losses(bench, reference, tmp_path, capsys):
    output = tmp_path / "p.jsonl"
    assert run(bench, output, "--limit", "2") == 0  # stopped after 2 queries
    assert [r["qid"] for r in read_rows(output)[0]] == ["a_0", "b_0"]
    assert run(bench, output, "--batch-size", "2") == 0
    assert output.read_bytes() == reference
    assert "resuming: 2 of 5" in capsys.readouterr().err

    # Killed in the middle of writing the 4th row: the partial line is dropped and that query redone.
    lines = reference.split(b"\n")
    output.write_bytes(b"\n".join(lines[:3]) + b"\n" + lines[3][: len(lines[3]) // 2])
    assert run(bench, output, "--batch-size", "2") == 0
    assert output.read_bytes() == reference


def test_shards_merge_into_the_single_process_result(bench, reference, tmp_path):
    output = tmp_path / "p.jsonl"
    output.write_bytes(reference.split(b"\n", 1)[0] + b"\n")  # one query already done
    records = load_annotations("charades_sta", bench / "sta_test.txt").records
    model, processor = load_groundvts(tiny_model_folder(), device="cpu")
    settings = {"benchmark": "charades_sta", "passes": ["mr"], "keep_ratio": 0.5, "strategy": "token"}
    pending = pending_records(records, output, settings)
    assert [r.qid for r in pending] == ["b_0", "c_0", "a_1", "d_0"]
    provenance = run_provenance(str(tiny_model_folder()), model, SamplingSettings(max_new_tokens=5))
    run_settings = InferenceSettings("charades_sta", ("mr",), batch_size=2, max_new_tokens=5, provenance=provenance)
    for rank in (1, 0):  # order does not matter: each process writes its own part
        report = run_shard(model, processor, pending[rank::2], bench / "videos", part_path(output, rank),
                                 run_settings, progress=False)
        assert report.written == 2 and not report.errors
    assert [p.name for p in part_paths(output)] == ["p.rank0.jsonl", "p.rank1.jsonl"]
    assert merge_files(output, part_paths(output), [r.qid for r in records]) == 5
    assert output.read_bytes() == reference and not part_paths(output)


def test_two_process_launch_equals_the_single_process_result(bench, reference, tmp_path):
    """torchrun with 2 CPU processes (gloo): each appends to its part, the first merges after the barrier."""
    output = tmp_path / "p.jsonl"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "groundvts.scripts.cli", "infer", "--benchmark", "charades_sta",
               "--annotations", str(bench / "sta_test.txt"), "--video-root", str(bench / "videos"),
               "--model", str(tiny_model_folder()), "--output", str(output), "--max-new-tokens", "5", "--no-progress"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("5 of 5 predictions") == 1  # only the first process reports
    assert output.read_bytes() == reference and not part_paths(output)


def test_missing_video_is_reported_and_the_run_goes_on(bench, tmp_path):
    annotations = tmp_path / "sta_test.txt"
    annotations.write_text(CHARADES + "zz 1 2##nobody filmed this.\n")
    shutil.copy(bench / "Charades_v1_test.csv", tmp_path / "Charades_v1_test.csv")
    (tmp_path / "Charades_v1_test.csv").open("a").write("zz,5.0\n")
    output = tmp_path / "p.jsonl"
    assert infer.main(["--benchmark", "charades_sta", "--annotations", str(annotations), "--video-root",
                       str(bench / "videos"), "--model", str(tiny_model_folder()), "--output", str(output),
                       "--max-new-tokens", "2", "--batch-size", "4", "--no-progress"]) == 0
    assert len(read_rows(output)[0]) == 5
    errors = read_rows(tmp_path / "p.errors.jsonl")[0]
    assert [(e["qid"], e["stage"]) for e in errors] == [("zz_0", "video")]
    assert "zz" in errors[0]["file"] and "No video file" in errors[0]["reason"]


def test_unreadable_video_fails_only_its_query(bench, tmp_path):
    videos = tmp_path / "videos"
    shutil.copytree(bench / "videos", videos)
    (videos / "b.mp4").write_bytes(b"not a video")
    output = tmp_path / "p.jsonl"
    argv = ["--benchmark", "charades_sta", "--annotations", str(bench / "sta_test.txt"), "--video-root", str(videos),
            "--model", str(tiny_model_folder()), "--output", str(output), "--max-new-tokens", "2",
            "--batch-size", "3", "--no-progress"]
    assert infer.main(argv) == 0
    assert [r["qid"] for r in read_rows(output)[0]] == ["a_0", "c_0", "a_1", "d_0"]
    errors = read_rows(tmp_path / "p.errors.jsonl")[0]
    assert [e["qid"] for e in errors] == ["b_0"] and "b.mp4" in errors[0]["reason"]


@pytest.fixture
def scripted(monkeypatch):
    """infer.main with a model whose answers are fixed (default_script)."""
    def load(*args, **kwargs):
        model, processor = load_groundvts(tiny_model_folder(), device="cpu")
        return script_answers(model, processor, default_script), processor

    monkeypatch.setattr(infer, "load_groundvts", load)


def test_qvhighlights_rows_are_moment_detr_submissions(bench, tmp_path, scripted):
    output = tmp_path / "qvh.jsonl"
    assert run(bench, output, "--batch-size", "2", benchmark="qvhighlights", annotations="qvh_val.jsonl") == 0
    rows = read_rows(output)[0]
    assert [r["qid"] for r in rows] == ["1", "2"]
    assert rows[0]["pred_relevant_windows"] == [[1.0, 3.0, 1.0]]
    assert rows[0]["pred_saliency_scores"] == [0, 4, 0, 2]  # 8 s: very important 2-4 s, less important 6-8 s
    assert rows[1]["pred_saliency_scores"] == [0, 4, 0]
    assert rows[0]["vid"] == "a" and rows[0]["passes"] == ["mr", "hd"]
    results = evaluate_predictions("qvhighlights", bench / "qvh_val.jsonl", output)
    metrics = results["metrics"]
    # [1, 3] vs [0, 4]: IoU 0.5; vs [2, 4]: 1/3.
    assert metrics["MR-full-R1@0.5"] == 50.0 and metrics["MR-full-R1@0.7"] == 0.0
    # The top-scored clip (1) is Fair (>= 2) for some annotator in both queries.
    assert metrics["HL-min-Fair-Hit1"] == 100.0
    assert results["num_missing"] == 0

    # --task hd: saliency only; MR fields absent, so only HD is scored.
    assert run(bench, tmp_path / "hd.jsonl", benchmark="qvhighlights", annotations="qvh_val.jsonl", *["--task", "hd"]) == 0
    hd_rows = read_rows(tmp_path / "hd.jsonl")[0]
    assert "pred_relevant_windows" not in hd_rows[0] and hd_rows[0]["passes"] == ["hd"]
    hd_metrics = evaluate_predictions("qvhighlights", bench / "qvh_val.jsonl", tmp_path / "hd.jsonl")["metrics"]
    assert "HL-min-Fair-mAP" in hd_metrics and "MR-full-R1@0.5" not in hd_metrics


def test_nextgqa_rows_merge_grounding_and_answer(bench, tmp_path, scripted):
    output = tmp_path / "gqa.jsonl"
    assert run(bench, output, "--batch-size", "3", benchmark="nextgqa", annotations="val.csv") == 0
    rows = read_rows(output)[0]
    assert [r["qid"] for r in rows] == ["a_1", "b_2", "c_3"]
    assert all(r["window"] == [1.0, 3.0] and r["answer"] == "eating" and r["answer_index"] == 1 for r in rows)
    metrics = evaluate_predictions("nextgqa", bench / "val.csv", output)["metrics"]
    # IoP of [1, 3]: a vs [0.5, 2.5] 0.75, b vs [4, 6] 0, c vs [1, 3] 1.
    assert metrics["IoP@0.5"] == pytest.approx(200 / 3)
    assert metrics["Acc@QA"] == pytest.approx(200 / 3)  # a and c answer "eating"
    assert metrics["Acc@GQA"] == pytest.approx(200 / 3)


def test_merge_rows_from_fixed_texts():
    class Record:  # the fields merge_row reads from a GroundingAnnotation
        qid, video_id, query, duration = "7", "v", "q", 5.0
        options = tuple(OPTIONS)

    row = merge_row("qvhighlights", Record, {"mr": "It happens at 4 to 1 seconds.", "hd": "important from 0s to 2.5s"})
    assert row["pred_relevant_windows"] == [[1.0, 4.0, 1.0]]  # sorted
    assert row["pred_saliency_scores"] == [3, 3, 0]  # 5 s -> 3 clips; 0-2.5 s overlaps clips 0 and 1
    garbage = merge_row("qvhighlights", Record, {"mr": "no idea", "hd": "nothing"})
    assert garbage["pred_relevant_windows"] == [] and garbage["pred_saliency_scores"] == []  # no credit
    assert row["swapped"] and not row["clamped"] and row["raw_window"] == [4.0, 1.0]
    gqa = merge_row("nextgqa", Record, {"mr": "from 9s to 2s", "qa": "I think (C)."})
    assert gqa["window"] == [2.0, 5.0] and gqa["answer"] == "sleeping"  # clamped to the duration
    assert gqa["swapped"] and gqa["clamped"] and gqa["raw_window"] == [9.0, 2.0]
    unparsed = merge_row("nextgqa", Record, {"mr": "?", "qa": "?"})
    assert unparsed["window"] is None and unparsed["answer"] is None and unparsed["answer_index"] is None
    assert not unparsed["clamped"] and not unparsed["swapped"]
    plain = merge_row("charades_sta", Record, {"mr": "0 to 2"})
    assert plain["window"] == [0.0, 2.0] and not plain["clamped"] and "raw_window" not in plain
    highlights = merge_row("qvhighlights", Record, {"hd": "very important from 4s to 9s"})
    assert highlights["clamped"] and not highlights["swapped"] and "raw_window" not in highlights


def test_rows_flag_changed_spans_and_short_videos_are_warned_once(bench, tmp_path, monkeypatch, capsys):
    # Video a decodes to 8 s but is annotated as 20 s (e.g. a truncated download); b is as annotated.
    (tmp_path / "sta.txt").write_text("a 1 3##the door opens.\na 2 4##he sits.\nb 0 2##she walks.\n")
    (tmp_path / "lengths.csv").write_text("id,length\na,20.0\nb,6.0\n")

    def load(*args, **kwargs):
        model, processor = load_groundvts(tiny_model_folder(), device="cpu")
        return script_answers(model, processor, lambda prompt: "from -3s to 4s"), processor

    monkeypatch.setattr(infer, "load_groundvts", load)
    output = tmp_path / "p.jsonl"
    argv = ["--benchmark", "charades_sta", "--annotations", str(tmp_path / "sta.txt"), "--duration-file",
            str(tmp_path / "lengths.csv"), "--video-root", str(bench / "videos"), "--model", "tiny", "--output",
            str(output), "--max-new-tokens", "1", "--no-progress"]
    assert infer.main(argv) == 0
    rows = read_rows(output)[0]
    assert [r["window"] for r in rows] == [[0.0, 4.0]] * 3
    assert all(r["clamped"] and not r["swapped"] and r["raw_window"] == [-3.0, 4.0] for r in rows)
    assert [r["video_duration"] for r in rows] == [8.0, 8.0, 6.0]
    assert all(not r["frames_capped"] and r["num_frames"] == 2 * r["num_video_tokens"] // 4 for r in rows)
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1  # once per file, not per query
    assert "a.mp4" in warnings[0] and "8.00s" in warnings[0] and "20.00s" in warnings[0]


@pytest.mark.parametrize(
    "text, index",
    [("(B)", 1), ("B", 1), ("b) eating", 1), ("Option D", 3), ("The answer is E.", 4), ("C. sleeping", 2),
     ("they are reading a book", 4), ("Reading", 4), ("", None), ("no clue", None), ("(F)", None)],
)
def test_parse_mcq_answer(text, index):
    assert parse_mcq_answer(text, OPTIONS) == index


def test_passes_per_benchmark():
    assert passes_for("qvhighlights") == ("mr", "hd") and passes_for("nextgqa", "qa") == ("qa",)
    with pytest.raises(ValueError, match="does not apply"):
        passes_for("charades_sta", "hd")


def test_store_tolerates_only_a_torn_last_line(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"qid": 1}\n{"qid": 2}\n{"qid"')
    assert [r["qid"] for r in read_rows(path)[0]] == [1, 2]
    assert repair(path) == len('{"qid"') and path.read_text() == '{"qid": 1}\n{"qid": 2}\n'
    path.write_text('{"qid": 1}\n{"qid": 2}')  # complete row, newline missing: kept, newline added
    assert len(read_rows(path)[0]) == 2 and repair(path) == 0 and path.read_text().endswith("}\n")
    path.write_text('{"qid": 1}\nbroken\n{"qid": 3}\n')
    with pytest.raises(ValueError, match="line 2"):
        read_rows(path)


def test_bad_input_exits_2_with_a_message(bench, tmp_path, capsys):
    model = str(tiny_model_folder())
    base = ["--video-root", str(bench / "videos"), "--model", model, "--output", str(tmp_path / "p.jsonl")]
    sta = ["--benchmark", "charades_sta", "--annotations", str(bench / "sta_test.txt")]
    (tmp_path / "lonely.txt").write_text(CHARADES)  # no Charades csv next to it
    (tmp_path / "notgroundvts").mkdir()
    (tmp_path / "notgroundvts" / "config.json").write_text('{"model_type": "qwen2_5_vl"}')
    made_with_half = tmp_path / "half.jsonl"
    made_with_half.write_text(json.dumps({"qid": "a_0", "benchmark": "charades_sta", "passes": ["mr"],
                                          "keep_ratio": 0.5, "strategy": "token"}) + "\n")
    corrupt = tmp_path / "corrupt.jsonl"
    corrupt.write_text('{"qid": "a_0"}\nnot json\n{"qid": "b_0"}\n')
    cases = {
        "unknown benchmark": (["--benchmark", "mystery", "--annotations", str(bench / "sta_test.txt"), *base], "invalid choice"),
        "missing video root": ([*sta, *base, "--video-root", str(tmp_path / "nowhere")], "video folder"),
        "missing annotations": (["--benchmark", "charades_sta", "--annotations", str(tmp_path / "x.txt"), *base], "does not exist"),
        "no duration": (["--benchmark", "charades_sta", "--annotations", str(tmp_path / "lonely.txt"), *base], "Charades_v1"),
        "not groundvts": ([*sta, *base, "--model", str(tmp_path / "notgroundvts")], "not a GroundVTS model"),
        "task": ([*sta, *base, "--task", "hd"], "does not apply"),
        "limit": ([*sta, *base, "--limit", "0"], "--limit"),
        "settings changed": ([*sta, *base, "--output", str(made_with_half), "--keep-ratio", "0.25"], "keep_ratio=0.5"),
        "corrupt output": ([*sta, *base, "--output", str(corrupt)], "line 2"),
    }
    for name, (argv, message) in cases.items():
        assert infer.main(argv) == 2, name
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (name, err)
    assert not (tmp_path / "p.jsonl").exists()


def test_without_model_the_bundled_tiny_runs(bench, tmp_path, capsys):
    argv = ["--benchmark", "charades_sta", "--annotations", str(bench / "sta_test.txt"), "--video-root",
            str(bench / "videos"), "--output", str(tmp_path / "p.jsonl"), "--max-new-tokens", "3", "--no-progress",
            "--limit", "1"]
    assert infer.main(argv) == 0
    captured = capsys.readouterr()
    assert "bundled GroundVTS-tiny" in captured.err and "1 of 1 predictions" in captured.out
    row = read_rows(tmp_path / "p.jsonl")[0][0]
    assert Path(row["model"]) == tiny_model_dir() and row["model_fingerprint"].startswith("sha256:")


def test_rows_record_model_and_sampling_and_a_resume_with_others_is_refused(bench, tmp_path, capsys):
    output = tmp_path / "p.jsonl"
    assert run(bench, output, "--limit", "2") == 0
    rows = read_rows(output)[0]
    assert {row["model"] for row in rows} == {str(tiny_model_folder())}
    assert rows[0]["sampling"] == {"fps": None, "num_frames": None, "max_pixels": None, "max_new_tokens": 5}
    # The same folder with other weights: the fingerprint changes, the path does not.
    retrained = tmp_path / "retrained"
    shutil.copytree(tiny_model_folder(), retrained)
    assert run(bench, tmp_path / "r.jsonl", "--limit", "1") == 0
    moved = tmp_path / "r.jsonl"
    moved.write_text(moved.read_text().replace(str(tiny_model_folder()), str(retrained)))
    weights = retrained / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-100] ^= 0xFF
    weights.write_bytes(bytes(data))
    changed = {
        "another model": (["--model", str(tmp_path / "retrained")], "model="),
        "other sampling": (["--num-frames", "4"], "sampling="),
        "other answer length": (["--max-new-tokens", "7"], "sampling="),
    }
    for name, (extra, message) in changed.items():
        assert run(bench, output, *extra) == 2, name
        err = capsys.readouterr().err
        assert message in err and "mix two runs" in err and "Traceback" not in err, (name, err)
    argv = ["--benchmark", "charades_sta", "--annotations", str(bench / "sta_test.txt"), "--video-root",
            str(bench / "videos"), "--model", str(retrained), "--output", str(moved), "--max-new-tokens", "5",
            "--no-progress"]
    assert infer.main(argv) == 2  # same path, other weights
    assert "model_fingerprint=" in capsys.readouterr().err
    assert len(read_rows(output)[0]) == 2  # nothing was mixed in


def test_read_only_output_fails_before_the_model_loads(bench, tmp_path, capsys, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    monkeypatch.setattr(infer, "load_groundvts", lambda *a, **k: pytest.fail("the model loaded"))
    try:
        assert run(bench, locked / "sub" / "p.jsonl") == 2
        err = capsys.readouterr().err
        assert "--output" in err and "read-only" in err and "Traceback" not in err
        assert run(bench, tmp_path / "p.jsonl", "--errors", str(locked / "e.jsonl")) == 2
        assert "--errors" in capsys.readouterr().err
    finally:
        locked.chmod(0o755)


def test_a_full_disk_keeps_the_written_rows_and_says_how_to_resume(bench, reference, tmp_path, capsys, monkeypatch):
    output = tmp_path / "p.jsonl"
    real_write = RowWriter.write

    def write_until_full(self, row):
        if self.path == output and len(read_rows(output)[0]) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(self, row)

    monkeypatch.setattr(RowWriter, "write", write_until_full)
    assert run(bench, output) == 2
    err = capsys.readouterr().err
    assert "no space left" in err and "rerun the same command" in err and "2 rows" in err and "Traceback" not in err
    assert len(read_rows(output)[0]) == 2
    monkeypatch.setattr(RowWriter, "write", real_write)
    assert run(bench, output) == 0  # resumes
    assert output.read_bytes() == reference
