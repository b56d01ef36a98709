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

import json
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from groundvts.processing.query_mask import request_alignment_outputs, shift_past_replacements, tokens_overlapping


IGNORE_INDEX = -100
# Per-token model inputs and their padding value (input_ids pads with the tokenizer's pad id).
SEQUENCE_FILLS = {"attention_mask": 0, "labels": IGNORE_INDEX, "query_mask": 0, "mm_token_type_ids": 0}


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
        cache: keep each record's processed tensors in memory and only pad them on later calls. For small
            datasets seen for many epochs (the synthetic benchmark), where decoding dominates; memory grows with
            every distinct record (about 1 MB per 100 visual tokens of a 112-px video in float32).
    """

    def __init__(
        self,
        processor: Any,
        video_kwargs: Mapping[str, Any] | None = None,
        max_length: int | None = None,
        padding_side: str = "right",
        cache: bool = False,
    ) -> None:
        if padding_side not in ("left", "right"):
            raise ValueError(f"`padding_side` must be 'left' or 'right', got {padding_side!r}.")
        self.processor = processor
        self.video_kwargs = dict(video_kwargs or {})
        self.max_length = max_length
        self.padding_side = padding_side
        self.cache: dict[str, dict[str, torch.Tensor]] | None = {} if cache else None

    def __call__(self, records: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        if self.cache is None:
            batch = self.encode(records)
        else:
            rows = []
            for record in records:
                key = json.dumps([record.get("messages"), record.get("videos")], sort_keys=True, default=str)
                if key not in self.cache:
                    self.cache[key] = self.encode([record])
                rows.append(self.cache[key])
            batch = self.pad_rows(rows)
        if self.max_length is not None and batch["input_ids"].shape[1] > self.max_length:
            raise ValueError(
                f"A batch row has {batch['input_ids'].shape[1]} tokens, more than max_length={self.max_length}."
                " Lower the video fps / frame count or pixels, or raise `max_length`."
            )
        return batch

    def pad_rows(self, rows: Sequence[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """One batch from single-record encodings: per-token tensors padded on `padding_side`, the rest (pixels,
        grids, frame counts) concatenated in record order, as one processor call on the whole batch gives."""
        fills = {**SEQUENCE_FILLS, "input_ids": self.processor.tokenizer.pad_token_id}
        length = max(row["input_ids"].shape[1] for row in rows)
        batch = {}
        for key in rows[0]:
            if key in fills:
                pads = [(length - row[key].shape[1], 0) if self.padding_side == "left" else (0, length - row[key].shape[1])
                        for row in rows]
                batch[key] = torch.cat([F.pad(row[key], pad, value=fills[key]) for row, pad in zip(rows, pads)])
            else:
                batch[key] = torch.cat([row[key] for row in rows])
        return batch

    def encode(self, records: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        """Render, process and label `records` in one processor call."""
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
        batch = self.process(texts, videos, **kwargs)
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
        return dict(batch)

    def process(self, texts: list[str], videos: list[Any], **kwargs: Any) -> Any:
        """One processor call with this collator's video settings."""
        return self.processor(text=texts, videos=videos or None, **kwargs, **self.video_kwargs)

    def encode_prompt(self, messages: Sequence[Mapping[str, Any]], videos: Sequence[Any]) -> dict[str, torch.Tensor]:
        """One prompt to answer (GRPO sampling): the conversation rendered up to the assistant's turn, processed
        with its videos; no labels. Cached like training records when the collator caches."""
        key = json.dumps(["prompt", messages, videos], sort_keys=True, default=str) if self.cache is not None else None
        if key is not None and key in self.cache:
            return self.cache[key]
        text = self.processor.apply_chat_template(clean_messages(messages), tokenize=False, add_generation_prompt=True)
        encoded = dict(self.process([text], list(videos), return_tensors="pt"))
        if key is not None:
            self.cache[key] = encoded
        return encoded

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
