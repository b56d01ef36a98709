"""The paper's templates and answer formats, and the conversations built from them for both backbones."""

import random

import pytest
from processing_test_utils import masked_token_ids, plain_token_ids

from groundvts.processing.prompts import (
    HD_TEMPLATES,
    MR_TEMPLATES,
    assistant_turn,
    build_hd_conversation,
    build_inference_messages,
    build_inference_prompt,
    build_mr_conversation,
    format_hd_answer,
    format_mr_answer,
    highlight_level,
    mcq_prompt,
    mr_instruction,
    normalize_query,
    prepare_inference_inputs,
    task_prompt,
    training_prompt_and_videos,
    user_content,
    user_turn,
)

GROUNDING_PROMPT = (
    "Based on the video, please provide the start and end timestamps (in seconds) for the moment described by:"
    " 'the door opens'. Respond in the format 'X to Y seconds'. If unsure, make your best guess."
)
HIGHLIGHT_PROMPT = "Please highlight the most important parts for the following event: the door opens"


def test_template_tables():
    assert len(MR_TEMPLATES) == 13 and len(HD_TEMPLATES) == 7
    for template in MR_TEMPLATES + HD_TEMPLATES:
        assert template.startswith("<video>") and template.count("{query}") == 1
    assert MR_TEMPLATES[0] == (
        "<video>At what point in the video did the following events occur: {query}?"
        " Output the start and end timestamps."
    )
    assert HD_TEMPLATES[-1] == "<video>Mark the time intervals that are most significant for: {query}."


def test_answer_formats():
    assert format_mr_answer(20.8, 30.0) == "from 20.8s to 30.0s"
    assert format_mr_answer(0.83, 19.86, decimals=2) == "from 0.83s to 19.86s"
    with pytest.raises(ValueError, match="start <= end"):
        format_mr_answer(5.0, 2.0)
    answer = format_hd_answer([48, 49, 5, 6], [[4, 4, 3], [4, 3, 4], [3, 2, 3], [1, 2, 2]])
    assert answer == (
        "The highlights are: very important from 96.0s to 98.0s, 98.0s to 100.0s; important from 10.0s to 12.0s;"
        " less important from 12.0s to 14.0s"
    )
    assert format_hd_answer([0], [[2, 2, 2]]) == "The highlights are: less important from 0.0s to 2.0s"
    levels = [highlight_level(x) for x in (3.5, 3.49, 2.5, 2.49)]
    assert levels == ["very important", "important", "important", "less important"]


def test_queries_are_normalized_and_empty_ones_rejected():
    assert normalize_query("  person turn  a light on. ") == "person turn a light on"
    assert mr_instruction("person turn a light on.", template_index=3) == (
        "<video>Please indicate the start and end timestamps for the event: person turn a light on."
    )
    for bad in ("", "   ", " . "):
        with pytest.raises(ValueError, match="query"):
            mr_instruction(bad)
    with pytest.raises(ValueError, match="template_index"):
        mr_instruction("x", template_index=13)


def test_random_templates_are_reproducible():
    first = [mr_instruction("q", rng=random.Random(42)) for _ in range(3)]
    rng = random.Random(42)
    second = [mr_instruction("q", rng=rng) for _ in range(20)]
    assert first[0] == second[0] and len(set(second)) > 3


def test_training_record_layout():
    record = build_mr_conversation("a man sits down.", 1.0, 4.5, "videos/abc.mp4", template_index=1)
    assert record == {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "video"},
                    {"type": "text", "text": "What is the location of the moment: a man sits down?"},
                ],
            },
            {"role": "assistant", "content": [{"type": "text", "text": "from 1.0s to 4.5s"}]},
        ],
        "videos": ["videos/abc.mp4"],
    }
    hd = build_hd_conversation("dogs play", [0, 1], [[4, 4, 4], [1, 1, 1]], "v.mp4", template_index=0)
    assert hd["messages"][1]["content"][0]["text"] == (
        "The highlights are: very important from 0.0s to 2.0s; less important from 2.0s to 4.0s"
    )
    assert user_content("<video>Q?", "v.mp4") == [{"type": "video", "video": "v.mp4"}, {"type": "text", "text": "Q?"}]
    with pytest.raises(ValueError, match="must open"):
        user_content("Q <video>")


def test_mcq_prompt():
    assert mcq_prompt("Why did he squat?", ["want to hug child", "dancing"]) == (
        "Why did he squat?\nOptions:\n(A) Want to hug child\n(B) Dancing\nPlease only give the best option."
    )


@pytest.mark.parametrize("name", ["qwen_processor", "internvl_processor"])
def test_training_sample_through_the_processor(name, request, videos):
    processor = request.getfixturevalue(name)
    record = build_mr_conversation("a man sits down", 1.0, 4.5, str(videos["2fps"]), template_index=4)
    text, record_videos = training_prompt_and_videos(processor, record)
    assert text.endswith("<|im_start|>assistant\nfrom 1.0s to 4.5s<|im_end|>\n")
    outputs = processor(text=[text], videos=record_videos)
    instruction = "Please predict start and end time of the following moment: a man sits down."
    assert masked_token_ids(outputs) == plain_token_ids(processor.tokenizer, instruction)


@pytest.mark.parametrize("name", ["qwen_processor", "internvl_processor"])
@pytest.mark.parametrize("task", ["mr", "hd"])
def test_inference_inputs_for_both_backbones(name, task, request, videos):
    processor = request.getfixturevalue(name)
    text = build_inference_prompt(processor, "the door opens", task)
    assert text.endswith("<|im_end|>\n<|im_start|>assistant\n")
    expected = (
        "Based on the video, please provide the start and end timestamps (in seconds) for the moment described by:"
        " 'the door opens'. Respond in the format 'X to Y seconds'. If unsure, make your best guess."
        if task == "mr"
        else "Please highlight the most important parts for the following event: the door opens"
    )
    assert expected in text
    inputs = prepare_inference_inputs(processor, "the door opens", str(videos["1fps"]), task)
    assert masked_token_ids(inputs) == plain_token_ids(processor.tokenizer, expected)
    with pytest.raises(ValueError, match="task"):
        build_inference_messages("q", task="qa")


def test_chat_turns():
    assert user_turn("Q?") == {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "Q?"}]}
    assert user_turn("Q?", "v.mp4") == {
        "role": "user", "content": [{"type": "video", "video": "v.mp4"}, {"type": "text", "text": "Q?"}]
    }
    assert assistant_turn("from 1.0s to 4.5s") == {
        "role": "assistant", "content": [{"type": "text", "text": "from 1.0s to 4.5s"}]
    }
    record = build_mr_conversation("a man sits down", 1.0, 4.5, "v.mp4", template_index=1)
    assert record["messages"] == [user_turn("What is the location of the moment: a man sits down?"),
                                  assistant_turn("from 1.0s to 4.5s")]


def test_task_prompts():
    assert task_prompt("the door opens", "mr") == GROUNDING_PROMPT
    assert task_prompt("the door opens", "hd") == HIGHLIGHT_PROMPT
    assert task_prompt("Why did he squat?", "qa", ["want to hug child", "dancing"]) == mcq_prompt(
        "Why did he squat?", ["want to hug child", "dancing"]
    )
    for options in (None, []):
        with pytest.raises(ValueError, match="qa task needs answer options"):
            task_prompt("Why?", "qa", options)
    with pytest.raises(ValueError, match="`task` must be 'mr', 'hd' or 'qa', got 'x'"):
        task_prompt("q", "x")
    with pytest.raises(ValueError, match="query"):
        task_prompt("  ", "mr")
    assert build_inference_messages("the door opens", "v.mp4", "hd") == [user_turn(HIGHLIGHT_PROMPT, "v.mp4")]
    assert build_inference_messages("the door opens") == [user_turn(GROUNDING_PROMPT)]
