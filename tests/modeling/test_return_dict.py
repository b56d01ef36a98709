"""`return_dict=False` returns the output's `to_tuple()`, as stock Qwen2.5-VL and InternVL do (`can_return_tuple`),
for the inner and the outer model of both backbones, with and without video."""

import pytest
import torch
from transformers.cache_utils import Cache

from tiny_models import vts_settings


def assert_same(ours, expected) -> None:
    """Element-wise equality of two (nested) model output tuples."""
    if torch.is_tensor(expected):
        assert torch.is_tensor(ours) and torch.equal(ours, expected)
    elif isinstance(expected, tuple):
        assert isinstance(ours, tuple) and len(ours) == len(expected)
        for a, b in zip(ours, expected):
            assert_same(a, b)
    elif isinstance(expected, Cache):
        # Two runs build two caches; they must hold the same sequence.
        assert type(ours) is type(expected) and ours.get_seq_length() == expected.get_seq_length()
    else:
        assert ours == expected


def text_only(batch: dict) -> dict:
    """The batch without any visual input: plain text rows (no VTS runs)."""
    return {"input_ids": batch["input_ids"].clamp(max=90), "attention_mask": batch["attention_mask"]}


@pytest.mark.parametrize("part", ["outer", "inner"])
@pytest.mark.parametrize("video", [True, False])
@pytest.mark.parametrize("how", ["argument", "config"])
def test_return_dict_false_returns_the_output_as_a_tuple(video_backbone, part, video, how):
    model, batch = video_backbone
    module = model if part == "outer" else model.model
    inputs = batch if video else text_only(batch)
    extra = dict(return_vts_selection=True, output_hidden_states=True) if video else {}
    with torch.no_grad():
        expected = module(**inputs, **extra)
        if how == "argument":
            ours = module(**inputs, **extra, return_dict=False)
        else:
            with vts_settings(model, return_dict=False):
                ours = module(**inputs, **extra)
    assert type(ours) is tuple
    assert_same(ours, expected.to_tuple())
    # Stock semantics: the first entry is the logits (outer, no loss) or the last hidden state (inner).
    first = expected.logits if part == "outer" else expected.last_hidden_state
    assert torch.equal(ours[0], first)
    if video:
        assert expected.video_keep is not None  # the VTS fields are part of the tuple too


def test_return_dict_false_with_labels_starts_with_the_loss(video_backbone):
    model, batch = video_backbone
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    with torch.no_grad():
        expected = model(**batch, labels=labels)
        ours = model(**batch, labels=labels, return_dict=False)
    assert torch.equal(ours[0], expected.loss) and torch.equal(ours[1], expected.logits)
