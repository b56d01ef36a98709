"""processing/annotations.py on the real benchmark files (every source row is a record or a skipped row) and on
corrupted copies (the right line numbers and reasons)."""

import csv
import json
from pathlib import Path

import pytest

from shared_data import SHARED_DATA, require_shared

from groundvts.processing.annotations import (
    BENCHMARKS,
    BOUNDARY_TOLERANCE_S,
    load_annotations,
    reason_category,
    resolve_video,
)


DATA = SHARED_DATA
CHARADES, ANET = DATA / "charades_sta", DATA / "activitynet_captions"
QVH, NEXTGQA = DATA / "qvhighlights", DATA / "nextgqa"


@pytest.fixture(autouse=True)
def _needs_shared_data():
    require_shared(DATA)


def _text_rows(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def _anet_rows(path: Path) -> int:
    data = json.loads(path.read_text())
    return sum(max(len(entry["timestamps"]), len(entry["sentences"])) for entry in data.values())


def _csv_rows(path: Path) -> int:
    with path.open(newline="") as handle:
        return sum(1 for _ in csv.DictReader(handle))


# (bench, file, independent row count, published query count, skipped rows); `bench` because pytest-benchmark
# owns the fixture name `benchmark`.
REAL_FILES = [
    ("charades_sta", CHARADES / "charades_sta_train.txt", _text_rows, 12_408, 4),
    ("charades_sta", CHARADES / "charades_sta_test.txt", _text_rows, 3_720, 0),
    ("charades_sta", CHARADES / "charades_train_release.jsonl", _text_rows, 12_404, 0),
    ("charades_sta", CHARADES / "charades_test_release.jsonl", _text_rows, 3_720, 0),
    ("activitynet_captions", ANET / "train.json", _anet_rows, 37_421, 2),
    ("activitynet_captions", ANET / "val_1.json", _anet_rows, 17_505, 0),
    ("activitynet_captions", ANET / "val_2.json", _anet_rows, 17_031, 0),
    ("qvhighlights", QVH / "highlight_train_release.jsonl", _text_rows, 7_218, 0),
    ("qvhighlights", QVH / "highlight_val_release.jsonl", _text_rows, 1_550, 0),
    ("qvhighlights", QVH / "highlight_test_release.jsonl", _text_rows, 1_542, 0),
    ("qvhighlights", QVH / "highlight_test_with_gt.jsonl", _text_rows, 1_542, 0),
    ("nextgqa", NEXTGQA / "val.csv", _csv_rows, 3_358, 0),
    ("nextgqa", NEXTGQA / "test.csv", _csv_rows, 5_553, 0),
]


@pytest.mark.parametrize(
    "bench,path,count_rows,published,num_skipped", REAL_FILES, ids=lambda v: getattr(v, "name", None)
)
def test_every_real_row_is_a_record_or_a_skipped_row(bench, path, count_rows, published, num_skipped):
    loaded = load_annotations(bench, path)
    rows = count_rows(path)
    assert rows == published
    assert len(loaded.records) + len(loaded.skipped) == rows
    assert len(loaded.skipped) == num_skipped
    assert len({record.qid for record in loaded.records}) == len(loaded.records)
    for record in loaded.records:
        assert record.benchmark == bench and record.query == record.query.strip() and record.query
        assert record.duration is not None and record.duration > 0
        for start, end in record.windows:
            assert 0 <= start <= end <= record.duration
        assert record.source.startswith(f"{path}:")


def test_charades_txt_reversed_lines_are_reported_with_their_line_numbers():
    path = CHARADES / "charades_sta_train.txt"
    loaded = load_annotations("charades_sta", path)
    lines = path.read_text().splitlines()
    reversed_lines = [
        number for number, line in enumerate(lines, start=1)
        if float(line.split("##")[0].split()[1]) > float(line.split("##")[0].split()[2])
    ]
    assert [row.line for row in loaded.skipped] == reversed_lines
    assert {reason_category(row.reason) for row in loaded.skipped} == {"reversed window"}
    assert lines[loaded.skipped[0].line - 1].startswith("LEOL6 8.0 7.0##")
    first = loaded.records[0]
    video, start, end = lines[0].split("##")[0].split()
    assert (first.qid, first.video_id, first.windows) == (f"{video}_0", video, ((float(start), float(end)),))
    assert first.source == f"{path}:1"


def test_charades_txt_with_csv_durations_matches_lighthouse_clamping():
    """The txt + csv reader clamps overshooting ends exactly as lighthouse's jsonl does (same queries, same order)."""
    txt = load_annotations("charades_sta", CHARADES / "charades_sta_test.txt")
    lighthouse = load_annotations("charades_sta", CHARADES / "charades_test_release.jsonl")
    assert [(r.video_id, r.query, r.duration) for r in txt.records] == [
        (r.video_id, r.query, r.duration) for r in lighthouse.records
    ]
    assert [r.windows for r in txt.records] == [r.windows for r in lighthouse.records]
    assert len(txt.clamped) == 562 and all(reason_category(r.reason) == "end clamped" for r in txt.clamped)
    # The clamped ends were past the csv length by at most the tolerance.
    lines = (CHARADES / "charades_sta_test.txt").read_text().splitlines()
    for note in txt.clamped:
        end = float(lines[note.line - 1].split("##")[0].split()[2])
        record = next(r for r in txt.records if r.source.endswith(f":{note.line}"))
        assert record.duration < end <= record.duration + BOUNDARY_TOLERANCE_S
        assert record.windows[0][1] == record.duration


def test_explicit_duration_file_and_missing_one(tmp_path):
    lines = (CHARADES / "charades_sta_test.txt").read_text().splitlines()[:3]
    txt = tmp_path / "queries.txt"
    txt.write_text("\n".join(lines) + "\n")
    with pytest.raises(FileNotFoundError, match="duration_file"):
        load_annotations("charades_sta", txt)
    loaded = load_annotations("charades_sta", txt, duration_file=CHARADES / "Charades_v1_test.csv")
    assert len(loaded.records) == 3 and loaded.records[0].duration == 30.96  # 3MSZA's csv length


def test_activitynet_locators_and_stripped_sentences():
    path = ANET / "train.json"
    loaded = load_annotations("activitynet_captions", path)
    assert sorted(row.line for row in loaded.skipped) == ["v_0bosp4-pyTM#3", "v_rhOtqArO-3Y#5"]
    data = json.loads(path.read_text())
    for row in loaded.skipped:
        video, index = row.line.split("#")
        start, end = data[video]["timestamps"][int(index)]
        assert start > end and row.file == str(path)
    record = next(r for r in loaded.records if r.qid == "v_QOlSCBRmfWY_1")
    entry = data["v_QOlSCBRmfWY"]
    assert record.query == entry["sentences"][1].strip() and record.windows == (tuple(entry["timestamps"][1]),)
    assert record.source == f"{path}:v_QOlSCBRmfWY#1"


def test_qvhighlights_fields_and_test_release_without_ground_truth():
    val = load_annotations("qvhighlights", QVH / "highlight_val_release.jsonl")
    first = json.loads((QVH / "highlight_val_release.jsonl").read_text().splitlines()[0])
    record = val.records[0]
    assert record.qid == str(first["qid"]) and record.video_id == first["vid"]
    assert record.windows == tuple(tuple(float(x) for x in w) for w in first["relevant_windows"])
    assert record.relevant_clip_ids == tuple(first["relevant_clip_ids"])
    assert record.saliency_scores == tuple(tuple(s) for s in first["saliency_scores"])
    test = load_annotations("qvhighlights", QVH / "highlight_test_release.jsonl")
    assert all(r.windows == () and r.relevant_clip_ids is None and r.saliency_scores is None for r in test.records)


def test_nextgqa_answers_spans_and_clamped_starts():
    path = NEXTGQA / "test.csv"
    loaded = load_annotations("nextgqa", path)
    gsub = json.loads((NEXTGQA / "gsub_test.json").read_text())
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    by_qid = {r.qid: r for r in loaded.records}
    for row in rows:
        record = by_qid[f"{row['video_id']}_{row['qid']}"]
        assert record.options[record.answer_index] == row["answer"].strip()  # options are stripped
        assert record.question_type == row["type"] and record.duration == gsub[row["video_id"]]["duration"]
        spans = gsub[row["video_id"]]["location"][row["qid"]]
        assert record.windows == tuple((max(float(s), 0.0), float(e)) for s, e in spans)
    negative = sum(1 for r in rows for s, _ in gsub[r["video_id"]]["location"][r["qid"]] if s < 0)
    assert len(loaded.clamped) == negative == 36
    # The one duplicated option: the first match is the answer index.
    assert by_qid["3842638015_4"].answer_index == 3 and by_qid["3842638015_4"].options[4] == "happy"


def test_unknown_benchmark_and_missing_file(tmp_path):
    with pytest.raises(ValueError) as error:
        load_annotations("charades", CHARADES / "charades_sta_test.txt")
    assert all(name in str(error.value) for name in BENCHMARKS)
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        load_annotations("qvhighlights", tmp_path / "nope.jsonl")


# --- corrupted copies -----------------------------------------------------------------------------------------


def test_corrupted_charades_txt(tmp_path):
    (tmp_path / "Charades_v1_test.csv").write_text("id,length\nAAAAA,30.0\nBBBBB,\n")
    lines = [
        "AAAAA 1.0 5.0##person opens a door.",  # 1 ok
        "AAAAA 1.0 5.0 person opens a door.",  # 2 no ##
        "AAAAA 6.0 2.0##person sits.",  # 3 reversed
        "AAAAA 1.0 2.0##   ",  # 4 empty query
        "",  # 5 blank
        "CCCCC 1.0 2.0##unknown video.",  # 6 not in csv
        "BBBBB 1.0 2.0##no length.",  # 7 empty length
        "AAAAA 30.0 31.0##starts at the end.",  # 8 start past duration
        "AAAAA 10.0 35.0##ends far too late.",  # 9 end past duration + tolerance
        "AAAAA 10.0 31.5##ends a bit late.",  # 10 clamped
        "AAAAA x 3.0##not a number.",  # 11 unparseable
    ]
    path = tmp_path / "charades_sta_test.txt"
    path.write_text("\n".join(lines) + "\n")
    loaded = load_annotations("charades_sta", path)
    assert [(r.line, reason_category(r.reason)) for r in loaded.skipped] == [
        (2, "unparseable"), (3, "reversed window"), (4, "empty query"), (5, "empty line"),
        (6, "missing duration"), (7, "missing duration"), (8, "start past duration"), (9, "end past duration"),
        (11, "unparseable"),
    ]
    assert [r.qid for r in loaded.records] == ["AAAAA_0", "AAAAA_5"]  # k counts every parsed line of the video
    assert loaded.records[1].windows == ((10.0, 30.0),) and [n.line for n in loaded.clamped] == [10]
    assert all(row.file == str(path) for row in loaded.skipped)


def test_corrupted_qvhighlights_jsonl(tmp_path):
    good = {"qid": 1, "query": "a dog runs", "duration": 150, "vid": "x_0.0_150.0", "relevant_windows": [[0, 4]],
            "relevant_clip_ids": [0, 1], "saliency_scores": [[1, 2, 3], [4, 4, 4]]}
    rows = [
        json.dumps(good),  # 1
        "{not json",  # 2
        json.dumps({**good, "qid": 2, "duration": None}),  # 3
        json.dumps({**good, "qid": 3, "saliency_scores": [[1, 1, 1]]}),  # 4 length mismatch
        json.dumps({**good}),  # 5 duplicate qid
        json.dumps({**good, "qid": 6, "relevant_windows": [[0, 4], [10, 8]]}),  # 6 one reversed window
        json.dumps([1, 2]),  # 7 not an object
        json.dumps({k: v for k, v in good.items() if k != "vid"} | {"qid": 8}),  # 8 no vid
        json.dumps({**good, "qid": 9, "relevant_windows": [[0, 4], [140, 150]]}),  # 9 ok, two windows
    ]
    path = tmp_path / "highlight_val_release.jsonl"
    path.write_text("\n".join(rows))  # no final newline, like the real files
    loaded = load_annotations("qvhighlights", path)
    assert [(r.line, reason_category(r.reason)) for r in loaded.skipped] == [
        (2, "unparseable"), (3, "missing duration"), (4, "bad saliency"), (5, "duplicate qid"),
        (6, "reversed window"), (7, "unparseable"), (8, "missing field"),
    ]
    assert [r.qid for r in loaded.records] == ["1", "9"] and loaded.records[1].windows == ((0, 4), (140, 150))


def test_corrupted_activitynet_json(tmp_path):
    data = {
        "v_a": {"duration": 20.0, "timestamps": [[0, 5], [4, 9], [1, 2]], "sentences": ["One.", " Two.", "  "]},
        "v_b": {"timestamps": [[0, 1]], "sentences": ["No duration."]},
        "v_c": {"duration": 10.0, "timestamps": [[0, 1]], "sentences": ["A.", "B without a span."]},
        "v_d": "oops",
    }
    path = tmp_path / "train.json"
    path.write_text(json.dumps(data))
    loaded = load_annotations("activitynet_captions", path)
    assert [(r.line, reason_category(r.reason)) for r in loaded.skipped] == [
        ("v_a#2", "empty query"), ("v_b#0", "missing duration"), ("v_c#1", "unparseable"), ("v_d#0", "unparseable"),
    ]
    assert [(r.qid, r.query) for r in loaded.records] == [("v_a_0", "One."), ("v_a_1", "Two."), ("v_c_0", "A.")]
    path.write_text("{broken")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_annotations("activitynet_captions", path)


def test_corrupted_nextgqa_csv(tmp_path):
    header = "video_id,frame_count,width,height,question,answer,qid,type,a0,a1,a2,a3,a4"
    rows = [
        "100,10,1,1,why did he wave,greet,0,CW,greet,run,sit,eat,jump",  # 2 ok
        "100,10,1,1,why did he run,fly,1,CW,greet,run,sit,eat,jump",  # 3 answer not listed
        "100,10,1,1,what next,sit,2,TN,greet,run,sit,eat,jump",  # 4 no span
        "200,10,1,1,what,sit,0,TN,greet,run,sit",  # 5 short row
        '100,10,1,1,"a question, with a comma\nand a newline",run,3,CH,greet,run,sit,eat,jump',  # 6-7 quoted
    ]
    path = tmp_path / "val.csv"
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    gsub = {"100": {"duration": 30, "fps": 30.0, "location": {"0": [[1.0, 4.0]], "3": [[2.0, 30.4]]}}}
    (tmp_path / "gsub_val.json").write_text(json.dumps(gsub))
    loaded = load_annotations("nextgqa", path)
    assert [(r.line, reason_category(r.reason)) for r in loaded.skipped] == [
        (3, "answer not among options"), (4, "no grounding span"), (5, "unparseable"),
    ]
    assert [(r.qid, r.answer_index, r.source) for r in loaded.records] == [
        ("100_0", 0, f"{path}:2"), ("100_3", 1, f"{path}:7"),
    ]
    assert loaded.records[1].windows == ((2.0, 30.0),)
    (tmp_path / "gsub_val.json").unlink()
    with pytest.raises(FileNotFoundError, match="grounding_file"):
        load_annotations("nextgqa", path)


# --- resolve_video ------------------------------------------------------------------------------------------


def test_resolve_video_layouts(tmp_path):
    (tmp_path / "flat.mkv").write_bytes(b"")
    (tmp_path / "0101").mkdir()
    (tmp_path / "0101" / "2909445186.mp4").write_bytes(b"")
    assert resolve_video(tmp_path, "flat") == tmp_path / "flat.mkv"
    assert resolve_video(tmp_path, "flat.mkv") == tmp_path / "flat.mkv"
    assert resolve_video(tmp_path, "2909445186") == tmp_path / "0101" / "2909445186.mp4"  # NExT-QA layout
    assert resolve_video(tmp_path, "0101/2909445186") == tmp_path / "0101" / "2909445186.mp4"
    with pytest.raises(FileNotFoundError) as error:
        resolve_video(tmp_path, "missing_id", extensions=(".mp4", ".webm"))
    message = str(error.value)
    assert str(tmp_path) in message and "missing_id" in message and ".mp4,.webm" in message
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_video(tmp_path / "nowhere", "flat")
    (tmp_path / "0102").mkdir()
    (tmp_path / "0102" / "2909445186.mp4").write_bytes(b"")
    with pytest.raises(ValueError, match="several subfolders"):
        resolve_video(tmp_path, "2909445186")


@pytest.mark.parametrize(
    "name, split",
    [("highlight_val_release.jsonl", "val"), ("highlight_test_with_gt.jsonl", "test"), ("val_2.json", "val_2"),
     ("val_1.json", "val_1"), ("charades_sta_test.txt", "test"), ("train.json", "train"), ("gsub_val.json", "val"),
     ("my_annotations.jsonl", None), ("interval.txt", None)],
)
def test_split_of_reads_the_split_from_the_file_name(name, split):
    from groundvts.processing.annotations import split_of

    assert split_of(f"/data/{name}") == split


def test_byte_order_marks_are_dropped_and_bad_bytes_are_located(tmp_path):
    """Files saved by Excel / Notepad start with a UTF-8 BOM: it must not stick to the first id or column name."""
    (tmp_path / "Charades_v1_test.csv").write_bytes("\ufeffid,length\nAB12C,10.0\n".encode())
    txt = tmp_path / "charades_test.txt"
    txt.write_bytes("\ufeffAB12C 1.0 3.0##a person sits.\nAB12C 4 6##the person stands.\n".encode())
    loaded = load_annotations("charades_sta", txt)
    assert [r.video_id for r in loaded.records] == ["AB12C", "AB12C"] and loaded.records[0].duration == 10.0
    qvh = tmp_path / "qvh_val.jsonl"
    row = dict(qid=7, query="q", duration=10, vid="v1", relevant_windows=[[0, 2]])
    qvh.write_bytes(("\ufeff" + json.dumps(row) + "\n").encode())
    assert load_annotations("qvhighlights", qvh).records[0].qid == "7"
    txt.write_bytes(b"AB12C 1.0 3.0##a person sits.\nAB12C 4 6##caf\xe9 scene.\n")  # Latin-1, not UTF-8
    with pytest.raises(ValueError, match=r"charades_test\.txt:2: not UTF-8"):
        load_annotations("charades_sta", txt)
