"""Benchmark the language-model prefill of GroundVTS-Q / -Q3 / -I: dense vs VTS (rho 0.5, 0.25) vs mask-only.

Every variant runs the real GroundVTS inner forward on one long video prompt with random weights;
only the vision tower is skipped (its cost is the same for every variant), by feeding precomputed
video features. "mask-only" is the official GroundVTS approach: every token stays in the sequence
and the unselected ones are hidden by the attention mask, so nothing is saved.

The GroundVTS-I backbone (InternVL3.5) has video frames of 256 `<IMG_CONTEXT>` tokens each inside
`FrameN: <img>...</img>` lines, and 1-D positions. GroundVTS-Q3 (Qwen3-VL) has one `<t seconds>` block per
temporal patch and DeepStack features, which follow the kept tokens. The presets and model builders here are shared with
`perf.train_step`; `perf.harness` runs each variant in its own process. The command is
`python -m groundvts.scripts.cli.benchmark_prefill`.
"""

from __future__ import annotations

import math
import statistics
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from groundvts.hub_configs.backbones import BACKBONES
from groundvts.scripts.perf.host_memory import HostMemoryPeak

if TYPE_CHECKING:  # the harness imports this module (for the presets), so only for the annotations
    from groundvts.scripts.perf.harness import PerfSettings

PRESETS = {
    # Mid-size: small enough for a 2-core CPU, long enough (4,096 video tokens) for attention to matter.
    "mid": dict(hidden=512, intermediate=2752, layers=6, heads=8, kv_heads=2, grid=(16, 32, 32), text=96, dr=128),
    # Qwen2.5-VL-7B language model (random weights; speed does not depend on them). 128 frames at 2 fps.
    "qwen7b": dict(hidden=3584, intermediate=18944, layers=28, heads=28, kv_heads=4, grid=(64, 28, 36), text=96, dr=512),
}
# GroundVTS-I (InternVL3.5): `frames` 448-px frames of 256 tokens each (the official InternVL setting is 16 frames).
INTERNVL_PRESETS = {
    # Mid-size, same LLM as Qwen's "mid": 4,096 video tokens.
    "mid": dict(hidden=512, intermediate=2752, layers=6, heads=8, kv_heads=2, head_dim=64, frames=16, text=96, dr=128),
    # InternVL3.5-8B language model (Qwen3-8B; random weights). 16 frames as in GroundVTS-I training.
    "internvl8b": dict(hidden=4096, intermediate=12288, layers=36, heads=32, kv_heads=8, head_dim=128, frames=16,
                       text=96, dr=128),
    # Same with 64 frames (16,384 video tokens): where attention starts to dominate.
    "internvl8b_64f": dict(hidden=4096, intermediate=12288, layers=36, heads=32, kv_heads=8, head_dim=128, frames=64,
                           text=96, dr=128),
}
INTERNVL_FRAME_TOKENS = 256  # (448 / 14)^2 * 0.5^2
# GroundVTS-Q3 (Qwen3-VL): `grid` (temporal patches, h, w) in 16-px patches; every temporal patch is its own block
# `<t seconds><|vision_start|>...<|vision_end|>` (TIMESTAMP_TOKENS text tokens for the seconds).
QWEN3_PRESETS = {
    # Mid-size, same LLM as Qwen's "mid": 4,096 video tokens.
    "mid": dict(hidden=512, intermediate=2752, layers=6, heads=8, kv_heads=2, head_dim=64, grid=(16, 32, 32), text=96,
                dr=128),
    # Qwen3-VL-8B language model (random weights). 128 frames at 2 fps, 16 x 16 merged tokens per temporal patch.
    "qwen3vl8b": dict(hidden=4096, intermediate=12288, layers=36, heads=32, kv_heads=8, head_dim=128,
                      grid=(64, 32, 32), text=96, dr=512),
}
TIMESTAMP_TOKENS = 5  # "<12.3 seconds>" in Qwen's tokenizer
# `--backbone` values are the registry's backbone tags.
QWEN_TAG = BACKBONES["groundvts_qwen2_5_vl"].tag
QWEN3_TAG = BACKBONES["groundvts_qwen3_vl"].tag
INTERNVL_TAG = BACKBONES["groundvts_internvl"].tag
BACKBONE_PRESETS = {QWEN_TAG: PRESETS, QWEN3_TAG: QWEN3_PRESETS, INTERNVL_TAG: INTERNVL_PRESETS}
# name -> (vts_strategy, rho or None for dense, mask-only). `vts_<rho>` is GroundVTS (the token strategy).
VARIANTS: dict[str, tuple[str, float | None, bool]] = {
    "dense": ("dense", None, False),
    "vts_0.5": ("token", 0.5, False),
    "vts_0.25": ("token", 0.25, False),
    "mask_only_0.5": ("token", 0.5, True),
}
BUDGET_RATIOS = (0.5, 0.25, 0.125)
BUDGET_STRATEGIES = ("token", "uniform", "random", "temporal_redundancy", "centre_distance", "parameter_free")
# `--variants budget`: dense and every strategy at every ratio (`<strategy>_<rho>`), for the accuracy-at-a-budget table.
VARIANTS.update({
    ("vts" if strategy == "token" else strategy) + f"_{rho:g}": (strategy, rho, False)
    for strategy in BUDGET_STRATEGIES for rho in BUDGET_RATIOS
})
VARIANT_SETS = {
    "default": ("dense", "vts_0.5", "vts_0.25", "mask_only_0.5"),
    "budget": ("dense", *(name for name, (_, rho, mask) in VARIANTS.items() if rho is not None and not mask)),
}
DEFAULT_REPEATS = 5
DEFAULT_OUT = Path("benchmark_prefill.json")


def analytic_prefill_flops(n: int, d: int, m: int, layers: int) -> float:
    """Per-layer C(n) = 4nd^2 + 2n^2d + 3ndm (projections, attention, gated MLP), summed over layers."""
    return layers * (4 * n * d * d + 2 * n * n * d + 3 * n * d * m)


def token_counts(backbone: str, preset: dict) -> tuple[int, int, int]:
    """(video tokens, other tokens, tokens per frame) of the benchmark prompt."""
    if backbone == INTERNVL_TAG:
        # Per frame: "FrameN:" label, <img>, 256 context tokens, </img>.
        return preset["frames"] * INTERNVL_FRAME_TOKENS, preset["text"] + 3 * preset["frames"], INTERNVL_FRAME_TOKENS
    t, h, w = preset["grid"]
    if backbone == QWEN3_TAG:  # per temporal patch: timestamp text, <|vision_start|>, <|vision_end|>
        return t * h * w // 4, preset["text"] + t * (TIMESTAMP_TOKENS + 2), h * w // 4
    return t * h * w // 4, preset["text"] + 2, h * w // 4


def build(preset: dict, dtype: torch.dtype, device: str, with_lm_head: bool = False):
    """GroundVTS-Q inner model (or the full model with `with_lm_head`) with a skipped vision tower, and inputs."""
    from groundvts.modeling.configuration_groundvts_qwen2_5_vl import GroundVTSQwen2_5_VLConfig
    from groundvts.modeling.modeling_groundvts_qwen2_5_vl import (
        GroundVTSQwen2_5_VLForConditionalGeneration,
        GroundVTSQwen2_5_VLModel,
    )

    t, h, w = preset["grid"]
    config = GroundVTSQwen2_5_VLConfig(
        text_config=dict(
            vocab_size=1024, bos_token_id=1, eos_token_id=2, hidden_size=preset["hidden"], intermediate_size=preset["intermediate"],
            num_hidden_layers=preset["layers"], num_attention_heads=preset["heads"],
            num_key_value_heads=preset["kv_heads"], max_position_embeddings=65536,
            rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": _mrope_section(preset)},
        ),
        vision_config=dict(depth=1, hidden_size=32, intermediate_size=32, num_heads=2, out_hidden_size=preset["hidden"],
                           tokens_per_second=2),
        image_token_id=1000, video_token_id=1001, vision_start_token_id=1002, vision_end_token_id=1003,
        vts_reduction_dim=preset["dr"],
    )
    model_class = GroundVTSQwen2_5_VLForConditionalGeneration if with_lm_head else GroundVTSQwen2_5_VLModel
    with torch.device(device):
        model = model_class(config).to(dtype).eval()
    n_video = t * h * w // 4
    features = torch.randn(n_video, preset["hidden"], dtype=dtype, device=device)
    # Skip the vision tower: every variant would pay the same for it.
    inner = model.model if with_lm_head else model
    inner.get_video_features = lambda *args, **kwargs: type("Out", (), {"pooler_output": (features,)})()
    half = preset["text"] // 2
    ids = [5] * half + [1002] + [1001] * n_video + [1003] + [6] * (preset["text"] - half)
    input_ids = torch.tensor([ids], device=device)
    inputs = dict(
        input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
        mm_token_type_ids=(input_ids == 1001).long() * 2,
        pixel_values_videos=torch.zeros(1, device=device), video_grid_thw=torch.tensor([[t, h, w]], device=device),
        second_per_grid_ts=torch.tensor([1.0], device=device),
    )
    return model, inputs, features


def build_qwen3(preset: dict, dtype: torch.dtype, device: str, with_lm_head: bool = False):
    """GroundVTS-Q3 inner model (or the full model with `with_lm_head`) with a skipped vision tower (main and three
    DeepStack features given), and inputs laid out as the Qwen3-VL processor writes them."""
    from groundvts.modeling.configuration_groundvts_qwen3_vl import GroundVTSQwen3VLConfig
    from groundvts.modeling.modeling_groundvts_qwen3_vl import GroundVTSQwen3VLForConditionalGeneration, GroundVTSQwen3VLModel

    t, h, w = preset["grid"]
    config = GroundVTSQwen3VLConfig(
        text_config=dict(
            vocab_size=1024, bos_token_id=1, eos_token_id=2, hidden_size=preset["hidden"],
            intermediate_size=preset["intermediate"], num_hidden_layers=preset["layers"],
            num_attention_heads=preset["heads"], num_key_value_heads=preset["kv_heads"], head_dim=preset["head_dim"],
            max_position_embeddings=65536,
            rope_parameters={"rope_type": "default", "rope_theta": 5e6, "mrope_interleaved": True,
                             "mrope_section": _mrope_section(dict(preset, hidden=preset["head_dim"] * preset["heads"]))},
        ),
        vision_config=dict(depth=3, hidden_size=32, intermediate_size=32, num_heads=2, out_hidden_size=preset["hidden"],
                           deepstack_visual_indexes=[0, 1, 2]),
        image_token_id=1000, video_token_id=1001, vision_start_token_id=1002, vision_end_token_id=1003,
        vts_reduction_dim=preset["dr"],
    )
    model_class = GroundVTSQwen3VLForConditionalGeneration if with_lm_head else GroundVTSQwen3VLModel
    with torch.device(device):
        model = model_class(config).to(dtype).eval()
    n_video, per_patch = t * h * w // 4, h * w // 4
    features = torch.randn(n_video, preset["hidden"], dtype=dtype, device=device)
    deepstack = [(torch.randn(n_video, preset["hidden"], dtype=dtype, device=device),) for _ in range(3)]
    # Skip the vision tower: every variant would pay the same for it.
    inner = model.model if with_lm_head else model
    inner.get_image_features = lambda *args, **kwargs: type(
        "Out", (), {"pooler_output": (features,), "deepstack_features": deepstack}
    )()
    half = preset["text"] // 2
    ids = [5] * half
    for _ in range(t):
        ids += [7] * TIMESTAMP_TOKENS + [1002] + [1001] * per_patch + [1003]
    ids += [6] * (preset["text"] - half)
    input_ids = torch.tensor([ids], device=device)
    inputs = dict(
        input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
        mm_token_type_ids=(input_ids == 1001).long() * 2,
        pixel_values_videos=torch.zeros(1, device=device), video_grid_thw=torch.tensor([[t, h, w]], device=device),
    )
    return model, inputs, features


def build_internvl(preset: dict, dtype: torch.dtype, device: str, with_lm_head: bool = False):
    """GroundVTS-I inner model (or the full model with `with_lm_head`) with a tiny vision tower (skipped) and the
    preset's language model."""
    from groundvts.modeling.configuration_groundvts_internvl import GroundVTSInternVLConfig
    from groundvts.modeling.modeling_groundvts_internvl import (
        GroundVTSInternVLForConditionalGeneration,
        GroundVTSInternVLModel,
    )

    context, start, end, label = 1000, 1001, 1002, 1003
    config = GroundVTSInternVLConfig(
        text_config=dict(
            model_type="qwen3", vocab_size=1024, bos_token_id=1, eos_token_id=2, hidden_size=preset["hidden"],
            intermediate_size=preset["intermediate"], num_hidden_layers=preset["layers"],
            num_attention_heads=preset["heads"], num_key_value_heads=preset["kv_heads"], head_dim=preset["head_dim"],
            max_position_embeddings=65536, rope_parameters={"rope_type": "default", "rope_theta": 1e6},
        ),
        # 448 px / patch 14 / downsample 0.5 -> 256 tokens per frame, as in InternVL3.5; one tiny layer.
        vision_config=dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                           image_size=448, patch_size=14),
        image_token_id=context, image_seq_length=INTERNVL_FRAME_TOKENS, vts_reduction_dim=preset["dr"],
    )
    model_class = GroundVTSInternVLForConditionalGeneration if with_lm_head else GroundVTSInternVLModel
    with torch.device(device):
        model = model_class(config).to(dtype).eval()
    frames = preset["frames"]
    features = torch.randn(frames, INTERNVL_FRAME_TOKENS, preset["hidden"], dtype=dtype, device=device)
    # Skip the vision tower: every variant would pay the same for it.
    inner = model.model if with_lm_head else model
    inner.get_image_features = lambda *args, **kwargs: type("Out", (), {"pooler_output": features})()
    half = preset["text"] // 2
    ids, types = [5] * half, [0] * half
    for _ in range(frames):
        ids += [label, start] + [context] * INTERNVL_FRAME_TOKENS + [end]
        types += [0, 0] + [2] * INTERNVL_FRAME_TOKENS + [0]
    ids += [6] * (preset["text"] - half)
    types += [0] * (preset["text"] - half)
    input_ids = torch.tensor([ids], device=device)
    inputs = dict(
        input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
        mm_token_type_ids=torch.tensor([types], device=device),
        video_num_frames=torch.tensor([frames], device=device),
        pixel_values=torch.zeros(1, device=device),
    )
    return model, inputs, features.flatten(0, 1)


# backbone tag -> (preset, dtype, device, with_lm_head) -> (model, inputs, video features)
BUILDERS = {QWEN_TAG: build, QWEN3_TAG: build_qwen3, INTERNVL_TAG: build_internvl}


def _mask_only_inputs(backbone: str, model, inputs: dict):
    """Official approach: the stock forward keeps every token; the ones VTS did not select are only hidden by the
    attention mask (positions stay those of the full sequence). Returns (inputs, stock forward)."""
    with torch.no_grad():
        keep = model(**inputs, use_cache=False).token_keep
    if backbone == INTERNVL_TAG:
        from transformers import InternVLModel

        position_ids = torch.arange(keep.shape[1], device=keep.device)[None]
        stock_inputs = {k: v for k, v in inputs.items() if k not in ("mm_token_type_ids", "video_num_frames")}
        stock_inputs.update(attention_mask=keep.long(), position_ids=position_ids)
        return stock_inputs, lambda **kw: InternVLModel.forward(model, **kw)
    if backbone == QWEN3_TAG:
        from transformers import Qwen3VLModel

        position_ids, _ = model.get_rope_index(
            inputs["input_ids"], inputs["mm_token_type_ids"], video_grid_thw=inputs["video_grid_thw"]
        )
        stock_inputs = dict(inputs, attention_mask=keep.long(), position_ids=position_ids)
        return stock_inputs, lambda **kw: Qwen3VLModel.forward(model, **kw)
    from transformers import Qwen2_5_VLModel

    position_ids, _ = model.get_rope_index(
        inputs["input_ids"], inputs["mm_token_type_ids"], video_grid_thw=inputs["video_grid_thw"],
        second_per_grid_ts=inputs["second_per_grid_ts"],
    )
    stock_inputs = dict(inputs, attention_mask=keep.long(), position_ids=position_ids)
    return stock_inputs, lambda **kw: Qwen2_5_VLModel.forward(model, **kw)


def _mrope_section(preset: dict) -> list[int]:
    half = preset["hidden"] // preset["heads"] // 2
    return [half - 2 * (3 * half // 8), 3 * half // 8, 3 * half // 8]


def run_variant(
    name: str, preset: dict, repeats: int, dtype: torch.dtype, device: str, backbone: str = QWEN_TAG
) -> dict:
    model, inputs, features = BUILDERS[backbone](preset, dtype, device)
    # Peak memory counts everything after the weights exist, warm-up included (the allocator grows then).
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    cuda_before = torch.cuda.memory_allocated() if device == "cuda" else 0
    host_memory = HostMemoryPeak()
    host_memory.start()
    strategy, rho, mask_only = VARIANTS[name]
    model.config.vts_strategy = strategy
    if rho is not None:
        model.config.vts_keep_ratio = rho
    forward = model.forward  # the GroundVTS forward: the strategy's selection is inside the timed prefill
    if mask_only:
        inputs, forward = _mask_only_inputs(backbone, model, inputs)

    def prefill():
        with torch.no_grad():
            return forward(**inputs, use_cache=True)

    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    out = prefill()  # warm-up
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        out = prefill()
        sync()
        times.append(time.perf_counter() - start)
    peak = (torch.cuda.max_memory_allocated() - cuda_before if device == "cuda"
            else host_memory.growth())

    vts_times = []
    query = torch.randn(1, preset["hidden"], dtype=dtype, device=device)
    frame_size = token_counts(backbone, preset)[2]
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        with torch.no_grad():
            model.vts([features], query, [frame_size])
        sync()
        vts_times.append(time.perf_counter() - start)
    return {
        "variant": name,
        "llm_tokens": out.past_key_values.get_seq_length(),
        "prefill_s_median": statistics.median(times),
        "prefill_s_all": times,
        "strategy": strategy,
        "keep_ratio": rho,
        "vts_module_s_median": statistics.median(vts_times) if rho is not None and not mask_only else 0.0,
        "peak_memory_bytes": peak,
        "peak_memory_kind": "CUDA peak allocated above the weights" if device == "cuda" else "CPU max RSS growth above the weights",
    }


def summarize(results: dict[str, dict[str, Any]], settings: PerfSettings) -> tuple[list[str], dict[str, Any]]:
    """The printed table (ratios against dense, analytic FLOPs ratio, VTS share, peak memory) and the JSON report;
    adds the ratios to each variant's result."""
    preset = settings.preset_config
    n_video, text, _ = token_counts(settings.backbone, preset)
    dense = results["dense"]
    flops = lambda n: analytic_prefill_flops(n, preset["hidden"], preset["intermediate"], preset["layers"])
    lines = [
        f"backbone={settings.backbone} preset={settings.preset} device={settings.device} dtype={settings.dtype} "
        f"video_tokens={n_video} repeats={settings.repeats}",
        f"{'variant':<26}{'LLM tokens':>11}{'prefill s':>11}{'time ratio':>11}{'FLOPs ratio':>12}{'VTS % dense':>12}"
        f"{'peak MB':>10}{'mem ratio':>10}",
    ]
    for name, r in results.items():
        _, rho, mask_only = VARIANTS[name]
        # The LLM tokens the variant kept (whole frames for `uniform`), so the FLOPs ratio is the variant's own.
        kept = n_video if rho is None or mask_only else r["llm_tokens"] - text
        r["time_ratio_vs_dense"] = r["prefill_s_median"] / dense["prefill_s_median"]
        r["analytic_flops_ratio"] = flops(text + kept) / flops(text + n_video)
        r["vts_module_pct_of_dense_prefill"] = 100 * r["vts_module_s_median"] / dense["prefill_s_median"]
        r["memory_ratio_vs_dense"] = r["peak_memory_bytes"] / dense["peak_memory_bytes"] if dense["peak_memory_bytes"] else None
        memory_ratio = "-" if r["memory_ratio_vs_dense"] is None else f"{r['memory_ratio_vs_dense']:.3f}"
        lines.append(
            f"{name:<26}{r['llm_tokens']:>11}{r['prefill_s_median']:>11.3f}{r['time_ratio_vs_dense']:>11.3f}"
            f"{r['analytic_flops_ratio']:>12.3f}{r['vts_module_pct_of_dense_prefill']:>12.2f}"
            f"{r['peak_memory_bytes'] / 2**20:>10.1f}{memory_ratio:>10}"
        )
    report = {"backbone": settings.backbone, "preset": settings.preset, "config": preset, "device": settings.device,
              "dtype": settings.dtype, "video_tokens": n_video, "repeats": settings.repeats, "results": results}
    return lines, report
