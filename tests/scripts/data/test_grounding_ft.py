"""scripts/data/grounding_ft.py: the full Grounding-FT build on the real train files, the Arrow round trip through
the chat templates, and the `groundvts build-data` command (scripts/cli/build_data.py) on small copies."""

import json
import random
from pathlib import Path

import pytest

from shared_data import SHARED_DATA, require_shared
from datasets import load_from_disk

from groundvts.processing.prompts import HD_TEMPLATES, MR_TEMPLATES, training_prompt_and_videos
from groundvts.processing.tiny import build_tiny_internvl_processor, build_tiny_qwen2_5_vl_processor, write_test_video
from groundvts.scripts.cli import build_data as build
from groundvts.scripts.data import grounding_ft
from groundvts.scripts.data.grounding_ft import GroundingSource, build_grounding_ft, build_grounding_records


DATA = SHARED_DATA


@pytest.fixture(autouse=True)
def _needs_shared_data():
    require_shared(DATA)


CHARADES_TRAIN = DATA / "charades_sta" / "charades_sta_train.txt"
QVH_TRAIN = DATA / "qvhighlights" / "highlight_train_release.jsonl"
ANET_TRAIN = DATA / "activitynet_captions" / "train.json"


VIDEO_FOLDERS = {"charades_sta": "charades", "qvhighlights": "qvh", "activitynet_captions": "anet"}


def _real_sources() -> list[GroundingSource]:
    files = {"charades_sta": CHARADES_TRAIN, "qvhighlights": QVH_TRAIN, "activitynet_captions": ANET_TRAIN}
    return [GroundingSource(name, file, f"videos/{VIDEO_FOLDERS[name]}") for name, file in files.items()]


@pytest.fixture(scope="module")
def real_build():
    require_shared(DATA)  # module fixtures are set up before the autouse function fixture above
    return build_grounding_ft(_real_sources())


def _drop_none(messages):
    return [
        {"role": m["role"], "content": [{k: v for k, v in block.items() if v is not None} for block in m["content"]]}
        for m in messages
    ]


def _instruction(row) -> str:
    return row["messages"][0]["content"][1]["text"]


def _small_copies(tmp_path: Path, rows: int = 60) -> dict[str, Path]:
    """First rows of each real train file (4 Charades lines plus a reversed one at line 3)."""
    charades = CHARADES_TRAIN.read_text().splitlines()[:4]
    charades.insert(2, "AO8RW 9.0 3.0##a reversed line.")
    files = {
        "charades": tmp_path / "charades_sta_train.txt",
        "qvh": tmp_path / "highlight_train_release.jsonl",
        "anet": tmp_path / "train.json",
    }
    files["charades"].write_text("\n".join(charades) + "\n")
    (tmp_path / "Charades_v1_train.csv").write_text((DATA / "charades_sta" / "Charades_v1_train.csv").read_text())
    files["qvh"].write_text("\n".join(QVH_TRAIN.read_text().splitlines()[:rows]))
    anet = json.loads(ANET_TRAIN.read_text())
    files["anet"].write_text(json.dumps({key: anet[key] for key in list(anet)[:rows]}))
    return files


def test_full_build_counts_match_the_raw_files(real_build):
    dataset, skipped = real_build
    # Independent counts straight from the raw files (a window with start > end is a bad row).
    charades_lines = CHARADES_TRAIN.read_text().splitlines()
    charades_spans = [line.split("##")[0].split()[1:3] for line in charades_lines]
    charades_ok = sum(1 for s, e in charades_spans if float(s) <= float(e))
    qvh_rows = [json.loads(line) for line in QVH_TRAIN.read_text().splitlines()]
    anet = json.loads(ANET_TRAIN.read_text())
    anet_spans = [span for entry in anet.values() for span in entry["timestamps"]]
    anet_ok = sum(1 for s, e in anet_spans if s <= e)
    counts = {}
    for benchmark, task in zip(dataset["benchmark"], dataset["task"]):
        counts[benchmark, task] = counts.get((benchmark, task), 0) + 1
    assert counts == {
        ("charades_sta", "mr"): charades_ok,
        ("qvhighlights", "mr"): sum(len(row["relevant_windows"]) for row in qvh_rows),
        ("qvhighlights", "hd"): len(qvh_rows),
        ("activitynet_captions", "mr"): anet_ok,
    }
    assert len(dataset) == 69_844  # the paper's "Grounding-FT 70K"
    # Skipped rows: exactly the reversed spans, each with its file and line.
    reversed_lines = [i for i, (s, e) in enumerate(charades_spans, start=1) if float(s) > float(e)]
    assert [(row.file, row.line) for row in skipped if row.file == str(CHARADES_TRAIN)] == [
        (str(CHARADES_TRAIN), line) for line in reversed_lines
    ]
    assert len(skipped) == len(charades_spans) - charades_ok + len(anet_spans) - anet_ok == 6
    assert all(row.reason.startswith("reversed window") for row in skipped)


def test_full_build_rows_hold_the_paper_prompts_and_answers(real_build):
    dataset, _ = real_build
    mr_prefixes = {t.split("{query}")[0].removeprefix("<video>") for t in MR_TEMPLATES}
    hd_prefixes = {t.split("{query}")[0].removeprefix("<video>") for t in HD_TEMPLATES}
    sample = dataset.select(range(0, len(dataset), 997))
    for row in sample:
        user, assistant = row["messages"]
        assert user["content"][0] == {"type": "video", "text": None}
        mr = row["task"] == "mr"
        prefixes, answer_start = (mr_prefixes, "from ") if mr else (hd_prefixes, "The highlights are: ")
        assert any(_instruction(row).startswith(p) for p in prefixes)
        assert assistant["content"][0]["text"].startswith(answer_start)
        assert row["videos"] == [f"videos/{VIDEO_FOLDERS[row['benchmark']]}/{row['video_id']}.mp4"]
        assert row["source"].startswith(str(DATA))
    first_charades = dataset[0]
    video, start, end = CHARADES_TRAIN.read_text().splitlines()[0].split("##")[0].split()
    assert first_charades["video_id"] == video
    assert first_charades["messages"][1]["content"][0]["text"] == f"from {float(start):.1f}s to {float(end):.1f}s"
    assert len({_instruction(row).split(":")[0] for row in sample}) > 5  # templates vary


def test_templates_follow_the_seed(tmp_path):
    files = _small_copies(tmp_path)
    sources = [
        GroundingSource("qvhighlights", files["qvh"], "v"), GroundingSource("activitynet_captions", files["anet"], "a")
    ]
    first, _ = build_grounding_records(sources, seed=42)
    again, _ = build_grounding_records(sources, seed=42)
    other, _ = build_grounding_records(sources, seed=7)
    assert len(first) > 100
    assert [_instruction(r) for r in first] == [_instruction(r) for r in again]
    assert [_instruction(r) for r in first] != [_instruction(r) for r in other]
    # Exactly one draw per sample from random.Random(seed), in build order.
    rng = random.Random(42)
    expected = [
        rng.choice(MR_TEMPLATES if r["task"] == "mr" else HD_TEMPLATES).split("{query}")[0].removeprefix("<video>")
        for r in first
    ]
    assert all(_instruction(r).startswith(p) for r, p in zip(first, expected))


def test_rows_read_back_from_disk_render_like_the_records(tmp_path):
    """Arrow adds `text: None` to the video block; the chat templates render it the same, and dropping the None
    gives back the original record."""
    files = _small_copies(tmp_path)
    qvh = GroundingSource("qvhighlights", files["qvh"], "v")
    records, _ = build_grounding_records([qvh, GroundingSource("activitynet_captions", files["anet"], "a")])
    assert {r["task"] for r in records} == {"mr", "hd"}
    dataset = grounding_ft.Dataset.from_list(records, features=grounding_ft.FEATURES)
    dataset.save_to_disk(str(tmp_path / "ds"))
    loaded = load_from_disk(str(tmp_path / "ds"))
    processors = [build_tiny_qwen2_5_vl_processor(), build_tiny_internvl_processor()]
    for record, row in zip(records, loaded):
        assert _drop_none(row["messages"]) == record["messages"]
        assert {k: v for k, v in row.items() if k != "messages"} == {k: v for k, v in record.items() if k != "messages"}
        for processor in processors:
            assert training_prompt_and_videos(processor, row) == training_prompt_and_videos(processor, record)


def test_cli_writes_the_dataset_and_the_skipped_rows(tmp_path, capsys):
    files = _small_copies(tmp_path)
    out = tmp_path / "out" / "grounding_ft"
    argv = [
        "--output", str(out), "--charades", str(files["charades"]), "--qvhighlights", str(files["qvh"]),
        "--activitynet", str(files["anet"]), "--video-root", str(tmp_path / "videos"), "--jsonl",
        str(tmp_path / "gft.jsonl"), "--show-skipped", "0",
    ]
    assert build.main(argv) == 0
    captured = capsys.readouterr()
    dataset = load_from_disk(str(out))
    qvh_rows = [json.loads(line) for line in files["qvh"].read_text().splitlines()]
    anet = json.loads(files["anet"].read_text())
    expected = 4 + sum(len(r["relevant_windows"]) for r in qvh_rows) + len(qvh_rows) + sum(
        len(e["timestamps"]) for e in anet.values()
    )
    assert len(dataset) == expected
    skipped = [json.loads(line) for line in (out.parent / "skipped.jsonl").read_text().splitlines()]
    assert skipped == [{"file": str(files["charades"]), "line": 3, "reason": "reversed window: start 9.0 > end 3.0"}]
    assert "Skipped rows: 1" in captured.out and "reversed window" in captured.out
    assert "1 more skipped rows" in captured.err
    exported = [json.loads(line) for line in (tmp_path / "gft.jsonl").read_text().splitlines()]
    assert [_drop_none(row["messages"]) for row in dataset] == [row["messages"] for row in exported]
    # Same seed -> same dataset; a non-empty output folder is refused without --overwrite.
    assert build.main(argv) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert build.main(argv + ["--overwrite", "--tasks", "hd"]) == 0
    assert set(load_from_disk(str(out))["task"]) == {"hd"}


def test_cli_check_videos_and_a_row_through_the_processor(tmp_path, capsys):
    files = _small_copies(tmp_path)
    video_id = CHARADES_TRAIN.read_text().splitlines()[0].split()[0]
    (tmp_path / "videos").mkdir()
    video = write_test_video(tmp_path / "videos" / f"{video_id}.mp4", num_frames=8, fps=2.0)
    out = tmp_path / "ds"
    argv = ["--output", str(out), "--charades", str(files["charades"]), "--charades-videos", str(tmp_path / "videos"),
            "--check-videos"]
    assert build.main(argv) == 0
    dataset = load_from_disk(str(out))
    assert set(dataset["video_id"]) == {video_id} and set(map(tuple, dataset["videos"])) == {(str(video),)}
    skipped = [json.loads(line) for line in (tmp_path / "skipped.jsonl").read_text().splitlines()]
    lines = files["charades"].read_text().splitlines()
    missing = [i for i, line in enumerate(lines, start=1) if not line.startswith(video_id)]
    assert sorted((row["line"], row["reason"].split(":")[0]) for row in skipped) == sorted(
        [(3, "reversed window")] + [(i, "missing video") for i in missing if i != 3]
    )
    assert "skipped" in capsys.readouterr().err
    processor = build_tiny_qwen2_5_vl_processor()
    text, videos = training_prompt_and_videos(processor, dataset[0])
    answer = dataset[0]["messages"][1]["content"][0]["text"]
    assert text.count("<|video_pad|>") == 1 and text.endswith(f"<|im_start|>assistant\n{answer}<|im_end|>\n")
    inputs = processor(text=[text], videos=videos)
    instruction_ids = processor.tokenizer(_instruction(dataset[0]), add_special_tokens=False)["input_ids"]
    assert [int(t) for t, m in zip(inputs["input_ids"][0], inputs["query_mask"][0]) if int(m)] == instruction_ids
    assert inputs["pixel_values_videos"].shape[0] > 0


def test_cli_bad_input_returns_2(tmp_path, capsys):
    assert build.main(["--output", str(tmp_path / "o"), "--charades", str(tmp_path / "nope.txt"),
                       "--video-root", "v"]) == 2
    assert "nope.txt" in capsys.readouterr().err
    assert build.main(["--output", str(tmp_path / "o")]) == 2
    assert "at least one annotation file" in capsys.readouterr().err
    assert build.main(["--output", str(tmp_path / "o"), "--qvhighlights", str(QVH_TRAIN)]) == 2
    assert "--qvhighlights-videos" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    with pytest.raises(ValueError, match="NExT-GQA"):
        build_grounding_records([GroundingSource("nextgqa", DATA / "nextgqa" / "val.csv", "v")])
