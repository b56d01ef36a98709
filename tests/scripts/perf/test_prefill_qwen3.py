"""The prefill and train-step benchmarks on the GroundVTS-Q3 backbone (micro preset, in-process): the LLM sees the
timestamps and start/end tokens of every temporal patch plus the kept video tokens."""

import math

import pytest
import torch

from groundvts.scripts.perf import train_step
from groundvts.scripts.perf.prefill import QWEN3_PRESETS, TIMESTAMP_TOKENS, run_variant, token_counts

MICRO = dict(hidden=32, intermediate=64, layers=1, heads=4, kv_heads=2, head_dim=8, grid=(3, 8, 8), text=10, dr=8)


@pytest.mark.parametrize("variant", ["dense", "vts_0.5", "mask_only_0.5"])
def test_qwen3_variants_feed_the_expected_number_of_tokens(variant):
    n_video, other, per_patch = token_counts("qwen3_vl", MICRO)
    assert (n_video, other, per_patch) == (48, 10 + 3 * (TIMESTAMP_TOKENS + 2), 16)
    result = run_variant(variant, MICRO, repeats=1, dtype=torch.float32, device="cpu", backbone="qwen3_vl")
    kept = math.ceil(0.5 * n_video) if variant == "vts_0.5" else n_video  # mask-only keeps every token
    assert result["llm_tokens"] == other + kept
    assert result["prefill_s_median"] > 0


def test_qwen3_train_step_trains_the_stage2_set_on_fewer_tokens():
    n_video, other, _ = token_counts("qwen3_vl", MICRO)
    result = train_step.run_variant("vts_0.5", MICRO, 1, torch.float32, "cpu", "qwen3_vl")
    assert result["llm_tokens"] == other + math.ceil(0.5 * n_video) + train_step.ANSWER_TOKENS
    trainable = result["trainable_parameters"]
    assert trainable["lora"] > 0 and trainable["vts"] > 0 and trainable["projector"] > 0
    assert trainable["vision"] == 0 and trainable["language_model"] == 0


def test_the_8b_preset_is_qwen3_vl_8b():
    preset = QWEN3_PRESETS["qwen3vl8b"]
    assert (preset["hidden"], preset["intermediate"], preset["layers"], preset["kv_heads"]) == (4096, 12288, 36, 8)
    assert token_counts("qwen3_vl", preset)[0] == 16384
