"""The prefill benchmark's GroundVTS-I backbone, on a micro preset (one variant each, in-process), and its command's
usage errors."""

import math

import pytest
import torch

from groundvts.scripts.cli.benchmark_prefill import main
from groundvts.scripts.perf.prefill import INTERNVL_FRAME_TOKENS, INTERNVL_PRESETS, run_variant, token_counts

MICRO = dict(hidden=32, intermediate=64, layers=1, heads=4, kv_heads=2, head_dim=8, frames=3, text=10, dr=8)


@pytest.mark.parametrize("variant", ["dense", "vts_0.5", "mask_only_0.5"])
def test_internvl_variants_feed_the_expected_number_of_tokens(variant):
    n_video, other, frame = token_counts("internvl", MICRO)
    assert (n_video, other, frame) == (3 * INTERNVL_FRAME_TOKENS, 10 + 3 * 3, 256)
    result = run_variant(variant, MICRO, repeats=1, dtype=torch.float32, device="cpu", backbone="internvl")
    kept = math.ceil(0.5 * n_video) if variant == "vts_0.5" else n_video  # mask-only keeps every token
    assert result["llm_tokens"] == other + kept
    assert result["prefill_s_median"] > 0


def test_presets_belong_to_their_backbone(capsys):
    assert INTERNVL_PRESETS["internvl8b"]["hidden"] == 4096 and INTERNVL_PRESETS["internvl8b"]["frames"] == 16
    assert main(["--backbone", "internvl", "--preset", "qwen7b"]) == 2  # a usage error, as argparse's own
    assert "not among the internvl presets" in capsys.readouterr().err


def test_bad_arguments_are_clear_errors(capsys, monkeypatch):
    assert main(["--backbone", "internvl", "--repeats", "0"]) == 2
    assert "--repeats must be >= 1" in capsys.readouterr().err
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["--backbone", "internvl", "--device", "cuda"]) == 2
    assert "needs a CUDA GPU" in capsys.readouterr().err
