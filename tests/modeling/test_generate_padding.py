"""Batched greedy `generate` equals generating each sample alone, with and without a cache, for both backbones: each
generated token continues one past its own row's largest position. Generation pads on the left, as for every
decoder-only model: a right-padded row would predict its first token from a pad, so `generate` refuses it (stock
transformers only warns). Right padding is covered for the forward pass, which training uses, in the per-backbone
tests."""

from __future__ import annotations

import pytest
import torch

from tiny_models import collate, collate_internvl, collate_qwen3, internvl_sample, qwen3_video_sample, video_sample

STEPS = 4
QWEN_SAMPLES = [
    dict(prefix=3, grid=(3, 4, 4), question=2, seed=0),
    dict(prefix=1, grid=(2, 4, 6), question=5, seed=1),
]
INTERNVL_SAMPLES = [dict(prefix=3, frames=2, question=4, seed=0), dict(prefix=1, frames=3, question=2, seed=1)]


def new_tokens(model, batch, use_cache):
    with torch.no_grad():
        out = model.generate(
            **batch, max_new_tokens=STEPS, min_new_tokens=STEPS, do_sample=False, use_cache=use_cache
        )
    return out[:, batch["input_ids"].shape[1]:]


@pytest.mark.parametrize("use_cache", [True, False])
@pytest.mark.parametrize("padding_side", ["left"])
@pytest.mark.parametrize("backbone", ["qwen", "qwen3", "internvl"])
def test_batched_generate_equals_one_by_one(qwen_model, qwen3_model, internvl_model, backbone, padding_side, use_cache):
    if backbone == "qwen":
        model, samples, make = qwen_model, [video_sample(**s) for s in QWEN_SAMPLES], collate
    elif backbone == "qwen3":
        model, samples, make = qwen3_model, [qwen3_video_sample(**s) for s in QWEN_SAMPLES], collate_qwen3
    else:
        model, samples, make = internvl_model, [internvl_sample(**s) for s in INTERNVL_SAMPLES], collate_internvl
    batched = new_tokens(model, make(samples, padding_side), use_cache)
    for row, sample in enumerate(samples):
        alone = new_tokens(model, make([sample], padding_side), use_cache)
        assert torch.equal(batched[row], alone[0]), (row, batched[row].tolist(), alone[0].tolist())


@pytest.mark.parametrize("backbone", ["qwen", "qwen3", "internvl"])
def test_right_padded_generation_is_refused_with_the_fix(qwen_model, qwen3_model, internvl_model, backbone):
    if backbone == "qwen":
        model, batch = qwen_model, collate([video_sample(**s) for s in QWEN_SAMPLES], "right")
    elif backbone == "qwen3":
        model, batch = qwen3_model, collate_qwen3([qwen3_video_sample(**s) for s in QWEN_SAMPLES], "right")
    else:
        model, batch = internvl_model, collate_internvl([internvl_sample(**s) for s in INTERNVL_SAMPLES], "right")
    assert bool((batch["attention_mask"][:, -1] == 0).any())
    with pytest.raises(ValueError, match="pad prompts on the left"), torch.no_grad():
        model.generate(**batch, max_new_tokens=2)
