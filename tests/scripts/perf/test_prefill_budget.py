"""The prefill benchmark's `--variants budget` set: every strategy at rho 1/2, 1/4, 1/8 on micro presets (in-process),
the ratios of the summary, and the flags."""

import math
from types import SimpleNamespace

import pytest
import torch

from groundvts.scripts.cli.benchmark_prefill import build_parser, main
from groundvts.scripts.perf.harness import PerfSettings, variant_names
from groundvts.scripts.perf import prefill
from groundvts.scripts.perf.prefill import BUDGET_RATIOS, BUDGET_STRATEGIES, VARIANTS, run_variant, summarize, token_counts

QWEN_MICRO = dict(hidden=32, intermediate=64, layers=1, heads=4, kv_heads=2, grid=(8, 4, 4), text=10, dr=8)
INTERNVL_MICRO = dict(hidden=32, intermediate=64, layers=1, heads=4, kv_heads=2, head_dim=8, frames=2, text=10, dr=8)


def test_the_budget_set_is_dense_and_every_strategy_at_every_ratio():
    budget = variant_names(prefill, "budget")
    assert budget[0] == "dense" and len(budget) == 1 + len(BUDGET_STRATEGIES) * len(BUDGET_RATIOS)
    assert {VARIANTS[name][0] for name in budget[1:]} == set(BUDGET_STRATEGIES)
    assert {"temporal_redundancy_0.125", "centre_distance_0.25", "vts_0.5", "uniform_0.125"} <= set(budget)
    assert variant_names(prefill, "default") == ("dense", "vts_0.5", "vts_0.25", "mask_only_0.5")
    with pytest.raises(ValueError, match="--variants must be one of"):
        variant_names(prefill, "everything")


@pytest.mark.parametrize("backbone, preset", [("qwen2_5_vl", QWEN_MICRO), ("internvl", INTERNVL_MICRO)])
@pytest.mark.parametrize("strategy", ["temporal_redundancy", "centre_distance", "random", "parameter_free", "vts"])
def test_each_strategy_feeds_its_budget_to_the_language_model(backbone, preset, strategy):
    n_video, other, _ = token_counts(backbone, preset)
    result = run_variant(f"{strategy}_0.125", preset, repeats=1, dtype=torch.float32, device="cpu", backbone=backbone)
    assert result["llm_tokens"] == other + math.ceil(0.125 * n_video)
    assert result["vts_module_s_median"] > 0 and result["strategy"] == ("token" if strategy == "vts" else strategy)


def test_the_summary_has_time_memory_and_flops_ratios_against_dense():
    settings = SimpleNamespace(preset_config=QWEN_MICRO, backbone="qwen2_5_vl", preset="micro", device="cpu",
                               dtype="float32", repeats=1)
    results = {name: run_variant(name, QWEN_MICRO, 1, torch.float32, "cpu") for name in ("dense", "uniform_0.25")}
    lines, report = summarize(results, settings)
    dense, uniform = report["results"]["dense"], report["results"]["uniform_0.25"]
    assert dense["time_ratio_vs_dense"] == dense["analytic_flops_ratio"] == 1.0
    n_video, other, frame = token_counts("qwen2_5_vl", QWEN_MICRO)
    assert uniform["llm_tokens"] == other + math.ceil(0.25 * n_video / frame) * frame  # whole frames
    flops = lambda n: prefill.analytic_prefill_flops(n, 32, 64, 1)  # noqa: E731
    assert uniform["analytic_flops_ratio"] == pytest.approx(flops(uniform["llm_tokens"]) / flops(other + n_video))
    assert "memory_ratio_vs_dense" in uniform and uniform["vts_module_pct_of_dense_prefill"] >= 0
    assert any(line.startswith("uniform_0.25") for line in lines)


def test_the_gpu_flags_parse(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # the code path exists; no GPU needed to parse
    settings, _ = build_parser().parse_command(
        ["--preset", "qwen7b", "--device", "cuda", "--dtype", "bfloat16", "--variants", "budget"]
    )
    assert isinstance(settings, PerfSettings) and (settings.device, settings.variants) == ("cuda", "budget")


def test_an_unknown_variant_set_is_a_one_line_error(capsys, tmp_path):
    assert main(["--variants", "everything", "--out", str(tmp_path / "b.json")]) == 2
    assert capsys.readouterr().err.startswith("error: --variants must be one of")
