"""Benchmark one stage-2 training step: GroundVTS (ρ=0.5) vs the same model dense, same batch.

Stage 2 as in the recipe: LoRA (r 8, α 16) on the language model's attention, VTS and projector trained fully
(PEFT `modules_to_save`), activation checkpointing, AdamW. A step is forward + backward + optimizer step on one
long video prompt followed by a short answer (the labelled tokens). The vision tower is skipped, as in
`perf.prefill` (precomputed video features; it costs every variant the same), so the ratios are those of
the language-model part of a step. `perf.harness` runs each variant in its own process. The command is
`python -m groundvts.scripts.cli.benchmark_train_step`.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from groundvts.scripts.perf.host_memory import HostMemoryPeak
from groundvts.scripts.perf.prefill import BUILDERS, token_counts

if TYPE_CHECKING:
    from groundvts.scripts.perf.harness import PerfSettings

VARIANTS = {"dense": None, "vts_0.5": 0.5}
ANSWER_TOKENS = 16
DEFAULT_REPEATS = 3
DEFAULT_OUT = Path("benchmark_train_step.json")


def add_answer(inputs: dict, answer_tokens: int) -> dict:
    """Append an answer (labelled) after the prompt; everything before it is -100."""
    input_ids = inputs["input_ids"]
    answer = torch.full((1, answer_tokens), 7, dtype=input_ids.dtype, device=input_ids.device)
    ids = torch.cat([input_ids, answer], dim=1)
    labels = torch.cat([torch.full_like(input_ids, -100), answer], dim=1)
    batch = dict(inputs, input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels)
    if "mm_token_type_ids" in inputs:
        batch["mm_token_type_ids"] = torch.cat([inputs["mm_token_type_ids"], torch.zeros_like(answer)], dim=1)
    return batch


def run_variant(name: str, preset: dict, repeats: int, dtype: torch.dtype, device: str, backbone: str) -> dict:
    from peft import get_peft_model

    from groundvts.trainers.stages import apply_stage, assert_stage, lora_config

    model, inputs, _ = BUILDERS[backbone](preset, dtype, device, with_lm_head=True)
    model.config.vts_strategy = "dense" if VARIANTS[name] is None else "token"
    if VARIANTS[name] is not None:
        model.config.vts_keep_ratio = VARIANTS[name]
    model = get_peft_model(model, lora_config(model))
    apply_stage(model, 2)
    counts = assert_stage(model, 2)
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.enable_input_require_grads()
    model.train()
    batch = add_answer(inputs, ANSWER_TOKENS)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)

    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    cuda_before = torch.cuda.memory_allocated() if device == "cuda" else 0
    host_memory = HostMemoryPeak()
    host_memory.start()
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def step() -> tuple[float, int]:
        out = model(**batch, use_cache=False)
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return out.loss.item(), int(out.token_keep.sum()) if out.token_keep is not None else batch["input_ids"].numel()

    loss, llm_tokens = step()  # warm-up (allocates the optimizer state)
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        loss, llm_tokens = step()
        sync()
        times.append(time.perf_counter() - start)
    peak = (torch.cuda.max_memory_allocated() - cuda_before if device == "cuda"
            else host_memory.growth())
    return {
        "variant": name,
        "llm_tokens": llm_tokens,
        "step_s_median": statistics.median(times),
        "step_s_all": times,
        "loss": loss,
        "trainable_parameters": {group: c["trainable"] for group, c in counts.items()},
        "peak_memory_bytes": peak,
        "peak_memory_kind": "CUDA peak allocated above the weights" if device == "cuda" else "CPU max RSS growth above the weights",
    }


def summarize(results: dict[str, dict[str, Any]], settings: PerfSettings) -> tuple[list[str], dict[str, Any]]:
    """The printed table (time and peak-memory ratios against dense) and the JSON report; adds the ratios to each
    variant's result."""
    preset = settings.preset_config
    dense = results["dense"]
    n_video = token_counts(settings.backbone, preset)[0]
    lines = [
        f"stage-2 step  backbone={settings.backbone} preset={settings.preset} device={settings.device} "
        f"dtype={settings.dtype} video_tokens={n_video} repeats={settings.repeats}",
        f"{'variant':<10}{'LLM tokens':>11}{'step s':>9}{'time ratio':>11}{'peak MB':>10}{'memory ratio':>13}",
    ]
    for name, r in results.items():
        r["time_ratio_vs_dense"] = r["step_s_median"] / dense["step_s_median"]
        r["memory_ratio_vs_dense"] = r["peak_memory_bytes"] / dense["peak_memory_bytes"] if dense["peak_memory_bytes"] else None
        memory_ratio = f"{r['memory_ratio_vs_dense']:.3f}" if r["memory_ratio_vs_dense"] is not None else "n/a"
        lines.append(
            f"{name:<10}{r['llm_tokens']:>11}{r['step_s_median']:>9.3f}{r['time_ratio_vs_dense']:>11.3f}"
            f"{r['peak_memory_bytes'] / 2**20:>10.1f}{memory_ratio:>13}"
        )
    report = {"benchmark": "stage-2 train step", "backbone": settings.backbone, "preset": settings.preset,
              "config": preset, "device": settings.device, "dtype": settings.dtype, "video_tokens": n_video,
              "answer_tokens": ANSWER_TOKENS, "repeats": settings.repeats, "results": results}
    return lines, report
