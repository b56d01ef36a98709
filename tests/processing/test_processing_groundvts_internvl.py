"""GroundVTS-I processor: fixed frame count, video-vs-image token types, frames per video, exact query mask."""

import numpy as np
import pytest
import torch
from processing_test_utils import assistant_turn, masked_token_ids, plain_token_ids, video_turn

from groundvts.processing.tiny import build_tiny_internvl_processor, frame_gray_value


def prompt(processor, question="When does the light turn on?", num_videos=1):
    return processor.apply_chat_template([video_turn(question, num_videos)], tokenize=False, add_generation_prompt=True)


def test_outputs_and_token_types(internvl_processor, videos):
    processor = internvl_processor
    outputs = processor(text=[prompt(processor)], videos=[str(videos["2fps"])], return_tensors="pt")
    model_keys = {"pixel_values", "mm_token_type_ids", "video_num_frames", "query_mask"}
    assert set(outputs) == {"input_ids", "attention_mask"} | model_keys
    frames, seq = 4, processor.image_seq_length
    assert outputs["video_num_frames"].tolist() == [frames]
    assert tuple(outputs["pixel_values"].shape) == (frames, 3, 56, 56)
    types, ids = outputs["mm_token_type_ids"][0], outputs["input_ids"][0]
    assert int((types == 2).sum()) == frames * seq
    assert bool((ids[types == 2] == processor.image_token_id).all())
    # Frame markers and "FrameN:" labels are text.
    assert int((types == 1).sum()) == 0
    assert outputs["query_mask"].dtype == torch.long


def test_default_is_16_frames_at_the_image_tile_size(videos):
    processor = build_tiny_internvl_processor()
    processor.video_processor.num_frames = None
    processor.video_processor.size = {"height": 28, "width": 28}  # the tile size (56) wins
    outputs = processor(text=[prompt(processor)], videos=[str(videos["1fps"])], return_tensors="pt")
    assert outputs["video_num_frames"].tolist() == [16]  # 8-frame video: frames repeat
    assert tuple(outputs["pixel_values"].shape[-2:]) == (56, 56)


def test_still_images_and_videos_are_told_apart(internvl_processor, videos):
    processor = internvl_processor
    content = [{"type": "image"}, {"type": "video"}, {"type": "text", "text": "Same place?"}]
    text = processor.apply_chat_template([{"role": "user", "content": content}], tokenize=False)
    image = np.full((56, 56, 3), 200, np.uint8)
    outputs = processor(text=[text], images=[image], videos=[str(videos["2fps"])], return_tensors="pt")
    types, ids = outputs["mm_token_type_ids"][0], outputs["input_ids"][0]
    seq = processor.image_seq_length
    image_ids = ids[types == 1].tolist()
    context = [processor.image_token_id] * seq
    assert image_ids == [processor.start_image_token_id, *context, processor.end_image_token_id]
    assert int((types == 2).sum()) == 4 * seq
    # The image comes first in the prompt and in pixel_values, then the video's 4 frames.
    assert outputs["pixel_values"].shape[0] == 1 + 4
    assert masked_token_ids(outputs) == plain_token_ids(processor.tokenizer, "Same place?")


def test_video_num_frames_follow_the_order_of_appearance_across_the_batch(videos):
    processor = build_tiny_internvl_processor(num_frames=2)
    texts = [prompt(processor, "Two videos?", num_videos=2), prompt(processor, "One video?")]
    paths = [str(videos["2fps"]), str(videos["1fps"]), str(videos["4fps"])]
    outputs = processor(text=texts, videos=paths, padding=True, return_tensors="pt")
    assert outputs["video_num_frames"].tolist() == [2, 2, 2]
    seq = processor.image_seq_length
    assert [(row == 2).sum().item() for row in outputs["mm_token_type_ids"]] == [4 * seq, 2 * seq]
    # Frames in pixel_values: video 0 (frames 4, 12 of 16), video 1 (2, 6 of 8), video 2 (6, 18 of 24).
    mean = torch.tensor(processor.video_processor.image_mean).view(3, 1, 1)
    std = torch.tensor(processor.video_processor.image_std).view(3, 1, 1)
    gray_levels = ((outputs["pixel_values"] * std + mean) * 255).mean(dim=(1, 2, 3))
    expected = torch.tensor([frame_gray_value(i) for i in (4, 12, 2, 6, 6, 18)], dtype=gray_levels.dtype)
    assert torch.allclose(gray_levels, expected, atol=3)


def test_frame_timestamps_option(internvl_processor, videos):
    processor = internvl_processor
    plain = processor(text=[prompt(processor)], videos=[str(videos["2fps"])])
    assert "Frame1: <img>" in processor.tokenizer.decode(plain["input_ids"][0])
    labeled = processor(text=[prompt(processor)], videos=[str(videos["2fps"])], frame_timestamps=True)
    decoded = processor.tokenizer.decode(labeled["input_ids"][0])
    # 4 segment centres of 16 frames at 2 fps: frames 2, 6, 10, 14.
    for index, seconds in enumerate([1.0, 3.0, 5.0, 7.0]):
        assert f"Frame{index + 1} at {seconds:.1f}s: <img>" in decoded
    assert masked_token_ids(labeled) == plain_token_ids(processor.tokenizer, "When does the light turn on?")


@pytest.mark.parametrize("padding_side", [None, "right"])
def test_query_mask_in_a_padded_multi_turn_batch(internvl_processor, videos, padding_side):
    processor = internvl_processor
    turns = [video_turn("Where is the dog?"), assistant_turn("from 1.0s to 3.0s")]
    turns.append({"role": "user", "content": "And the cat?"})
    first = processor.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
    second = prompt(processor, "A longer question: when does the woman leave the kitchen with a cup?")
    kwargs = {} if padding_side is None else {"padding_side": padding_side}  # InternVL pads left by default
    paths = [str(videos["2fps"]), str(videos["1fps"])]
    outputs = processor(text=[first, second], videos=paths, padding=True, return_tensors="pt", **kwargs)
    assert masked_token_ids(outputs, 0) == plain_token_ids(processor.tokenizer, "And the cat?")
    assert masked_token_ids(outputs, 1) == plain_token_ids(
        processor.tokenizer, "A longer question: when does the woman leave the kitchen with a cup?"
    )
    assert int((outputs["query_mask"] * (1 - outputs["attention_mask"])).sum()) == 0


def test_bad_inputs_get_clear_errors(internvl_processor, videos, tmp_path):
    processor = internvl_processor
    text = [prompt(processor)]
    with pytest.raises(FileNotFoundError, match="missing.mp4"):
        processor(text=text, videos=[str(tmp_path / "missing.mp4")])
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00" * 1000)
    with pytest.raises(ValueError, match="corrupt.mp4"):
        processor(text=text, videos=[str(corrupt)])
    with pytest.raises(ValueError, match="`num_frames`"):
        processor(text=text, videos=[str(videos["2fps"])], num_frames=0)
    frames = np.zeros((5, 48, 64, 3), np.uint8)
    with pytest.raises(ValueError, match="needs the video fps"):
        processor(text=text, videos=[frames], frame_timestamps=True)
    two = [prompt(processor, "Q?", num_videos=2)]
    with pytest.raises(ValueError, match="same number of frames"):
        processor(text=two, videos=[frames, frames[:3]], do_sample_frames=False)
    no_question = processor.apply_chat_template([{"role": "user", "content": [{"type": "video"}]}], tokenize=False)
    with pytest.raises(ValueError, match="no question text"):
        processor(text=no_question, videos=[str(videos["2fps"])])
    with pytest.raises(ValueError, match="`text` is required"):
        processor(videos=[str(videos["2fps"])])
