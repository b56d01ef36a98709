"""The model card (README.md) of a GroundVTS release: metadata with `model-index`, results, usage, VTS
settings and citation. Used by `groundvts release`; not a subcommand itself."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard

from groundvts.evaluate_metrics.model_card import BENCHMARKS, eval_results_from_metrics, model_card_data
from groundvts.hub_configs.backbones import Backbone
from groundvts.processing.prompts import GROUNDING_EVAL_PROMPT

PAPER_URL = "https://arxiv.org/abs/2604.02093"
CITATION = """@article{fan2026groundvts,
  title={GroundVTS: Visual Token Sampling in Multimodal Large Language Models for Video Temporal Grounding},
  author={Fan, Rong and Xiao, Kaiyan and Zhu, Minghao and Wang, Liuyi and Dai, Kai and Yang, Zhao},
  journal={arXiv preprint arXiv:2604.02093},
  year={2026}
}"""
# VTS config fields shown on the card: (field, what it means).
VTS_FIELDS = (
    ("vts_keep_ratio", "ρ: each video keeps ⌈ρ·N⌉ of its N visual tokens"),
    ("vts_reduction_dim", "D_r: width of the scoring projections Wv, Wq"),
    ("vts_strategy", "token (VTS), frame, uniform, random, parameter_free, temporal_redundancy (EVS-style), "
                     "centre_distance (VidCom²-style) or dense (no sampling)"),
    ("vts_temperature", "τ of the relevance softmax"),
    ("vts_weight_temperature", "τ′ of the re-weighting of kept tokens"),
    ("vts_gumbel_temperature", "τ_g of the training-time Gumbel-softmax"),
    ("vts_train_selection", "gumbel (straight-through) or topk (official code)"),
    ("vts_keep_positions", "kept tokens keep their dense positions (false: the paper's w/o PE ablation)"),
    ("vts_query_pooling", "query_mask (question tokens) or prompt (every prompt token, official code)"),
)


class ReleaseError(ValueError):
    """Bad input to the release (wrong folder, bad results file, mismatched processor); exit status 2."""


@dataclass
class CardInputs:
    repo_id: str
    backbone: Backbone
    base_model: str | None  # from the training run's card or --base-model; never guessed
    license: str
    config: Any  # the released model's config
    video_settings: dict[str, Any]
    generation: Any  # GenerationConfig
    eval_results: list[EvalResult]
    datasets: list[str] = field(default_factory=list)  # training datasets (Hub ids), from the run or --datasets


def read_result_splits(paths: list[str | Path]) -> dict[str, str]:
    """benchmark -> the split a `groundvts evaluate --output` file recorded (files that record one)."""
    splits = {}
    for path in map(Path, paths):
        data = json.loads(path.read_text())
        if isinstance(data, dict) and isinstance(data.get("metrics"), dict) and data.get("split"):
            splits[data["benchmark"]] = str(data["split"])
    return splits


def read_result_conventions(paths: list[str | Path]) -> dict[str, dict[str, str]]:
    """benchmark -> {metric: convention} from `groundvts evaluate --output` files (files that record them)."""
    conventions = {}
    for path in map(Path, paths):
        data = json.loads(path.read_text())
        if isinstance(data, dict) and isinstance(data.get("metrics"), dict) and isinstance(data.get("conventions"), dict):
            conventions[data["benchmark"]] = {str(k): str(v) for k, v in data["conventions"].items()}
    return conventions


def read_results(paths: list[str | Path]) -> dict[str, dict[str, Any]]:
    """benchmark -> metrics from results files. A file is either a mapping benchmark -> {metric: value} or one
    `groundvts evaluate --output` file (`{"benchmark": ..., "metrics": {...}, ...}`)."""
    merged: dict[str, dict[str, Any]] = {}
    for path in map(Path, paths):
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError as error:
            raise ReleaseError(f"--results file {path} not found.") from error
        except json.JSONDecodeError as error:
            raise ReleaseError(f"--results file {path} is not valid JSON: {error}") from error
        if isinstance(data, dict) and "benchmark" in data and isinstance(data.get("metrics"), dict):
            data = {data["benchmark"]: data["metrics"]}  # the file `groundvts evaluate` writes
        if not isinstance(data, dict) or not data:
            raise ReleaseError(
                f"{path} must map benchmark names to {{metric: value}} objects (e.g. {{\"charades_sta\": "
                "{\"mIoU\": 50.1}}), or be a `groundvts evaluate --output` file."
            )
        for benchmark, metrics in data.items():
            if benchmark not in BENCHMARKS:
                raise ReleaseError(f"{path}: unknown benchmark {benchmark!r}; known: {sorted(BENCHMARKS)}.")
            if not isinstance(metrics, dict):
                raise ReleaseError(f"{path}: {benchmark!r} must map metric names to values, got {type(metrics).__name__}.")
            if benchmark in merged:
                raise ReleaseError(f"{benchmark!r} has results in more than one --results file.")
            merged[benchmark] = metrics
    return merged


def _is_count(key: str) -> bool:
    return key.startswith("num_") or "-num-" in key or key.endswith("-num") or key.startswith(("MR-num", "HL-num"))


def eval_results_from_files(
    paths: list[str | Path], dataset_ids: dict[str, str], splits: dict[str, str], *, all_metrics: bool = False
) -> list[EvalResult]:
    """EvalResults for the card's model-index: each benchmark's standard metrics, in their usual order (with
    `all_metrics`, then every other finite metric). Counts are never included. `dataset_ids` / `splits` override a
    benchmark's dataset id (a Hub id where one exists) and split."""
    results = read_results(paths)
    conventions = read_result_conventions(paths)
    splits = {**read_result_splits(paths), **splits}  # --split wins over what evaluate recorded
    for flag, given in (("--dataset", dataset_ids), ("--split", splits)):
        unused = sorted(set(given) - set(results))
        if unused:
            raise ReleaseError(f"{flag} names benchmarks without results: {unused}.")
    eval_results: list[EvalResult] = []
    for benchmark, metrics in results.items():
        chosen = [key for key in BENCHMARKS[benchmark].metrics if key in metrics]
        if all_metrics:
            chosen += [
                key for key, value in metrics.items()
                if key not in chosen and not _is_count(key) and isinstance(value, (int, float))
                and not isinstance(value, bool) and math.isfinite(value)
            ]
        if not chosen:
            raise ReleaseError(
                f"{benchmark!r} has none of its standard metrics {list(BENCHMARKS[benchmark].metrics)}"
                + ("" if all_metrics else " (--all-metrics adds the others)") + "."
            )
        try:
            eval_results += eval_results_from_metrics(
                metrics, benchmark, metrics=chosen,
                dataset_type=dataset_ids.get(benchmark), dataset_split=splits.get(benchmark),
                conventions=conventions.get(benchmark),
            )
        except ValueError as error:
            raise ReleaseError(f"{benchmark}: {error}") from error
    return eval_results


def build_model_card(inputs: CardInputs) -> ModelCard:
    """The README.md of the release (YAML metadata + markdown), parseable by `huggingface_hub.ModelCard`."""
    name = inputs.repo_id.split("/")[-1]
    hub_datasets = [r.dataset_type for r in inputs.eval_results if "/" in r.dataset_type]
    data = model_card_data(
        name, inputs.eval_results,
        license=inputs.license, library_name="transformers", pipeline_tag="video-text-to-text",
        base_model=inputs.base_model,
        datasets=list(dict.fromkeys(inputs.datasets + hub_datasets)) or None,
        tags=["groundvts", "video-temporal-grounding", "moment-retrieval", "highlight-detection",
              "visual-token-sampling", inputs.backbone.tag, "custom_code"],
    )
    sections = [
        _intro(name, inputs), _results_table(inputs.eval_results), _python_usage(inputs), _cli_usage(inputs),
        _vts_table(inputs.config), _video_and_generation(inputs), "## Citation\n\n```bibtex\n" + CITATION + "\n```",
    ]
    body = "\n\n".join(section for section in sections if section)
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}\n")


def _intro(name: str, inputs: CardInputs) -> str:
    return (
        f"# {name}\n\n"
        f"**{inputs.backbone.name}** from *GroundVTS: Visual Token Sampling in Multimodal Large Language Models for Video "
        f"Temporal Grounding* (CVPR 2026, [arXiv:2604.02093]({PAPER_URL})): {_base(inputs)} with query-guided Visual "
        "Token Sampling (VTS). Given a video "
        "and a sentence, it answers when the sentence happens (\"6.0 to 12.0 seconds\"). VTS scores every visual "
        "token against the question and only the top ρ share reaches the language model; the others are removed "
        "from the sequence and its KV cache, and the kept tokens keep their original positions.\n\n"
        "The model code is in this repository: load it with `trust_remote_code=True`."
    )


def _base(inputs: CardInputs) -> str:
    if inputs.base_model:
        return f"[{inputs.base_model}](https://huggingface.co/{inputs.base_model})"
    return f"a {inputs.backbone.name} video LLM (its base model was not recorded; see `--base-model`)"


def _results_table(eval_results: list[EvalResult]) -> str:
    if not eval_results:
        return ""
    rows = [f"| {r.dataset_name} | {r.dataset_split or ''} | {r.metric_name or r.metric_type} | {r.metric_value} | "
            f"{r.metric_config or 'not stated'} |" for r in eval_results]
    return (
        "## Results\n\n| Benchmark | Split | Metric | Value | Convention |\n|---|---|---|---|---|\n" + "\n".join(rows)
        + "\n\nConvention: the evaluator definition that produced the number (`groundvts evaluate` records it; "
        "`eval_auto` = GroundVTS/VideoMind `eval/eval_auto.py`, `moment_detr` = moment_detr `standalone_eval`, "
        "`eval_ground` = NExT-GQA `eval_ground.py`; see the metric cards for the others)."
    )


def _python_usage(inputs: CardInputs) -> str:
    tokens = inputs.generation.max_new_tokens
    return f'''## Use with transformers

```python
from transformers import AutoModelForImageTextToText, AutoProcessor

repo = "{inputs.repo_id}"
processor = AutoProcessor.from_pretrained(repo, trust_remote_code=True)
model = AutoModelForImageTextToText.from_pretrained(repo, trust_remote_code=True, dtype="auto")

query = "a person opens the door"
prompt = {GROUNDING_EVAL_PROMPT!r}.format(query=query)
messages = [{{"role": "user", "content": [{{"type": "video"}}, {{"type": "text", "text": prompt}}]}}]
text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
inputs = processor(text=[text], videos=["video.mp4"], return_tensors="pt").to(model.device)
output = model.generate(**inputs)  # greedy, at most {tokens} new tokens (generation_config.json)
answer = processor.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
print(answer)
```

The processor marks the question tokens (`query_mask`), whose mean embedding is the VTS query; keep the question
as text in the last user turn. `model(**inputs, return_vts_selection=True)` also returns which visual tokens each
video kept (`video_keep`) and their relevance (`video_scores`).'''


def _cli_usage(inputs: CardInputs) -> str:
    return f'''## Command line

With the `groundvts` package installed:

```bash
groundvts ground --model {inputs.repo_id} --video video.mp4 --query "a person opens the door"
```'''


def _vts_table(config: Any) -> str:
    rows = [f"| `{field}` | {getattr(config, field)} | {meaning} |" for field, meaning in VTS_FIELDS]
    return (
        "## VTS settings\n\n| Config field | Value | Meaning |\n|---|---|---|\n" + "\n".join(rows) + "\n\n"
        "They can be changed after loading, e.g. `model.config.vts_keep_ratio = 0.25` or "
        '`model.config.vts_strategy = "dense"` (no sampling).'
    )


def _video_and_generation(inputs: CardInputs) -> str:
    s = inputs.video_settings
    if inputs.backbone.fps_sampled:
        video = (f"Videos are sampled at {s['fps']:g} fps, at most {s['max_frames']} frames, at most "
                 f"{s['max_pixels_per_frame']} pixels per frame (the paper's settings; the processor's saved "
                 "defaults). Override per call, e.g. `processor(..., fps=1.0, max_frames=64, max_pixels=50176)`.")
    else:
        video = (f"Each video becomes {s['num_frames']} frames of {s['frame_size_px']}×{s['frame_size_px']} px (the "
                 "paper's settings; the processor's saved defaults). Override per call with "
                 "`processor(..., num_frames=8)`.")
    generation = inputs.generation
    return (f"## Video input and decoding\n\n{video}\n\n`generation_config.json`: greedy decoding "
            f"(`do_sample=False`, `num_beams=1`), `max_new_tokens={generation.max_new_tokens}`.")
