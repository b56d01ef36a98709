"""Finding the question text: character spans, their shift past expanded placeholders, token overlap."""

from groundvts.processing.query_mask import (
    question_char_spans,
    request_alignment_outputs,
    shift_past_replacements,
    tokens_overlapping,
)


QWEN_SPECIALS = ["<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|video_pad|>", "<|image_pad|>"]


def spans_text(text, spans):
    return [text[start:end] for start, end in spans]


def test_last_user_turn_only():
    text = (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\n<|vision_start|><|video_pad|><|vision_end|>First question?<|im_end|>\n"
        "<|im_start|>assistant\nfrom 1.0s to 2.0s<|im_end|>\n"
        "<|im_start|>user\nAnd when does  it end?\n<|im_end|>\n"
        "<|im_start|>assistant\nfrom 3.0s to 4.0s<|im_end|>\n"
    )
    assert spans_text(text, question_char_spans(text, QWEN_SPECIALS)) == ["And when does  it end?"]


def test_text_around_vision_blocks_is_split_and_stripped():
    text = (
        "<|im_start|>user\nBefore <|vision_start|><|video_pad|><|vision_end|>\n after.<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert spans_text(text, question_char_spans(text, QWEN_SPECIALS)) == ["Before", "after."]
    internvl = "<|im_start|>user\n<video>\nWhat happens?<|im_end|>\n"
    assert spans_text(internvl, question_char_spans(internvl, ["<video>", "<|im_end|>"])) == ["What happens?"]


def test_prompt_without_chat_template_is_one_user_turn():
    text = "<|video_pad|> describe it "
    assert spans_text(text, question_char_spans(text, QWEN_SPECIALS)) == ["describe it"]


def test_spans_move_past_expanded_placeholders():
    # "<v>" (3 chars) at 0 expanded to 10 chars, then "<v>" at 8 expanded to 5 chars.
    replacements = [{"span": (0, 3), "new_span": (0, 10)}, {"span": (8, 11), "new_span": (15, 20)}]
    assert shift_past_replacements([(3, 8), (11, 14)], replacements) == [(10, 15), (20, 23)]
    assert shift_past_replacements([(0, 0)], []) == [(0, 0)]


def test_tokens_overlapping_ignores_zero_width_tokens():
    offsets = [(0, 0), (0, 4), (4, 5), (5, 9), (9, 9)]
    assert tokens_overlapping(offsets, [(3, 6)]) == [0, 1, 1, 1, 0]


def test_alignment_outputs_are_requested_without_duplicating_user_kwargs():
    kwargs = {"text_kwargs": {"return_offsets_mapping": True}}
    assert request_alignment_outputs(kwargs) == ["text_replacement_offsets"]
    assert kwargs == {"text_kwargs": {"return_offsets_mapping": True}, "return_text_replacement_offsets": True}
    kwargs = {}
    assert request_alignment_outputs(kwargs) == ["offset_mapping", "text_replacement_offsets"]
