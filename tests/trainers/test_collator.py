"""The video collator labels exactly the assistant turns and keeps every model input the processor makes."""

import pytest
import torch
from datasets import Dataset

from groundvts.processing.tiny import build_tiny_internvl_processor
from groundvts.trainers import GroundVTSVideoCollator

IGNORE = -100


def label_text(batch, row, tokenizer):
    labels = batch["labels"][row]
    return tokenizer.decode(labels[labels != IGNORE])


@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_labels_cover_the_answer_and_end_token_only(tiny_processor, grounding_records, padding_side):
    records = grounding_records[:3]
    batch = GroundVTSVideoCollator(tiny_processor, {"fps": 2.0}, padding_side=padding_side)(records)
    tokenizer = tiny_processor.tokenizer
    for row, record in enumerate(records):
        answer = record["messages"][1]["content"][0]["text"]
        assert label_text(batch, row, tokenizer) == answer + "<|im_end|>"
        labelled = batch["labels"][row] != IGNORE
        assert not (labelled & (batch["attention_mask"][row] == 0)).any()  # never padding
        assert not (labelled & (batch["mm_token_type_ids"][row] != 0)).any()  # never vision tokens
        assert not (labelled & batch["query_mask"][row].bool()).any()  # the query never includes the answer
        query = batch["input_ids"][row][batch["query_mask"][row].bool()]
        assert tokenizer.decode(query).startswith(record["messages"][0]["content"][1]["text"].strip()[:10])
    pad_column = 0 if padding_side == "left" else -1
    assert (batch["attention_mask"][:, pad_column] == 0).any()
    for key in ("pixel_values_videos", "video_grid_thw", "second_per_grid_ts", "mm_token_type_ids", "query_mask"):
        assert key in batch
    assert "offset_mapping" not in batch and "text_replacement_offsets" not in batch


def test_true_fps_reaches_the_model_inputs(tiny_processor, grounding_records):
    # Test videos are 4 fps; sampling at 2 fps puts 2 frames (one temporal patch) in 1 s.
    batch = GroundVTSVideoCollator(tiny_processor, {"fps": 2.0})(grounding_records[:1])
    torch.testing.assert_close(batch["second_per_grid_ts"], torch.tensor([1.0]))
    batch = GroundVTSVideoCollator(tiny_processor, {"fps": 4.0})(grounding_records[:1])
    torch.testing.assert_close(batch["second_per_grid_ts"], torch.tensor([0.5]))


def test_multi_turn_labels_every_assistant_turn(tiny_processor, grounding_records):
    video = grounding_records[0]["videos"][0]
    record = {
        "messages": [
            {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
            {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "What is shown?"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "a gray screen"}]},
            {"role": "user", "content": [{"type": "text", "text": "When does it change?"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "from 1.0s to 2.0s"}]},
        ],
        "videos": [video],
    }
    batch = GroundVTSVideoCollator(tiny_processor, {"fps": 2.0})([record])
    assert label_text(batch, 0, tiny_processor.tokenizer) == "a gray screen<|im_end|>from 1.0s to 2.0s<|im_end|>"
    # VTS pools the question of the last user turn.
    query = batch["input_ids"][0][batch["query_mask"][0].bool()]
    assert tiny_processor.tokenizer.decode(query) == "When does it change?"


def test_records_read_back_from_a_datasets_table(tiny_processor, grounding_records):
    table = Dataset.from_list(grounding_records[:2])
    assert table[0]["messages"][0]["content"][0].get("text", "absent") is None  # Arrow added the empty key
    collator = GroundVTSVideoCollator(tiny_processor, {"fps": 2.0})
    from_table, direct = collator([table[0], table[1]]), collator(grounding_records[:2])
    for key in ("input_ids", "labels", "query_mask", "pixel_values_videos"):
        assert torch.equal(from_table[key], direct[key]), key


def test_internvl_processor(grounding_records):
    processor = build_tiny_internvl_processor(image_size=56, patch_size=14, num_frames=4)
    batch = GroundVTSVideoCollator(processor, {"num_frames": 4})(grounding_records[:2])
    assert batch["video_num_frames"].tolist() == [4, 4]
    for row, record in enumerate(grounding_records[:2]):
        answer = record["messages"][1]["content"][0]["text"]
        assert label_text(batch, row, processor.tokenizer) == answer + "<|im_end|>"
        assert not ((batch["labels"][row] != IGNORE) & (batch["mm_token_type_ids"][row] != 0)).any()


def test_bad_records_are_named(tiny_processor, grounding_records):
    collator = GroundVTSVideoCollator(tiny_processor, {"fps": 2.0})
    with pytest.raises(ValueError, match="no `messages`"):
        collator([{"videos": grounding_records[0]["videos"]}])
    no_answer = {"messages": grounding_records[0]["messages"][:1], "videos": grounding_records[0]["videos"]}
    with pytest.raises(ValueError, match="assistant turn"):
        collator([no_answer])
    with pytest.raises(ValueError, match="max_length"):
        GroundVTSVideoCollator(tiny_processor, {"fps": 2.0}, max_length=8)(grounding_records[:1])


@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_cache_gives_the_batch_of_one_processor_call_and_skips_decoding(tiny_processor, grounding_records, padding_side):
    direct = GroundVTSVideoCollator(tiny_processor, {"fps": 2.0}, padding_side=padding_side)
    cached = GroundVTSVideoCollator(tiny_processor, {"fps": 2.0}, padding_side=padding_side, cache=True)
    records = grounding_records[:3]
    expected, first = direct(records), cached(records)
    assert first.keys() == expected.keys()
    for key in expected:
        assert torch.equal(first[key], expected[key]), key
    calls = []
    original = cached.encode
    cached.encode = lambda batch: calls.append(len(batch)) or original(batch)
    again = cached([records[2], records[0], grounding_records[3]])  # two cached records, one new
    assert calls == [1]
    reference = direct([records[2], records[0], grounding_records[3]])
    for key in reference:
        assert torch.equal(again[key], reference[key]), key


def test_cache_works_for_internvl(grounding_records):
    processor = build_tiny_internvl_processor(image_size=56, patch_size=14, num_frames=4)
    direct = GroundVTSVideoCollator(processor, {"num_frames": 4})(grounding_records[:2])
    cached = GroundVTSVideoCollator(processor, {"num_frames": 4}, cache=True)(grounding_records[:2])
    for key in direct:
        assert torch.equal(cached[key], direct[key]), key
