"""Stage 4 on the synthetic benchmark: GRPO with the temporal-IoU and format rewards after the token variant's
stage 3, at the same budget (ρ = 0.5 at 2 fps), on the same train prompts without their answers.

The result sits next to the stage-3 model in results.json (`token_grpo`), and the run's log (reward, its spread
within each group, KL, the share of groups whose answers all scored the same) goes to OUT/token_grpo_log.json: if
GRPO does not help, that is where to look for why.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from groundvts.scripts.data.synthetic.settings import knob

# Logged per step by TRL's GRPOTrainer; what the write-up of a run needs.
LOG_KEYS = ("reward", "reward_std", "frac_reward_zero_std", "kl", "entropy", "rewards/temporal_iou_reward/mean",
            "rewards/format_reward/mean", "completions/mean_length", "loss")


@dataclass
class GRPOBudget:
    """Stage-4 settings of a synthetic run; each field is a `synthetic-benchmark` flag."""

    grpo_steps: int = knob(0, "stage 4 (GRPO) steps after the token variant's stage 3; 0 skips it")
    grpo_lr: float = knob(1e-4, "stage 4 learning rate (LoRA)")
    grpo_generations: int = knob(8, "answers sampled per prompt")
    grpo_prompts_per_step: int = knob(2, "prompts per optimizer step")
    grpo_temperature: float = knob(1.0, "sampling temperature")
    grpo_beta: float = knob(0.04, "KL weight to the stage-3 model")


def grpo_finetune(
    model_dir: Path, data_dir: Path, out: Path, budget: GRPOBudget, seed: int, fps: float, name: str = "token_grpo",
) -> Path:
    """GRPO from the merged model in `model_dir`; merged and saved with its processor in OUT/<name>, its log in
    OUT/<name>_log.json."""
    import torch

    from groundvts.trainers import GroundVTSGRPOConfig, GroundVTSGRPOTrainer, to_grpo_dataset
    from groundvts.trainers.loading import load_model_and_processor

    from groundvts.scripts.data.synthetic.benchmark import training_dataset

    model, processor = load_model_and_processor(model_dir)
    args = GroundVTSGRPOConfig(
        output_dir=str(out / f"{name}_run"), max_steps=budget.grpo_steps, learning_rate=budget.grpo_lr,
        num_generations=budget.grpo_generations, temperature=budget.grpo_temperature, beta=budget.grpo_beta,
        per_device_train_batch_size=budget.grpo_generations * budget.grpo_prompts_per_step,
        max_completion_length=16, lr_scheduler_type="constant", use_cpu=not torch.cuda.is_available(), bf16=False,
        activation_checkpointing=False, report_to=[], logging_steps=max(budget.grpo_steps // 20, 1),
        save_strategy="no", seed=seed, dataloader_num_workers=0, video_fps=fps, video_max_frames=128,
        video_cache=True,
    )
    trainer = GroundVTSGRPOTrainer(model=model, args=args, train_dataset=to_grpo_dataset(training_dataset(data_dir, seed)),
                                   processing_class=processor)
    trainer.train()
    final = out / name
    trainer.model.merge_and_unload().save_pretrained(final)
    processor.save_pretrained(final)
    log = [{key: entry[key] for key in ("step", *LOG_KEYS) if key in entry}
           for entry in trainer.state.log_history if "reward" in entry]
    (out / f"{name}_log.json").write_text(json.dumps(log, indent=1))
    return final


def add_grpo_result(out: Path, budget: GRPOBudget, seed: int, fps: float,
                    evaluate: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
    """Stage 4 from OUT/token (a finished run's stage-3 token model), evaluated and added to OUT/results.json."""
    source = out / "token"
    if not (source / "config.json").is_file():
        raise FileNotFoundError(f"{source} holds no model: run the benchmark with the `token` variant first.")
    results_file = out / "results.json"
    report = json.loads(results_file.read_text()) if results_file.is_file() else {"results": {}}
    if "token" not in report["results"]:  # a folder assembled by hand: measure "before" in this run too
        report["results"]["token"] = evaluate(source)
    final = grpo_finetune(source, out / "data", out, budget, seed, fps)
    report["results"]["token_grpo"] = evaluate(final)
    report.setdefault("settings", {}).update({key: getattr(budget, key) for key in budget.__dataclass_fields__})
    results_file.write_text(json.dumps(report, indent=2))
    return report
