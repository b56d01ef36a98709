"""The stage-2 train-step benchmark on micro presets (each variant in-process)."""

import math

import pytest
import torch

from groundvts.scripts.perf.train_step import ANSWER_TOKENS, run_variant
from groundvts.scripts.perf.prefill import token_counts

QWEN_MICRO = dict(hidden=32, intermediate=64, layers=1, heads=4, kv_heads=2, grid=(4, 8, 8), text=10, dr=8)
INTERNVL_MICRO = dict(hidden=32, intermediate=64, layers=1, heads=4, kv_heads=2, head_dim=8, frames=2, text=10, dr=8)


@pytest.mark.parametrize("backbone, preset", [("qwen2_5_vl", QWEN_MICRO), ("internvl", INTERNVL_MICRO)])
def test_vts_step_trains_on_fewer_tokens_with_the_stage2_trainable_set(backbone, preset):
    n_video, other, _ = token_counts(backbone, preset)
    dense = run_variant("dense", preset, 1, torch.float32, "cpu", backbone)
    sampled = run_variant("vts_0.5", preset, 1, torch.float32, "cpu", backbone)
    assert dense["llm_tokens"] == other + n_video + ANSWER_TOKENS
    assert sampled["llm_tokens"] == other + math.ceil(0.5 * n_video) + ANSWER_TOKENS
    for result in (dense, sampled):
        assert math.isfinite(result["loss"]) and result["step_s_median"] > 0
        trainable = result["trainable_parameters"]
        assert trainable["lora"] > 0 and trainable["vts"] > 0 and trainable["projector"] > 0
        assert trainable["vision"] == 0 and trainable["language_model"] == 0
