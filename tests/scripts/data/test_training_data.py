"""scripts/data/training_data.py + record_checks.py: training records checked before step 1, by file:line."""

import json

import pytest

from groundvts.processing.prompts import build_mr_conversation
from groundvts.processing.tiny import write_test_video
from groundvts.scripts.data.record_checks import check_records, read_records
from groundvts.scripts.data.training_data import TrainingDataError, load_training_dataset


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return str(write_test_video(tmp_path_factory.mktemp("v") / "clip.mp4", num_frames=8, fps=4.0))


def _jsonl(path, rows):
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows))
    return path


def test_every_bad_record_is_listed_with_its_line_before_training(tmp_path, video):
    good = build_mr_conversation("a man walks", 0.5, 1.5, video, template_index=0)
    no_answer = {**good, "messages": good["messages"][:1]}
    no_block = {**good, "messages": [{"role": "user", "content": "when does a man walk?"}, good["messages"][1]]}
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all" * 50)
    rows = [good, no_answer, no_block, {**good, "videos": [str(tmp_path / "gone.mp4")]},
            {**good, "videos": [str(broken)]}, "{not json", "", good]
    data = _jsonl(tmp_path / "mine.jsonl", rows)
    with pytest.raises(TrainingDataError) as error:
        load_training_dataset({"path": str(data)})
    message = str(error.value)
    assert "5 of 7 training records" in message and "data.bad_records=skip" in message
    lines = {int(text.split("mine.jsonl:")[1].split(":")[0]): text for text in message.splitlines() if "jsonl:" in text}
    for line, reason in [(2, "no answer"), (3, "'video'} block"), (4, "does not exist"), (5, "does not decode"),
                         (6, "not JSON")]:
        assert reason in lines[line], (line, message)
    assert set(lines) == {2, 3, 4, 5, 6}
    notes = []
    dataset = load_training_dataset({"path": str(data), "bad_records": "skip"}, log=notes.append)
    assert len(dataset) == 2 and dataset[0]["videos"] == [video]
    assert notes[-1].startswith("5 of 7 records skipped") and any("mine.jsonl:4" in n for n in notes)


def test_the_format_is_detected_and_empty_or_unknown_files_say_so(tmp_path, video):
    record = build_mr_conversation("a man walks", 0.5, 1.5, video, template_index=0)
    plain = _jsonl(tmp_path / "plain.jsonl", [record, record])
    assert len(load_training_dataset({"path": str(plain)})) == 2  # no data.format needed
    as_list = tmp_path / "plain.json"
    as_list.write_text(json.dumps([record]))
    assert len(load_training_dataset({"path": str(as_list), "format": "grounding_ft"})) == 1
    llava = tmp_path / "llava.json"
    llava.write_text(json.dumps([{"id": "x", "video": "clip.mp4", "conversations": [
        {"from": "human", "value": "<image>\nWhat happens?"}, {"from": "gpt", "value": "A man walks."}]}]))
    with pytest.raises(TrainingDataError, match="video_root"):  # detected as llava_video, which needs the root
        load_training_dataset({"path": str(llava)})
    from pathlib import Path

    assert len(load_training_dataset({"path": str(llava), "video_root": str(Path(video).parent)})) == 1
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(TrainingDataError, match="holds no records"):
        load_training_dataset({"path": str(empty)})
    odd = _jsonl(tmp_path / "odd.jsonl", [{"prompt": "q", "completion": "a"}])
    with pytest.raises(TrainingDataError, match="data.format=grounding_ft"):
        load_training_dataset({"path": str(odd)})
    for key, value in [("format", "csv"), ("bad_records", "ignore"), ("check_videos", "maybe")]:
        with pytest.raises(TrainingDataError, match=f"data.{key}"):
            load_training_dataset({"path": str(plain), key: value})


def test_each_video_is_decoded_once_and_checks_can_be_relaxed(tmp_path, video, monkeypatch):
    from groundvts.scripts.data import record_checks

    record = build_mr_conversation("a man walks", 0.5, 1.5, video, template_index=0)
    calls = []
    real = record_checks.video_problem
    monkeypatch.setattr(record_checks, "video_problem", lambda v, c: calls.append((v, c)) or real(v, c))
    items = read_records(_jsonl(tmp_path / "d.jsonl", [record] * 4))
    good, bad = check_records(items)
    assert len(good) == 4 and not bad and calls == [(video, "decode")]
    missing = {**record, "videos": [str(tmp_path / "gone.mp4")]}
    assert len(check_records([("x:1", missing)], videos="none")[0]) == 1
    assert len(check_records([("x:1", missing)], videos="exists")[1]) == 1


def test_build_data_with_no_sample_is_an_error_not_an_arrow_traceback(tmp_path, capsys):
    from groundvts.scripts.cli import build_data

    (tmp_path / "sta_train.txt").write_text("a 1 2##a person walks.\n")
    (tmp_path / "Charades_v1_train.csv").write_text("id,length\na,8\n")
    argv = ["--output", str(tmp_path / "ft"), "--charades", str(tmp_path / "sta_train.txt"), "--video-root",
            str(tmp_path), "--tasks", "hd"]
    assert build_data.main(argv) == 2
    err = capsys.readouterr().err
    assert "No training sample was built" in err and "Traceback" not in err
    assert not (tmp_path / "ft").exists()
