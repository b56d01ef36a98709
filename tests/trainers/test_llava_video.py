"""trainers/llava_video.py: LLaVA-Video-178K entries -> conversation records, every bad entry reported."""

import json

import pytest

from groundvts.processing.prompts import training_prompt_and_videos
from groundvts.processing.tiny import build_tiny_qwen2_5_vl_processor, write_test_video
from groundvts.trainers.llava_video import conversation_messages, load_llava_video


def _turns(*pairs):
    return [{"from": role, "value": value} for role, value in pairs]


GOOD_CAPTION = {
    "id": "cap-0", "video": "academic/clip.mp4", "data_source": "0_30_s_academic_v0_1",
    "conversations": _turns(("human", "<image>\nDescribe the video in detail."), ("gpt", "A man opens a door.")),
}


def _entry(turns=None, **fields):
    """GOOD_CAPTION with other conversation turns and/or fields."""
    entry = {**GOOD_CAPTION, **fields}
    if turns is not None:
        entry["conversations"] = _turns(*turns)
    return entry


# (entry, expected reason category or None when the entry is kept)
ENTRIES = [
    (GOOD_CAPTION, None),
    (_entry([("human", "<image>\nWhat is he holding?"), ("gpt", "A cup."), ("human", "Where is he?"),
             ("gpt", "In a kitchen.")], id="oe-1"), None),
    (_entry([("human", "What happens?"), ("gpt", "He sits.")], id="nomarker"), None),
    (_entry([("human", "Watch <video> closely. What?"), ("gpt", "X.")], id="middle"), None),
    (_entry([("system", "Be brief."), ("human", "<image>\nQ?"), ("gpt", "A.")], id="system"), None),
    (_entry(id="list", video=["one.mp4"]), None),
    ({k: v for k, v in GOOD_CAPTION.items() if k != "video"}, "no video"),
    (_entry(video=["a.mp4", "b.mp4"]), "multiple videos"),
    (_entry([("human", "<image>\nQ?"), ("bot", "A.")]), "bad role"),
    (_entry([("human", "Q?"), ("gpt", "A."), ("human", "<image>\nQ2?"), ("gpt", "B.")]), "video marker"),
    (_entry([("human", "<image>\n<image>\nQ?"), ("gpt", "A.")]), "video marker"),
    (_entry([("human", "<image>\n"), ("gpt", "A.")]), "empty turn"),
    (_entry([("human", "<image>\nQ?"), ("gpt", "  ")]), "empty turn"),
    (_entry([("gpt", "A."), ("human", "<image>\nQ?")]), "bad turn order"),
    (_entry([("human", "<image>\nQ?")]), "bad turn order"),
    (_entry(conversations=[]), "no conversation"),
    ("not an entry", "unparseable"),
]


@pytest.fixture(scope="module")
def processor():
    return build_tiny_qwen2_5_vl_processor()


def _write(tmp_path, entries, name="llava.json"):
    path = tmp_path / name
    path.write_text(json.dumps(entries))
    return path


def test_entries_become_records_or_skipped_rows(tmp_path):
    path = _write(tmp_path, [entry for entry, _ in ENTRIES])
    loaded = load_llava_video(path, tmp_path / "videos")
    records, skipped = loaded.records, loaded.skipped
    assert len(records) + len(skipped) == len(ENTRIES)
    expected_skips = [(f"#{i}", reason) for i, (_, reason) in enumerate(ENTRIES) if reason]
    assert [(row.line, row.reason.split(":")[0]) for row in skipped] == expected_skips
    assert all(row.file == str(path) for row in skipped)
    kept = [entry for entry, reason in ENTRIES if reason is None]
    assert [r["id"] for r in records] == [e["id"] for e in kept]
    assert records[0] == {
        "messages": [
            {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "Describe the video in detail."}]},
            {"role": "assistant", "content": [{"type": "text", "text": "A man opens a door."}]},
        ],
        "videos": [str(tmp_path / "videos" / "academic/clip.mp4")],
        "id": "cap-0",
        "data_source": "0_30_s_academic_v0_1",
        "source": f"{path}:#0",
    }
    by_id = {r["id"]: r for r in records}
    oe = by_id["oe-1"]["messages"]
    assert [m["role"] for m in oe] == ["user", "assistant", "user", "assistant"]
    assert oe[2]["content"] == [{"type": "text", "text": "Where is he?"}]  # the video block only opens the first turn
    assert by_id["nomarker"]["messages"][0]["content"][0] == {"type": "video"}
    assert by_id["middle"]["messages"][0]["content"][1]["text"] == "Watch closely. What?"
    assert by_id["system"]["messages"][0] == {"role": "system", "content": [{"type": "text", "text": "Be brief."}]}
    assert by_id["system"]["messages"][1]["content"][0] == {"type": "video"}
    assert by_id["list"]["videos"] == [str(tmp_path / "videos" / "one.mp4")]


def test_json_lines_and_whole_file_errors(tmp_path):
    path = tmp_path / "llava.jsonl"
    path.write_text(json.dumps(GOOD_CAPTION) + "\n{broken\n\n" + json.dumps(GOOD_CAPTION) + "\n")
    loaded = load_llava_video(path, "videos")
    records, skipped = loaded.records, loaded.skipped
    assert [r["source"] for r in records] == [f"{path}:1", f"{path}:4"]
    assert [(row.line, row.reason.split(":")[0]) for row in skipped] == [(2, "unparseable"), (3, "empty line")]
    with pytest.raises(FileNotFoundError, match="missing.json"):
        load_llava_video(tmp_path / "missing.json", "videos")
    bad = tmp_path / "dict.json"
    bad.write_text(json.dumps({"a": GOOD_CAPTION}))
    with pytest.raises(ValueError, match="json list"):
        load_llava_video(bad, "videos")
    with pytest.raises(ValueError, match="bad role"):
        conversation_messages(_turns(("narrator", "x")))


def test_check_videos_and_rendering_through_the_processor(tmp_path, processor):
    (tmp_path / "videos" / "academic").mkdir(parents=True)
    write_test_video(tmp_path / "videos" / "academic" / "clip.mp4", num_frames=8, fps=2.0)
    multi = ENTRIES[1][0]
    path = _write(tmp_path, [multi, {**GOOD_CAPTION, "video": "academic/absent.mp4"}])
    loaded = load_llava_video(path, tmp_path / "videos", check_videos=True)
    dataset, records = loaded.dataset, loaded.records
    assert len(dataset) == 1
    assert [(row.line, row.reason.split(":")[0]) for row in loaded.skipped] == [("#1", "missing video")]
    row = dataset[0]
    cleaned = [
        {"role": m["role"], "content": [{k: v for k, v in b.items() if v is not None} for b in m["content"]]}
        for m in row["messages"]
    ]
    assert cleaned == records[0]["messages"]  # Arrow only adds `text: None` to the video block
    text, videos = training_prompt_and_videos(processor, row)
    assert (text, videos) == training_prompt_and_videos(processor, records[0])
    assert text.count("<|video_pad|>") == 1
    assert "<|im_start|>user\n<|vision_start|><|video_pad|><|vision_end|>What is he holding?<|im_end|>" in text
    assert text.endswith("<|im_start|>assistant\nIn a kitchen.<|im_end|>\n")
    inputs = processor(text=[text], videos=videos)
    assert inputs["video_grid_thw"].shape[0] == 1
