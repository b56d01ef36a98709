"""The paper's token-selection comparison (Table 5) at small scale, on the synthetic benchmark, end to end on CPU.

`run(out, settings)` generates the data (`videos.py`), turns the train split into Grounding-FT conversations asked
with the evaluation prompt, trains a tiny base model of `settings.backbone` (Qwen2.5-VL or Qwen3-VL architecture,
`backbones.py`) from scratch (the vision pre-task of `tower.py`, then stage 0), runs the three GroundVTS stages for
each variant of `VARIANTS` at the same language-model token budget, and evaluates every model with benchmark
inference and the Charades-STA metrics on the test split. `groundvts synthetic-benchmark`
(scripts/cli/synthetic_benchmark.py) runs it; its help tells the steps and variants in full, and
docs/synthetic_findings.md what made the tiny model learn.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from datasets import Dataset

from groundvts.processing.prompts import assistant_turn, user_turn
from groundvts.scripts.data.synthetic.backbones import DEFAULT_BACKBONE, SYNTHETIC_BACKBONES, synthetic_backbone
from groundvts.scripts.data.synthetic.grpo import GRPOBudget, grpo_finetune
from groundvts.scripts.data.synthetic.scenes import BENCHMARK_SCENES
from groundvts.scripts.data.synthetic.settings import knob

VARIANTS: dict[str, dict[str, Any]] = {
    "uniform_1fps": {"fps": 1.0, "vts_strategy": "dense", "learned": False},
    "random": {"fps": 2.0, "vts_strategy": "random", "learned": False},
    "frame": {"fps": 2.0, "vts_strategy": "frame", "learned": True},
    "token": {"fps": 2.0, "vts_strategy": "token", "learned": True},
    "token_no_pe": {"fps": 2.0, "vts_strategy": "token", "learned": True, "vts_keep_positions": False},
}
BASE_FPS = 2.0
KEEP_RATIO = 0.5


@dataclass
class SyntheticBudget(GRPOBudget):
    """Sizes and budgets of one run (defaults: the documented CPU run); each field is a `synthetic-benchmark` flag.
    The `grpo_*` fields (stage 4 after the token variant, off by default) come from `GRPOBudget`."""

    seed: int = knob(0, "seed of the data, the model initialisation and training")
    backbone: str = field(default=DEFAULT_BACKBONE, metadata={
        "choices": tuple(SYNTHETIC_BACKBONES),
        "help": "architecture of the tiny model trained from scratch: qwen2_5_vl (GroundVTS-Q) or qwen3_vl"
                " (GroundVTS-Q3) (default %(default)s)"})
    num_train: int = knob(3000, "synthetic train videos")
    num_test: int = knob(200, "synthetic test videos")
    frame_side: int = knob(56, "frame side in px")  # 4 x 4 patches of 14 px -> 4 LLM tokens per 2 frames
    hidden: int = knob(128, "language model hidden size")
    layers: int = knob(2, "language model layers")
    vision_depth: int = knob(1, "vision tower blocks")
    vision_hidden: int = knob(64, "vision tower hidden size")
    batch_size: int = knob(16, "per-device batch size of every stage")
    tower_steps: int = knob(600, "vision pre-task steps; 0 trains every weight in stage 0 instead")
    tower_lr: float = knob(2e-3, "vision pre-task learning rate")
    base_steps: int = knob(1000, "stage 0 steps (the base model's language model)")
    base_lr: float = knob(2e-3, "stage 0 learning rate")
    # At 100 steps / 1e-3, VTS kept 3 % of the target's tokens (50 % = chance): docs/synthetic_findings.md.
    selection_steps: int = knob(1000, "stage 1 (VTS warm-up) steps of the learned variants")
    selection_lr: float = knob(1e-2, "stage 1 learning rate")
    joint_steps: int = knob(300, "stage 2 steps on synthetic video QA (the paper's LLaVA-Video stage); 0 skips it")
    joint_lr: float = knob(1e-3, "stage 2 learning rate")
    finetune_steps: int = knob(300, "stage 3 (grounding) steps")
    finetune_lr: float = knob(1e-3, "stage 3 learning rate")
    variants: tuple[str, ...] = field(
        default=tuple(VARIANTS),
        metadata={"choices": sorted(VARIANTS), "help": "the variants to train and compare (default: all)"},
    )

    def __post_init__(self) -> None:
        self.variants = tuple(self.variants)
        unknown = sorted(set(self.variants) - set(VARIANTS))
        if unknown:
            raise ValueError(f"unknown variants {unknown}; choose from {sorted(VARIANTS)}.")
        synthetic_backbone(self.backbone)  # ValueError naming the choices
        if min(self.num_train, self.num_test, self.base_steps, self.finetune_steps) < 1:
            raise ValueError("--num-train, --num-test, --base-steps and --finetune-steps must be >= 1.")


@dataclass
class SyntheticSettings(SyntheticBudget):
    """A run's budget and the scenes of its data. `generator` holds `make_synthetic_benchmark` (`SceneConfig`)
    keyword arguments; it is not a flag: the command builds it from the scene options."""

    generator: dict[str, Any] = field(default_factory=lambda: dict(BENCHMARK_SCENES))


SYNTHETIC_BPE_VOCAB_SIZE = 768  # bytes + merges: whole words for the benchmark's prompts and queries


def synthetic_processor(settings: SyntheticBudget, fps: float) -> Any:
    """The tiny processor of `settings.backbone`, with a tokenizer that learnt its merges on this benchmark's queries
    too (the evaluation prompt is ~50 tokens instead of ~130, which halves a training step)."""
    from groundvts.processing.tiny import build_tiny_tokenizer

    from groundvts.scripts.data.synthetic.scenes import query_vocabulary

    tokenizer = build_tiny_tokenizer(bpe_vocab_size=SYNTHETIC_BPE_VOCAB_SIZE, extra_corpus=query_vocabulary())
    return synthetic_backbone(settings.backbone).build_processor(settings, fps, tokenizer)


def synthetic_model_config(processor: Any, settings: SyntheticBudget) -> Any:
    """A tiny from-scratch GroundVTS config of `settings.backbone` (GroundVTS-Q or -Q3) matching the processor's
    tokens (scripts/data/synthetic/backbones.py)."""
    return synthetic_backbone(settings.backbone).build_config(processor, settings)


def training_dataset(data_dir: Path, seed: int) -> Dataset:
    """The Grounding-FT builder's records of the train split, asked with the evaluation prompt (the one
    `groundvts infer` asks). The tiny from-scratch model learns one prompt in 1,000 steps; with the paper's MR
    templates mixed in at equal share it does not leave the baseline in that budget (docs/synthetic_findings.md)."""
    from groundvts.processing.prompts import build_inference_messages

    from groundvts.scripts.data.grounding_ft import GroundingSource, build_grounding_ft

    source = GroundingSource("charades_sta", data_dir / "charades_sta_train.txt", data_dir / "videos")
    templated, skipped = build_grounding_ft([source], seed=seed, tasks=("mr",), check_videos=True)
    if skipped:
        raise ValueError(f"{len(skipped)} synthetic train rows were skipped, e.g. {skipped[0]}")
    eval_prompted = templated.map(lambda row: {"messages": [
        *build_inference_messages(row["query"], None, "mr"),
        assistant_turn(row["messages"][1]["content"][0]["text"]),
    ]}, features=templated.features)
    return eval_prompted.shuffle(seed=seed)


VIDEO_QA_QUESTION = "What happens to the shape in the video?"
# Answers a tower trained for "is the target here?" can support: what changes over time, not colour or shape.
VIDEO_QA_ANSWERS = {"appear": "It appears.", "disappear": "It disappears.", "move": "It moves.",
                    "recolor": "It changes colour.", "grow": "It grows.", "shrink": "It shrinks."}


def video_qa_dataset(data_dir: Path, seed: int) -> Dataset:
    """Stage 2's data for this domain: the paper's joint stage trains on general video instructions (LLaVA-Video-178K);
    here one question per train video about what happens in it, answered from the generator's manifest."""
    from groundvts.scripts.data.synthetic.videos import read_split

    rows = [
        {"messages": [user_turn(VIDEO_QA_QUESTION), assistant_turn(VIDEO_QA_ANSWERS[sample["target"]["event"]])],
         "videos": [sample["video"]]}
        for sample in read_split(data_dir, "train")[0]
    ]
    return Dataset.from_list(rows).shuffle(seed=seed)


def video_collator(processor: Any, fps: float) -> Any:
    """A caching collator; the runs at one fps share it, so each video is decoded once per fps."""
    from groundvts.trainers import GroundVTSVideoCollator

    return GroundVTSVideoCollator(processor, {"fps": fps, "max_frames": 128}, cache=True)


def train_stage(model: Any, processor: Any, dataset: Dataset, out: Path, stage: int, steps: int, lr: float,
                fps: float, settings: SyntheticSettings, collator: Any, freeze: tuple[str, ...] = ()) -> Any:
    """One GroundVTSTrainer run (on the GPU when there is one); returns the trained (possibly PEFT-wrapped) model."""
    import torch

    from groundvts.trainers import GroundVTSSFTConfig, GroundVTSTrainer

    args = GroundVTSSFTConfig(
        output_dir=str(out), stage=stage, freeze=list(freeze), max_steps=steps, learning_rate=lr, per_device_train_batch_size=settings.batch_size,
        lr_scheduler_type="cosine", warmup_steps=0.05, weight_decay=0.01, max_grad_norm=1.0, adam_beta2=0.98, bf16=False,
        use_cpu=not torch.cuda.is_available(),
        activation_checkpointing=False, report_to=[], logging_steps=max(steps // 10, 1), save_strategy="no",
        video_fps=fps, video_max_frames=128, video_cache=True, seed=settings.seed, dataloader_num_workers=0,
        lora_r=8, lora_alpha=16, lora_dropout=0.05,
    )
    trainer = GroundVTSTrainer(
        model=model, args=args, train_dataset=dataset, processing_class=processor,
        data_collator=collator,
    )
    trainer.train()
    return trainer.model


def train_base(data_dir: Path, out: Path, settings: SyntheticSettings, dataset: Dataset, collators: dict
               ) -> tuple[Path, dict[str, float]]:
    """From scratch, dense at 2 fps: the vision pre-task (if `tower_steps`), then stage 0 (the language model, or
    every weight without the pre-task); saved with its processor. Returns the folder and the pre-task's accuracy."""
    import torch

    from groundvts.scripts.data.synthetic.tower import TOWER_GROUPS, tower_records, train_tower

    processor = synthetic_processor(settings, BASE_FPS)
    torch.manual_seed(settings.seed)
    model_class = synthetic_backbone(settings.backbone).model_class()
    model = model_class(synthetic_model_config(processor, settings))
    collator = collators.setdefault(BASE_FPS, video_collator(processor, BASE_FPS))
    tower_accuracy, freeze = {}, ()
    if settings.tower_steps:
        tower_accuracy = train_tower(
            model, collator, tower_records(data_dir, "train"), tower_records(data_dir, "test"), out / "tower_run",
            settings.tower_steps, settings.tower_lr, settings.batch_size, settings.seed,
        )
        freeze = TOWER_GROUPS
    model = train_stage(model, processor, dataset, out / "base_run", 0, settings.base_steps, settings.base_lr,
                        BASE_FPS, settings, collator, freeze)
    model.save_pretrained(out / "base")
    processor.save_pretrained(out / "base")
    return out / "base", tower_accuracy


def finetune_variant(
    name: str, base: Path, out: Path, settings: SyntheticSettings, dataset: Dataset, collators: dict,
    qa_dataset: Dataset | None = None, keep_ratio: float = KEEP_RATIO, folder: str | None = None,
) -> Path:
    """The GroundVTS stages from the base: VTS warm-up (stage 1, learned variants), joint LoRA on video QA (stage 2,
    when `qa_dataset` and `joint_steps`), grounding LoRA (stage 3, continuing stage 2's adapter); merged and saved
    with its processor in OUT/<folder> (default: the variant's name), trained at `keep_ratio`."""
    from groundvts.trainers.loading import load_model_and_processor

    spec = VARIANTS[name]
    vts = {"vts_keep_ratio": keep_ratio, "vts_keep_positions": True,
           **{key: value for key, value in spec.items() if key.startswith("vts_")}}
    model, _ = load_model_and_processor(base, vts)
    name = folder or name
    processor = synthetic_processor(settings, spec["fps"])
    collator = collators.setdefault(spec["fps"], video_collator(processor, spec["fps"]))
    if spec["learned"]:
        model = train_stage(model, processor, dataset, out / f"{name}_stage1", 1, settings.selection_steps,
                            settings.selection_lr, spec["fps"], settings, collator)
    if qa_dataset is not None and settings.joint_steps:
        model = train_stage(model, processor, qa_dataset, out / f"{name}_stage2", 2, settings.joint_steps,
                            settings.joint_lr, spec["fps"], settings, collator)
    model = train_stage(model, processor, dataset, out / f"{name}_stage3", 3, settings.finetune_steps,
                        settings.finetune_lr, spec["fps"], settings, collator)
    final = out / name
    model.merge_and_unload().save_pretrained(final)
    processor.save_pretrained(final)
    return final


def evaluate_model(
    model_dir: Path, data_dir: Path, out: Path, log: Callable[[str], None] | None = None, *,
    name: str | None = None, keep_ratio: float | None = None, strategy: str | None = None, fps: float | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    """Benchmark inference (what `groundvts infer` runs) then the Charades-STA metrics on the test split, the share
    of the target's tokens that reach the language model and the mean video tokens it receives per video.
    `keep_ratio`, `strategy` and `fps` override the model's (`groundvts infer --keep-ratio --strategy --fps`);
    predictions go to OUT/<name or the model folder's name>.test.jsonl; `limit` evaluates the first queries only.
    `log` gets inference's summary line."""
    from groundvts.scripts.inference.benchmark import BenchmarkRunSettings, run_benchmark
    from groundvts.scripts.inference.benchmark_tasks import BenchmarkData
    from groundvts.scripts.inference.evaluation import evaluate_predictions
    from groundvts.scripts.inference.generation import SamplingSettings
    from groundvts.scripts.inference.loading import ModelSettings
    from groundvts.scripts.data.synthetic.tower import target_token_recall

    annotations = data_dir / "charades_sta_test.txt"
    predictions = out / f"{name or model_dir.name}.test.jsonl"
    report = run_benchmark(
        BenchmarkData("charades_sta", annotations),
        BenchmarkRunSettings(video_root=data_dir / "videos", output=predictions, batch_size=16, progress=False,
                             limit=limit),
        SamplingSettings(max_new_tokens=16, fps=fps),
        ModelSettings(model=str(model_dir), keep_ratio=keep_ratio, strategy=strategy),
        log=log,
    )
    if log is not None:
        log(report.summary())
    metrics = evaluate_predictions("charades_sta", annotations, predictions)["metrics"]
    rows = [json.loads(line) for line in predictions.read_text().splitlines() if line.strip()]
    recall = target_token_recall(model_dir, data_dir, limit=min(limit or 100, 100), keep_ratio=keep_ratio,
                                 strategy=strategy, fps=fps)
    return {**metrics, "target_tokens_kept": recall,
            "kept_tokens_per_video": sum(r["num_kept_tokens"] for r in rows) / max(len(rows), 1)}


def mean_window_metrics(data_dir: Path, out: Path) -> dict[str, Any]:
    """The trivial baseline: the mean training window, as fractions of the duration, for every test video."""
    from groundvts.processing.annotations import load_annotations

    from groundvts.scripts.inference import evaluation as evaluate_predictions

    train = load_annotations("charades_sta", data_dir / "charades_sta_train.txt").records
    start = sum(r.windows[0][0] / r.duration for r in train) / len(train)
    end = sum(r.windows[0][1] / r.duration for r in train) / len(train)
    test_file = data_dir / "charades_sta_test.txt"
    predictions = out / "mean_window.test.jsonl"
    with predictions.open("w") as f:
        for record in load_annotations("charades_sta", test_file).records:
            window = [round(start * record.duration, 1), round(end * record.duration, 1)]
            f.write(json.dumps({"qid": record.qid, "benchmark": "charades_sta", "window": window}) + "\n")
    return evaluate_predictions.evaluate_predictions("charades_sta", test_file, predictions)["metrics"]


def run(out: Path, settings: SyntheticSettings, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The whole comparison in `out` (data/, one folder per model and training stage, predictions, results.json);
    returns the report written to results.json. `log` gets each inference run's summary line."""
    from groundvts.scripts.data.synthetic.videos import make_synthetic_benchmark

    out.mkdir(parents=True, exist_ok=True)
    data_dir, timings = out / "data", {}
    started = time.perf_counter()
    make_synthetic_benchmark(data_dir, seed=settings.seed, num_train=settings.num_train, num_val=0,
                             num_test=settings.num_test, overwrite=True, **settings.generator)
    dataset = training_dataset(data_dir, settings.seed)
    qa_dataset = video_qa_dataset(data_dir, settings.seed)
    timings["data_s"] = time.perf_counter() - started
    results: dict[str, Any] = {"mean_window": mean_window_metrics(data_dir, out)}

    started = time.perf_counter()
    collators: dict[float, Any] = {}  # one caching collator per fps: each video is decoded once per fps
    base, tower_accuracy = train_base(data_dir, out, settings, dataset, collators)
    timings["base_s"] = time.perf_counter() - started
    results["base_2fps_dense"] = evaluate_model(base, data_dir, out, log)
    for name in settings.variants:
        started = time.perf_counter()
        final = finetune_variant(name, base, out, settings, dataset, collators, qa_dataset)
        timings[f"{name}_s"] = time.perf_counter() - started
        results[name] = evaluate_model(final, data_dir, out, log)
    if settings.grpo_steps and "token" in settings.variants:
        started = time.perf_counter()
        final = grpo_finetune(out / "token", data_dir, out, settings, settings.seed, VARIANTS["token"]["fps"])
        timings["token_grpo_s"] = time.perf_counter() - started
        results["token_grpo"] = evaluate_model(final, data_dir, out, log)
    report = {"settings": asdict(settings), "timings_s": timings, "tower_accuracy": tower_accuracy, "results": results}
    (out / "results.json").write_text(json.dumps(report, indent=2))
    return report


def results_table(report: dict[str, Any]) -> str:
    """Markdown table: the metrics, and the share of the target's tokens that reached the LLM (`-` for the baseline)."""
    keys = ("R1@0.3", "R1@0.5", "R1@0.7", "mIoU", "target_tokens_kept")
    lines = ["| model | R1@0.3 | R1@0.5 | R1@0.7 | mIoU | target tokens kept (%) |", "|---" * (len(keys) + 1) + "|"]
    for name, metrics in report["results"].items():
        cells = [f"{metrics[k]:.1f}" if k in metrics else "-" for k in keys]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
