"""The three GroundVTS training stages: what each one trains, applied and then asserted.

| Stage | Trains | Frozen |
|---|---|---|
| 0 base (models trained from scratch only) | every weight | nothing |
| 1 warm-up | VTS | everything else |
| 2 joint, 3 grounding | LLM LoRA (attention q/k/v/o) + VTS + projector | vision encoder, LLM base weights, LM head |
| 4 GRPO (`GroundVTSGRPOTrainer`) | LLM LoRA; VTS + projector unless frozen (frozen by default) | as stages 2-3 |

The projector is Qwen's `visual.merger` (with Qwen3-VL, also its DeepStack mergers) or InternVL's
`multi_modal_projector`.

The vision encoder is frozen in every GroundVTS stage; stage 0 exists for backbones trained from scratch (the
synthetic benchmark), where a base model must first learn to see and answer at all. Freezing must happen before the optimizer exists (it only receives
parameters that require grad then), so `StageCallback` applies the spec in `on_init_end` — after TRL wrapped the
model with PEFT, before `train()` builds the optimizer — and checks it again in `on_train_begin`.

`freeze` keeps some of a stage's groups frozen as well, e.g. stage 0 with `("vision", "projector")` when the
vision tower was trained by a separate pre-task (the synthetic benchmark's base model).
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from peft import LoraConfig
from torch import nn
from transformers import TrainerCallback


logger = logging.getLogger(__name__)

STAGES = (0, 1, 2, 3, 4)
# Parameter groups each stage trains; every other group must stay frozen.
STAGE_TRAINABLE: dict[int, frozenset[str]] = {
    0: frozenset({"vts", "projector", "vision", "language_model", "other"}),
    1: frozenset({"vts"}),
    2: frozenset({"vts", "projector", "lora"}),
    3: frozenset({"vts", "projector", "lora"}),
    4: frozenset({"vts", "projector", "lora"}),
}
GROUPS = ("vts", "projector", "lora", "vision", "language_model", "other")
# LoRA goes on the language model's attention only; the vision towers also have q/k/v projections.
LORA_TARGET_REGEX = r".*language_model\.layers\.\d+\.self_attn\.(q_proj|k_proj|v_proj|o_proj)"


def check_stage(stage: int) -> int:
    if stage not in STAGES:
        raise ValueError(f"`stage` must be one of {STAGES} (0 base from scratch, 1 VTS warm-up, 2 joint LoRA, 3 grounding, 4 GRPO), got {stage!r}.")
    return stage


def _inner(model: nn.Module) -> nn.Module:
    """The GroundVTS inner model (holding `vts`) under any PEFT / DDP wrapping."""
    for module in model.modules():
        if hasattr(module, "vts") and (hasattr(module, "visual") or hasattr(module, "vision_tower")):
            return module
    raise ValueError(
        f"{type(model).__name__} is not a GroundVTS model (no inner model with a `vts` sampler); load a"
        " GroundVTS-Q / GroundVTS-Q3 / GroundVTS-I checkpoint."
    )


def trainable_groups(stage: int, freeze: tuple[str, ...] | list[str] = ()) -> frozenset[str]:
    """The groups `stage` trains, less those in `freeze`."""
    unknown = sorted(set(freeze) - set(GROUPS))
    if unknown:
        raise ValueError(f"Unknown parameter groups to freeze {unknown}; choose from {list(GROUPS)}.")
    trainable = STAGE_TRAINABLE[check_stage(stage)] - set(freeze)
    if not trainable:
        raise ValueError(f"Freezing {sorted(freeze)} leaves nothing to train in stage {stage}.")
    return trainable


def projector_names(model: nn.Module) -> list[str]:
    """Attribute paths of the vision→language projectors inside the inner model: Qwen's merger (and Qwen3-VL's
    DeepStack mergers, which project three ViT layers into the LLM's width the same way), InternVL's projector."""
    inner = _inner(model)
    if not hasattr(inner, "visual"):
        return ["multi_modal_projector"]
    deepstack = getattr(inner.visual, "deepstack_merger_list", [])
    return ["visual.merger", *(f"visual.deepstack_merger_list.{index}" for index in range(len(deepstack)))]


def lora_config(model: nn.Module, r: int = 8, alpha: int = 16, dropout: float = 0.05) -> LoraConfig:
    """Paper LoRA (r 8, α 16, dropout 0.05) on the LLM attention; VTS and projector fully trained and saved with
    the adapter (`modules_to_save`)."""
    return LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=LORA_TARGET_REGEX,
        # PEFT matches these as name suffixes: "merger", "deepstack_merger_list.0", ..., "multi_modal_projector".
        modules_to_save=["vts", *(name.removeprefix("visual.") for name in projector_names(model))],
        task_type="CAUSAL_LM",
    )


def parameter_groups(model: nn.Module) -> dict[str, str]:
    """Group name of every parameter (by name) of a GroundVTS model, PEFT-wrapped or not."""
    inner = _inner(model)
    vision = inner.visual if hasattr(inner, "visual") else inner.vision_tower
    projectors = [inner.get_submodule(name) for name in projector_names(model)]
    ids = {
        "vts": {id(p) for p in inner.vts.parameters()},
        "projector": {id(p) for projector in projectors for p in projector.parameters()},
        "vision": {id(p) for p in vision.parameters()},
        "language_model": {id(p) for p in inner.language_model.parameters()},
    }
    groups = {}
    for name, param in model.named_parameters():
        if "lora_" in name:
            groups[name] = "lora"
        else:
            # The projector sits inside Qwen's vision tower, so it is tested first.
            groups[name] = next((g for g in ("vts", "projector", "vision", "language_model") if id(param) in ids[g]), "other")
    return groups


def apply_stage(model: nn.Module, stage: int, freeze: tuple[str, ...] | list[str] = ()) -> None:
    """Set `requires_grad` so that exactly the stage's groups (less `freeze`) train."""
    trainable = trainable_groups(stage, freeze)
    groups = parameter_groups(model)
    for name, param in model.named_parameters():
        group = groups[name]
        # PEFT keeps a frozen original next to each `modules_to_save` copy; only the copy trains.
        is_original_copy = ".original_module." in name
        param.requires_grad_(group in trainable and not is_original_copy)


def trainable_counts(model: nn.Module) -> dict[str, dict[str, int]]:
    """Trainable and total parameter counts per group."""
    groups = parameter_groups(model)
    total, trainable = Counter(), Counter()
    for name, param in model.named_parameters():
        total[groups[name]] += param.numel()
        if param.requires_grad:
            trainable[groups[name]] += param.numel()
    return {group: {"trainable": trainable[group], "total": total[group]} for group in GROUPS if total[group]}


def assert_stage(model: nn.Module, stage: int, freeze: tuple[str, ...] | list[str] = ()) -> dict[str, dict[str, int]]:
    """Raise unless exactly the stage's groups (less `freeze`) have trainable parameters; returns the counts."""
    allowed = trainable_groups(stage, freeze)
    counts = trainable_counts(model)
    wrong = sorted(g for g, c in counts.items() if c["trainable"] and g not in allowed)
    missing = sorted(g for g in allowed if g in counts and counts[g]["trainable"] == 0)
    if "lora" in allowed and "lora" not in counts:
        missing.append("lora")
    if wrong or missing:
        raise RuntimeError(
            f"Stage {stage}{f' (freezing {sorted(freeze)})' if freeze else ''} must train exactly {sorted(allowed)};"
            f" trainable outside it: {wrong or 'none'}, with"
            f" nothing trainable: {missing or 'none'}. Counts: {counts}"
            + (" (stages 2 and 3 need a LoRA adapter: pass `peft_config`)." if "lora" in missing else "")
        )
    return counts


class StageCallback(TrainerCallback):
    """Applies the stage's freeze spec before the optimizer is built and asserts it when training starts."""

    def __init__(self, stage: int, freeze: tuple[str, ...] | list[str] = ()) -> None:
        trainable_groups(stage, freeze)  # fail at construction on a bad stage or group name
        self.stage, self.freeze = stage, tuple(freeze)
        self.counts: dict[str, dict[str, int]] | None = None

    def on_init_end(self, args: Any, state: Any, control: Any, model: nn.Module | None = None, **kwargs: Any):
        apply_stage(model, self.stage, self.freeze)
        self.counts = assert_stage(model, self.stage, self.freeze)
        summary = ", ".join(f"{g} {c['trainable']:,}/{c['total']:,}" for g, c in self.counts.items())
        logger.warning("GroundVTS stage %d trainable parameters (trainable/total): %s", self.stage, summary)

    def on_train_begin(self, args: Any, state: Any, control: Any, model: nn.Module | None = None, **kwargs: Any):
        self.counts = assert_stage(model, self.stage, self.freeze)
