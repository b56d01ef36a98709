"""Video collator: Grounding-FT / LLaVA-Video records → GroundVTS model inputs with assistant-only labels.

A record is `{"messages": [...], "videos": [path, ...]}` with transformers' structured content (a `{"type":
"video"}` block where each video goes). The collator renders the conversation with the processor's chat template,
runs the GroundVTS processor (which samples the video at the configured fps / frame count and returns
`query_mask`), and labels exactly the assistant turns: their text and the turn's end token. Everything else —
system prompt, user turns, vision tokens and markers, padding — is -100.

Assistant spans are found as characters of the rendered text (the conversation rendered up to each assistant turn
is a prefix of the whole), moved past the vision placeholder expansions and mapped to tokens through
`offset_mapping`, the same alignment the processor uses for `query_mask`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from groundvts.processing.query_mask import request_alignment_outputs, shift_past_replacements, tokens_overlapping


IGNORE_INDEX = -100


def clean_messages(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Messages as the chat template expects them: Arrow stores content blocks as structs, so a `{"type":
    "video"}` block read back from a `datasets.Dataset` carries `text: None`; drop such empty keys."""
    cleaned = []
    for message in messages:
        content = message["content"]
        if not isinstance(content, str):
            content = [{key: value for key, value in block.items() if value is not None} for block in content]
        cleaned.append({"role": message["role"], "content": content})
    return cleaned


class GroundVTSVideoCollator:
    """Collate conversation records with videos into a padded, labelled batch for either GroundVTS backbone.

    Args:
        processor: a GroundVTS processor (Qwen2.5-VL or InternVL).
        video_kwargs: passed to every processor call, e.g. `{"fps": 2.0, "max_frames": 128, "max_pixels": 16384}`
            (GroundVTS-Q) or `{"num_frames": 16}` (GroundVTS-I).
        max_length: a batch whose longest row exceeds it raises (truncating would cut vision tokens out of their
            features); None accepts any length.
        padding_side: "right" (the usual for training) or "left".
    """

    def __init__(
        self,
        processor: Any,
        video_kwargs: Mapping[str, Any] | None = None,
        max_length: int | None = None,
        padding_side: str = "right",
    ) -> None:
        if padding_side not in ("left", "right"):
            raise ValueError(f"`padding_side` must be 'left' or 'right', got {padding_side!r}.")
        self.processor = processor
        self.video_kwargs = dict(video_kwargs or {})
        self.max_length = max_length
        self.padding_side = padding_side

    def __call__(self, records: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        texts, spans, videos = [], [], []
        for index, record in enumerate(records):
            if "messages" not in record:
                raise ValueError(f"Record {index} has no `messages`; expected {{'messages': [...], 'videos': [...]}}.")
            messages = clean_messages(record["messages"])
            text, assistant_spans = self.render(messages)
            texts.append(text)
            spans.append(assistant_spans)
            videos.extend(record.get("videos") or [])

        kwargs: dict[str, Any] = {"padding": True, "return_tensors": "pt", "padding_side": self.padding_side}
        unrequested = request_alignment_outputs(kwargs)
        batch = self.processor(text=texts, videos=videos or None, **kwargs, **self.video_kwargs)
        offsets = batch["offset_mapping"].tolist()
        replacements = batch.get("text_replacement_offsets") or [[] for _ in texts]
        for key in unrequested:
            batch.pop(key, None)

        labels = torch.full_like(batch["input_ids"], IGNORE_INDEX)
        for row, (row_spans, row_offsets, row_replacements) in enumerate(zip(spans, offsets, replacements)):
            hit = tokens_overlapping(row_offsets, shift_past_replacements(row_spans, row_replacements))
            hit = torch.tensor(hit, dtype=torch.bool) & batch["attention_mask"][row].bool()
            labels[row][hit] = batch["input_ids"][row][hit]
        if "mm_token_type_ids" in batch:
            labels[batch["mm_token_type_ids"] != 0] = IGNORE_INDEX  # vision tokens are never targets
        batch["labels"] = labels

        if self.max_length is not None and batch["input_ids"].shape[1] > self.max_length:
            raise ValueError(
                f"A batch row has {batch['input_ids'].shape[1]} tokens, more than max_length={self.max_length}."
                " Lower the video fps / frame count or pixels, or raise `max_length`."
            )
        return dict(batch)

    def render(self, messages: list[dict[str, Any]]) -> tuple[str, list[tuple[int, int]]]:
        """The conversation's text and the character spans of its assistant turns (content + end-of-turn token)."""
        template = self.processor.apply_chat_template
        text = template(messages, tokenize=False)
        spans = []
        for turn, message in enumerate(messages):
            if message["role"] != "assistant":
                continue
            start = len(template(messages[:turn], tokenize=False, add_generation_prompt=True))
            through = template(messages[: turn + 1], tokenize=False)
            if not text.startswith(through) or start > len(through):
                raise ValueError(
                    "The chat template renders an assistant turn differently inside the full conversation, so its"
                    " answer tokens cannot be located; use a template whose turns render as prefixes."
                )
            end = len(through.rstrip())  # the end-of-turn token is a target, the newline after it is not
            if end > start:
                spans.append((start, end))
        if not spans:
            raise ValueError("A training record needs at least one non-empty assistant turn to learn from.")
        return text, spans
