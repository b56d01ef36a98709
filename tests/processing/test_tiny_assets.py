"""The tiny offline tokenizers, processors and test videos mirror the real ones where it matters."""

import av
import pytest
from processing_test_utils import assistant_turn, video_turn

from groundvts.processing.tiny import (
    INTERNVL_EXTRA_SPECIAL_TOKENS,
    QWEN2_5_VL_SPECIAL_TOKENS,
    build_tiny_tokenizer,
    frame_gray_value,
    special_token_ids,
    write_test_video,
)


@pytest.mark.parametrize("backbone", ["qwen2_5_vl", "internvl"])
def test_tokenizer_is_small_and_keeps_every_special_token_whole(backbone):
    tokenizer = build_tiny_tokenizer(backbone)
    specials = list(QWEN2_5_VL_SPECIAL_TOKENS) + (list(INTERNVL_EXTRA_SPECIAL_TOKENS) if backbone == "internvl" else [])
    assert len(tokenizer) <= 512
    ids = [tokenizer.convert_tokens_to_ids(token) for token in specials]
    # Real order, consecutive, right after the byte-level BPE vocabulary.
    assert ids == list(range(ids[0], ids[0] + len(specials)))
    for token, token_id in zip(specials, ids):
        assert tokenizer(f"a{token}b", add_special_tokens=False)["input_ids"][1] == token_id
    assert (tokenizer.eos_token, tokenizer.pad_token, tokenizer.bos_token) == ("<|im_end|>", "<|endoftext|>", None)


def test_tokenizer_build_is_deterministic_and_round_trips_text():
    first, second = build_tiny_tokenizer(), build_tiny_tokenizer()
    assert first.get_vocab() == second.get_vocab()
    text = "Could you tell me from what time to what time this happens: a dog runs? from 20.8s to 30.0s ünïcödé"
    assert first.decode(first(text)["input_ids"]) == text


def test_special_token_ids_match_the_processors(qwen_processor, internvl_processor):
    qwen = special_token_ids(qwen_processor)
    tokenizer = qwen_processor.tokenizer
    assert qwen["video_token_id"] == tokenizer.convert_tokens_to_ids("<|video_pad|>")
    assert qwen["image_token_id"] == tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert qwen["vision_start_token_id"] == tokenizer.convert_tokens_to_ids("<|vision_start|>")
    assert qwen["vision_end_token_id"] == tokenizer.convert_tokens_to_ids("<|vision_end|>")
    assert qwen["eos_token_id"] == tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert qwen["pad_token_id"] == tokenizer.convert_tokens_to_ids("<|endoftext|>")
    assert qwen["vocab_size"] == len(tokenizer) and max(tokenizer.get_vocab().values()) < qwen["vocab_size"]

    intern = special_token_ids(internvl_processor)
    tokenizer = internvl_processor.tokenizer
    assert intern["image_token_id"] == tokenizer.convert_tokens_to_ids("<IMG_CONTEXT>")
    assert intern["start_image_token_id"] == tokenizer.convert_tokens_to_ids("<img>")
    assert intern["end_image_token_id"] == tokenizer.convert_tokens_to_ids("</img>")
    assert intern["vocab_size"] == len(tokenizer)


def test_qwen_chat_template_layout(qwen_processor):
    messages = [video_turn("When does it rain?"), assistant_turn("from 1.0s to 2.0s")]
    assert qwen_processor.apply_chat_template(messages, tokenize=False) == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\n<|vision_start|><|video_pad|><|vision_end|>When does it rain?<|im_end|>\n"
        "<|im_start|>assistant\nfrom 1.0s to 2.0s<|im_end|>\n"
    )
    with_system = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert qwen_processor.apply_chat_template(with_system, tokenize=False, add_generation_prompt=True) == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    )
    content = [{"type": "image"}, {"type": "video"}, {"type": "text", "text": "Q"}]
    image_and_video = [{"role": "user", "content": content}]
    rendered = qwen_processor.apply_chat_template(image_and_video, tokenize=False, add_vision_id=True)
    expected = "user\nPicture 1: <|vision_start|><|image_pad|><|vision_end|>Video 1: <|vision_start|><|video_pad|>"
    assert expected in rendered


def test_internvl_chat_template_layout(internvl_processor):
    messages = [video_turn("When does it rain?"), assistant_turn("from 1.0s to 2.0s")]
    assert internvl_processor.apply_chat_template(messages, tokenize=False) == (
        "<|im_start|>user\n<video>\nWhen does it rain?<|im_end|>\n<|im_start|>assistant\nfrom 1.0s to 2.0s<|im_end|>\n"
    )
    image_turn = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Q"}]}]
    assert internvl_processor.apply_chat_template(image_turn, tokenize=False, add_generation_prompt=True) == (
        "<|im_start|>user\n<IMG_CONTEXT>\nQ<|im_end|>\n<|im_start|>assistant\n"
    )


@pytest.mark.parametrize("name", ["qwen_processor", "internvl_processor"])
def test_generation_markers_give_assistant_masks(name, request):
    processor = request.getfixturevalue(name)
    messages = [{"role": "user", "content": "Q one"}, assistant_turn("A one"), {"role": "user", "content": "Q two"}]
    messages.append(assistant_turn("from 3.0s to 4.0s"))
    outputs = processor.apply_chat_template(
        messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    ids, mask = outputs["input_ids"][0], outputs["assistant_masks"][0]
    answer_tokens = processor.tokenizer.decode([token for token, keep in zip(ids, mask) if keep])
    assert answer_tokens == "A one<|im_end|>from 3.0s to 4.0s<|im_end|>"


def test_write_test_video_encodes_frames_and_rate(tmp_path):
    path = write_test_video(tmp_path / "clip.mp4", num_frames=6, fps=2.0, size=(32, 24))
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height, float(stream.average_rate)) == (32, 24, 2.0)
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    assert len(frames) == 6
    for index, frame in enumerate(frames):
        assert abs(frame.mean() - frame_gray_value(index)) <= 3
    with pytest.raises(ValueError, match="even"):
        write_test_video(tmp_path / "odd.mp4", num_frames=2, fps=1.0, size=(33, 24))


def test_a_larger_vocabulary_with_extra_corpus_shortens_prompts_and_keeps_specials():
    from groundvts.processing.prompts import grounding_eval_prompt

    corpus = ["the purple diamond changes color to cyan.", "the red circle disappears for a while."]
    default, larger = build_tiny_tokenizer(), build_tiny_tokenizer(bpe_vocab_size=768, extra_corpus=corpus)
    prompt = grounding_eval_prompt("the red circle disappears for a while.")
    assert len(larger(prompt)["input_ids"]) < 0.6 * len(default(prompt)["input_ids"])
    assert "Ġpurple" in larger.get_vocab()
    assert larger.decode(larger(prompt)["input_ids"]) == prompt
    specials = list(QWEN2_5_VL_SPECIAL_TOKENS)
    ids = [larger.convert_tokens_to_ids(token) for token in specials]
    assert ids == list(range(ids[0], ids[0] + len(specials)))
    assert build_tiny_tokenizer().get_vocab() == default.get_vocab()  # the default is not affected


def test_processor_takes_a_given_tokenizer():
    from groundvts.processing.tiny import build_tiny_qwen2_5_vl_processor

    tokenizer = build_tiny_tokenizer(bpe_vocab_size=512, extra_corpus=["a green square grows."])
    processor = build_tiny_qwen2_5_vl_processor(tokenizer=tokenizer)
    assert processor.tokenizer is tokenizer
    assert special_token_ids(processor)["vocab_size"] == len(tokenizer)
