"""GroundVTS-Q processor: videos in, true time positions out, and an exact query mask."""

import numpy as np
import pytest
import torch
from processing_test_utils import TOKENS_PER_SECOND, assistant_turn, masked_token_ids, plain_token_ids, video_turn

from groundvts.processing.tiny import frame_gray_value


def prompt(processor, question="When does the light turn on?"):
    return processor.apply_chat_template([video_turn(question)], tokenize=False, add_generation_prompt=True)


def gray_video(count: int) -> np.ndarray:
    return np.stack([np.full((48, 64, 3), frame_gray_value(i), np.uint8) for i in range(count)])


def test_outputs_hold_everything_the_model_needs(qwen_processor, videos):
    outputs = qwen_processor(text=[prompt(qwen_processor)], videos=[str(videos["2fps"])], return_tensors="pt")
    assert set(outputs) == {
        "input_ids",
        "attention_mask",
        "pixel_values_videos",
        "video_grid_thw",
        "second_per_grid_ts",
        "mm_token_type_ids",
        "query_mask",
    }
    assert outputs["query_mask"].dtype == torch.long and outputs["query_mask"].shape == outputs["input_ids"].shape
    # 16 frames at 2 fps -> 8 temporal patches of 56x56 px -> 8 x 4 merged tokens.
    assert outputs["video_grid_thw"].tolist() == [[8, 4, 4]]
    assert int((outputs["mm_token_type_ids"] == 2).sum()) == 32
    assert "query_mask" in qwen_processor.model_input_names


@pytest.mark.parametrize(
    ("video_name", "call_kwargs", "expected_second_per_grid"),
    [
        ("2fps", {}, 1.0),  # 2 fps source, 2 fps target
        ("1fps", {}, 2.0),  # 1 fps source cannot be sampled at 2 fps: the real rate (1 fps) reaches the model
        ("4fps", {}, 1.0),
        ("4fps", {"fps": 1.0}, 2.0),
        ("frames_4fps", {}, 1.0),  # decoded frames + metadata
    ],
)
def test_temporal_position_is_time_in_seconds_times_tokens_per_second(
    qwen_processor, rope_model, videos, video_name, call_kwargs, expected_second_per_grid
):
    if video_name == "frames_4fps":
        video, call_kwargs = gray_video(24), {"video_metadata": [{"fps": 4.0, "total_num_frames": 24}]}
    else:
        video = str(videos[video_name])
    outputs = qwen_processor(
        text=[prompt(qwen_processor)], videos=[video], return_tensors="pt", return_metadata=True, **call_kwargs
    )
    assert outputs["second_per_grid_ts"].tolist() == [expected_second_per_grid]
    position_ids, _ = rope_model.get_rope_index(
        outputs["input_ids"],
        outputs["mm_token_type_ids"],
        video_grid_thw=outputs["video_grid_thw"],
        second_per_grid_ts=outputs["second_per_grid_ts"],
        attention_mask=outputs["attention_mask"],
    )
    is_video = outputs["mm_token_type_ids"][0] == 2
    first_video_token = int(is_video.nonzero()[0])
    start = int(position_ids[0, 0, first_video_token - 1]) + 1  # right after the preceding text token
    temporal = position_ids[0, 0, is_video].tolist()
    grid_t, grid_h, grid_w = outputs["video_grid_thw"][0].tolist()
    tokens_per_patch = grid_h * grid_w // 4
    frame_times = outputs["video_metadata"][0].timestamps  # seconds of every kept frame
    assert len(temporal) == grid_t * tokens_per_patch
    for token, position in enumerate(temporal):
        patch = token // tokens_per_patch
        # A temporal patch starts at its first frame.
        assert position - start == frame_times[2 * patch] * TOKENS_PER_SECOND


def test_frames_without_metadata_use_the_target_fps_not_24(qwen_processor):
    outputs = qwen_processor(text=[prompt(qwen_processor)], videos=[gray_video(8)], fps=2.0, return_tensors="pt")
    assert outputs["second_per_grid_ts"].tolist() == [1.0]  # stock fallback would give 2 / 24


def test_frame_and_pixel_limits(qwen_processor, videos):
    path = str(videos["4fps"])
    capped = qwen_processor(text=[prompt(qwen_processor)], videos=[path], max_frames=6, return_tensors="pt")
    assert capped["video_grid_thw"].tolist() == [[3, 4, 4]]
    assert capped["second_per_grid_ts"].tolist() == [pytest.approx(2 / (6 / 24 * 4))]
    small = qwen_processor(text=[prompt(qwen_processor)], videos=[path], max_pixels=28 * 28, return_tensors="pt")
    assert small["video_grid_thw"].tolist() == [[6, 2, 2]]
    counted = qwen_processor(text=[prompt(qwen_processor)], videos=[path], num_frames=4, return_tensors="pt")
    assert counted["video_grid_thw"].tolist() == [[2, 4, 4]] and counted["second_per_grid_ts"].tolist() == [3.0]
    every_frame = qwen_processor(text=[prompt(qwen_processor)], videos=[path], do_sample_frames=False)
    assert every_frame["video_grid_thw"].tolist() == [[12, 4, 4]] and every_frame["second_per_grid_ts"] == [0.5]


def test_chat_template_with_video_paths_in_messages(qwen_processor, videos):
    messages = [
        {
            "role": "user",
            "content": [{"type": "video", "video": str(videos["1fps"])}, {"type": "text", "text": "Where is the cat?"}],
        }
    ]
    outputs = qwen_processor.apply_chat_template(
        messages, tokenize=True, return_dict=True, add_generation_prompt=True, fps=2.0, return_tensors="pt"
    )
    assert outputs["second_per_grid_ts"].tolist() == [2.0]
    assert masked_token_ids(outputs) == plain_token_ids(qwen_processor.tokenizer, "Where is the cat?")


def test_query_mask_is_exactly_the_question_in_a_training_sample(qwen_processor, videos):
    question = "Please predict start and end time of the following moment: person opens a door."
    messages = [video_turn(question), assistant_turn("from 2.0s to 5.5s")]
    text = qwen_processor.apply_chat_template(messages, tokenize=False)
    outputs = qwen_processor(text=text, videos=str(videos["2fps"]))
    assert masked_token_ids(outputs) == plain_token_ids(qwen_processor.tokenizer, question)
    # Contiguous: nothing of the template, video or answer sneaks in.
    positions = [i for i, keep in enumerate(outputs["query_mask"][0]) if keep]
    assert positions == list(range(positions[0], positions[0] + len(positions)))


def test_query_mask_in_multi_turn_and_system_prompt(qwen_processor, videos):
    messages = [
        {"role": "system", "content": "You ground events in videos."},
        video_turn("When does he sit down?"),
        assistant_turn("from 1.0s to 2.0s"),
        {"role": "user", "content": "And when does he stand up?"},
        assistant_turn("from 4.0s to 5.0s"),
    ]
    text = qwen_processor.apply_chat_template(messages, tokenize=False)
    outputs = qwen_processor(text=text, videos=str(videos["2fps"]))
    assert masked_token_ids(outputs) == plain_token_ids(qwen_processor.tokenizer, "And when does he stand up?")


@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_query_mask_in_a_padded_batch(qwen_processor, videos, padding_side):
    questions = ["Short one?", "A much longer question about the person who opens the door twice?"]
    texts = [prompt(qwen_processor, question) for question in questions]
    outputs = qwen_processor(
        text=texts,
        videos=[str(videos["2fps"]), str(videos["1fps"])],
        padding=True,
        padding_side=padding_side,
        return_tensors="pt",
    )
    for row, question in enumerate(questions):
        assert masked_token_ids(outputs, row) == plain_token_ids(qwen_processor.tokenizer, question)
    assert int((outputs["query_mask"] * (1 - outputs["attention_mask"])).sum()) == 0


def test_query_mask_with_image_and_text_around_the_video(qwen_processor, videos):
    image = np.full((56, 56, 3), 128, np.uint8)
    content = [
        {"type": "text", "text": "Look at this"},
        {"type": "image"},
        {"type": "video"},
        {"type": "text", "text": "then answer: when?"},
    ]
    text = qwen_processor.apply_chat_template([{"role": "user", "content": content}], tokenize=False)
    outputs = qwen_processor(text=text, images=[image], videos=[str(videos["2fps"])], return_tensors="pt")
    tokenizer = qwen_processor.tokenizer
    assert masked_token_ids(outputs) == plain_token_ids(tokenizer, "Look at this") + plain_token_ids(
        tokenizer, "then answer: when?"
    )
    assert {"pixel_values", "image_grid_thw"} <= set(outputs)


def test_bad_inputs_get_clear_errors(qwen_processor, videos, tmp_path):
    text = [prompt(qwen_processor)]
    with pytest.raises(FileNotFoundError, match="missing.mp4"):
        qwen_processor(text=text, videos=[str(tmp_path / "missing.mp4")])
    for bad_fps in (0, -1.0):
        with pytest.raises(ValueError, match="`fps`"):
            qwen_processor(text=text, videos=[str(videos["2fps"])], fps=bad_fps)
    with pytest.raises(ValueError, match="mutually exclusive"):
        qwen_processor(text=text, videos=[str(videos["2fps"])], fps=1.0, num_frames=4)
    no_question = qwen_processor.apply_chat_template([{"role": "user", "content": [{"type": "video"}]}], tokenize=False)
    with pytest.raises(ValueError, match="no question text"):
        qwen_processor(text=no_question, videos=[str(videos["2fps"])])
    with pytest.raises(ValueError, match="zero frames"):
        qwen_processor(text=text, videos=[np.zeros((0, 48, 64, 3), np.uint8)])
