"""The query mask: which tokens are the user's question text in the last user turn.

VTS pools its query from the embeddings of these tokens, so the mask must exclude the system prompt, chat-template
tokens (role headers, `<|im_start|>`/`<|im_end|>`), vision tokens and markers, earlier turns, the answer and
padding. We find the question as character spans of the prompt *before* vision placeholders are expanded, move
them past the expansions with the processor's `text_replacement_offsets`, and mark every token whose
`offset_mapping` overlaps a span (the same alignment transformers uses for assistant masks).

Hub-facing helper: copied next to the processors by `save_pretrained`, so it imports nothing from `groundvts`.
"""

import re
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np


# ChatML, used by both backbones (Qwen2.5-VL and InternVL3.5 on Qwen3).
USER_TURN_HEADER = "<|im_start|>user\n"
TURN_END = "<|im_end|>"

Span = tuple[int, int]


def question_char_spans(
    text: str,
    split_tokens: Iterable[str],
    user_turn_header: str = USER_TURN_HEADER,
    turn_end: str = TURN_END,
) -> list[Span]:
    """Character spans of the question text in the last user turn of a rendered prompt.

    The turn's content is cut at every special/vision token and each piece is stripped of surrounding whitespace
    (template newlines such as the one after `<video>`). A prompt without a user header counts as one user turn.
    """
    header_at = text.rfind(user_turn_header)
    start = 0 if header_at < 0 else header_at + len(user_turn_header)
    end = text.find(turn_end, start)
    end = len(text) if end < 0 else end
    tokens = sorted({token for token in split_tokens if token}, key=len, reverse=True)
    pieces, cursor = [], start
    if tokens:
        pattern = re.compile("|".join(re.escape(token) for token in tokens))
        for match in pattern.finditer(text, start, end):
            pieces.append((cursor, match.start()))
            cursor = match.end()
    pieces.append((cursor, end))
    return [stripped for piece in pieces if (stripped := _strip_span(text, piece)) is not None]


def _strip_span(text: str, span: Span) -> Span | None:
    start, end = span
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if end > start else None


def shift_past_replacements(spans: Sequence[Span], replacements: Sequence[dict[str, Any]]) -> list[Span]:
    """Move spans of the original text to the text where placeholders were expanded.

    `replacements` are one row of the processor's `text_replacement_offsets` (dicts with the placeholder's
    original `span` and its expanded `new_span`). Question spans never contain a placeholder.
    """
    ends = [replacement["span"][1] for replacement in replacements]
    growth = [replacement["new_span"][1] - replacement["span"][1] for replacement in replacements]
    shifted = []
    for start, end in spans:
        # Growth accumulated by every placeholder that ends at or before the span start.
        done = sum(1 for placeholder_end in ends if placeholder_end <= start)
        offset = growth[done - 1] if done else 0
        shifted.append((start + offset, end + offset))
    return shifted


def tokens_overlapping(offsets: Sequence[Sequence[int]], spans: Sequence[Span]) -> list[int]:
    """1 for every token whose character range overlaps one of `spans` (zero-width tokens never do)."""
    mask = []
    for token_start, token_end in offsets:
        hit = token_end > token_start and any(token_start < end and token_end > start for start, end in spans)
        mask.append(int(hit))
    return mask


def build_query_mask(
    texts: Sequence[str],
    offset_mapping: Any,
    replacement_offsets: Sequence[Sequence[dict[str, Any]]] | None,
    split_tokens: Iterable[str],
) -> list[list[int]]:
    """Per row, 1 exactly on the tokens of the question text in the last user turn."""
    split_tokens = list(split_tokens)
    offset_rows = _as_nested_list(offset_mapping)
    if replacement_offsets is None or len(replacement_offsets) == 0:
        replacement_offsets = [[] for _ in texts]
    masks = []
    for text, offsets, replacements in zip(texts, offset_rows, replacement_offsets):
        spans = shift_past_replacements(question_char_spans(text, split_tokens), replacements)
        masks.append(tokens_overlapping(offsets, spans))
    return masks


def tokens_in_replacements(
    offsets: Sequence[Sequence[int]], replacements: Sequence[dict[str, Any]], kind: str
) -> list[int]:
    """1 for every token lying inside an expanded placeholder of type `kind` ("image" or "video")."""
    spans = [tuple(replacement["new_span"]) for replacement in replacements if replacement["type"] == kind]
    return tokens_overlapping(offsets, spans)


def request_alignment_outputs(kwargs: dict[str, Any]) -> list[str]:
    """Make the processor return `offset_mapping` and `text_replacement_offsets`.

    Returns the keys the caller did not ask for, to drop from the output afterwards. A key the caller set inside
    `text_kwargs` is set there (setting it twice raises in transformers).
    """
    unrequested = []
    for key in ("return_offsets_mapping", "return_text_replacement_offsets"):
        text_kwargs = kwargs.get("text_kwargs") or {}
        if key in text_kwargs:
            requested = bool(text_kwargs[key])
            kwargs["text_kwargs"] = {**text_kwargs, key: True}
            if key in kwargs:
                kwargs[key] = True
        else:
            requested = bool(kwargs.get(key))
            kwargs[key] = True
        if not requested:
            unrequested.append("offset_mapping" if key == "return_offsets_mapping" else "text_replacement_offsets")
    return unrequested


def like_input_ids(rows: list[list[int]], input_ids: Any) -> Any:
    """Return `rows` in the container type of `input_ids` (torch LongTensor, numpy array or lists)."""
    if hasattr(input_ids, "new_tensor"):
        return input_ids.new_tensor(rows)
    if isinstance(input_ids, np.ndarray):
        return np.asarray(rows, dtype=np.int64)
    return rows


def _as_nested_list(value: Any) -> list:
    return value.tolist() if hasattr(value, "tolist") else [list(row) for row in value]


def special_token_strings(tokenizer: Any, *extra: str | None) -> list[str]:
    """Every special token string of `tokenizer` (named, extra and added-special) plus `extra`."""
    tokens = set(getattr(tokenizer, "all_special_tokens", []) or [])
    decoder = getattr(tokenizer, "added_tokens_decoder", {}) or {}
    tokens.update(str(added) for added in decoder.values() if getattr(added, "special", False))
    tokens.update(token for token in extra if token)
    return sorted(tokens)
