"""Benchmark the language-model prefill of GroundVTS-Q / GroundVTS-I: dense vs VTS (rho 0.5, 0.25) vs mask-only.

Every variant runs the real GroundVTS inner forward on one long video prompt with random weights;
only the vision tower is skipped (its cost is the same for every variant), by feeding precomputed
video features. "mask-only" is the official GroundVTS approach: every token stays in the sequence
and the unselected ones are hidden by the attention mask, so nothing is saved.

Each variant runs in its own process so that peak memory (CPU: max RSS growth; GPU: peak allocated)
is measured for that variant alone. Prints a table and writes JSON.

    python -m groundvts.scripts.perf.prefill --preset mid --repeats 5 --out bench.json
    python -m groundvts.scripts.perf.prefill --preset qwen7b --device cuda --dtype bfloat16
    python -m groundvts.scripts.perf.prefill --backbone internvl --preset internvl8b --device cuda --dtype bfloat16

`--backbone internvl` runs GroundVTS-I (InternVL3.5): video frames are 256 `<IMG_CONTEXT>` tokens each inside
`FrameN: <img>...</img>` lines, and positions are 1-D.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import statistics
import subprocess
import sys
import time

import torch

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
BACKBONE_PRESETS = {"qwen2_5_vl": PRESETS, "internvl": INTERNVL_PRESETS}
VARIANTS = {"dense": None, "vts_0.5": 0.5, "vts_0.25": 0.25, "mask_only_0.5": 0.5}


def analytic_prefill_flops(n: int, d: int, m: int, layers: int) -> float:
    """Per-layer C(n) = 4nd^2 + 2n^2d + 3ndm (projections, attention, gated MLP), summed over layers."""
    return layers * (4 * n * d * d + 2 * n * n * d + 3 * n * d * m)


def token_counts(backbone: str, preset: dict) -> tuple[int, int, int]:
    """(video tokens, other tokens, tokens per frame) of the benchmark prompt."""
    if backbone == "internvl":
        # Per frame: "FrameN:" label, <img>, 256 context tokens, </img>.
        return preset["frames"] * INTERNVL_FRAME_TOKENS, preset["text"] + 3 * preset["frames"], INTERNVL_FRAME_TOKENS
    t, h, w = preset["grid"]
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


def _mask_only_inputs(backbone: str, model, inputs: dict):
    """Official approach: the stock forward keeps every token; the ones VTS did not select are only hidden by the
    attention mask (positions stay those of the full sequence). Returns (inputs, stock forward)."""
    with torch.no_grad():
        keep = model(**inputs, use_cache=False).token_keep
    if backbone == "internvl":
        from transformers import InternVLModel

        position_ids = torch.arange(keep.shape[1], device=keep.device)[None]
        stock_inputs = {k: v for k, v in inputs.items() if k not in ("mm_token_type_ids", "video_num_frames")}
        stock_inputs.update(attention_mask=keep.long(), position_ids=position_ids)
        return stock_inputs, lambda **kw: InternVLModel.forward(model, **kw)
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
    name: str, preset: dict, repeats: int, dtype: torch.dtype, device: str, backbone: str = "qwen2_5_vl"
) -> dict:
    builder = build_internvl if backbone == "internvl" else build
    model, inputs, features = builder(preset, dtype, device)
    # Peak memory counts everything after the weights exist, warm-up included (the allocator grows then).
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    cuda_before = torch.cuda.memory_allocated() if device == "cuda" else 0
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rho = VARIANTS[name]
    model.config.vts_strategy = "dense" if name == "dense" else "token"
    if rho is not None:
        model.config.vts_keep_ratio = rho
    forward = model.forward
    if name.startswith("mask_only"):
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
            else (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) * 1024)

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
        "vts_module_s_median": statistics.median(vts_times) if rho is not None and not name.startswith("mask") else 0.0,
        "peak_memory_bytes": peak,
        "peak_memory_kind": "CUDA peak allocated above the weights" if device == "cuda" else "CPU max RSS growth above the weights",
    }


def run_variants_in_children(module: str, variants: dict, args: argparse.Namespace) -> dict | None:
    """Run `python -m module --only VARIANT ...` for each variant (so each one's peak memory is its own) and
    collect the JSON line each prints; None (after printing why) if a variant fails."""
    results = {}
    for name in variants:
        child = [sys.executable, "-m", module, "--only", name, "--preset", args.preset, "--repeats", str(args.repeats),
                 "--device", args.device, "--dtype", args.dtype, "--backbone", args.backbone]
        proc = subprocess.run(child, capture_output=True, text=True)
        if proc.returncode != 0:
            # Usually out of memory for this preset on this device; show the child's last words, not a traceback.
            print(f"error: variant {name} failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}", file=sys.stderr)
            return None
        results[name] = json.loads(proc.stdout.strip().splitlines()[-1])
    return results


def parse_benchmark_args(doc: str, variants: dict, argv: list[str] | None, repeats: int, out: str):
    """Arguments shared by the benchmarks: (args, preset dict, torch dtype); bad values are usage errors."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", choices=sorted(BACKBONE_PRESETS), default="qwen2_5_vl",
                        help="qwen2_5_vl (GroundVTS-Q) or internvl (GroundVTS-I)")
    parser.add_argument("--preset", choices=sorted(set(PRESETS) | set(INTERNVL_PRESETS)), default="mid")
    parser.add_argument("--repeats", type=int, default=repeats)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--out", default=out)
    parser.add_argument("--only", choices=sorted(variants), help=argparse.SUPPRESS)  # child-process mode
    args = parser.parse_args(argv)
    presets = BACKBONE_PRESETS[args.backbone]
    if args.preset not in presets:
        parser.error(f"--preset {args.preset} is not among the {args.backbone} presets {sorted(presets)}")
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda needs a CUDA GPU, and torch sees none here; use --device cpu")
    return args, presets[args.preset], getattr(torch, args.dtype)


def main(argv: list[str] | None = None) -> int:
    args, preset, dtype = parse_benchmark_args(__doc__, VARIANTS, argv, repeats=5, out="benchmark_prefill.json")

    if args.only:
        print(json.dumps(run_variant(args.only, preset, args.repeats, dtype, args.device, args.backbone)))
        return 0

    results = run_variants_in_children("groundvts.scripts.perf.prefill", VARIANTS, args)
    if results is None:
        return 1

    n_video, text, _ = token_counts(args.backbone, preset)
    dense = results["dense"]
    flops = lambda n: analytic_prefill_flops(n, preset["hidden"], preset["intermediate"], preset["layers"])
    print(f"backbone={args.backbone} preset={args.preset} device={args.device} dtype={args.dtype} video_tokens={n_video} repeats={args.repeats}")
    print(f"{'variant':<15}{'LLM tokens':>11}{'prefill s':>11}{'time ratio':>11}{'FLOPs ratio':>12}{'VTS % dense':>12}{'peak MB':>10}")
    for name, r in results.items():
        rho = VARIANTS[name]
        kept = n_video if rho is None or name.startswith("mask") else math.ceil(rho * n_video)
        r["time_ratio_vs_dense"] = r["prefill_s_median"] / dense["prefill_s_median"]
        r["analytic_flops_ratio"] = flops(text + kept) / flops(text + n_video)
        r["vts_module_pct_of_dense_prefill"] = 100 * r["vts_module_s_median"] / dense["prefill_s_median"]
        print(f"{name:<15}{r['llm_tokens']:>11}{r['prefill_s_median']:>11.3f}{r['time_ratio_vs_dense']:>11.3f}"
              f"{r['analytic_flops_ratio']:>12.3f}{r['vts_module_pct_of_dense_prefill']:>12.2f}"
              f"{r['peak_memory_bytes'] / 2**20:>10.1f}")
    report = {"backbone": args.backbone, "preset": args.preset, "config": preset, "device": args.device, "dtype": args.dtype,
              "video_tokens": n_video, "repeats": args.repeats, "results": results}
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
