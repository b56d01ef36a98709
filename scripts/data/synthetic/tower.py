"""The vision pre-task of the synthetic benchmark's base model: teach the tiny vision tower to see the target.

Trained from scratch together with the language model, a tiny tower's tokens barely separate "target here" from
"not here", and grounding stays at the trivial baseline (docs/synthetic_findings.md, "What made it learn", 1). So the
base model's tower (encoder + projector) is first trained alone: every merged video token's output is fitted (MSE)
to one of two fixed random vectors, "the target is visible in this token's cell at the midpoint of its temporal
patch" or not, with labels from the generator's manifest. Stage 0 then trains the language model with the tower frozen
(`GroundVTSSFTConfig(freeze=TOWER_GROUPS)`).

The labels assume static objects, so the scenes must use the appear / disappear events only.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from transformers import Trainer, TrainingArguments

STATIC_EVENTS = ("appear", "disappear")
TOWER_GROUPS = ("vision", "projector")  # what the pre-task trains, and stage 0 then keeps frozen


def visible_cell_labels(target: dict[str, Any], frame_size: tuple[int, int], grid_thw: list[int],
                        patch_midpoints: Sequence[float], merge: int = 2) -> torch.Tensor:
    """(t * h * w / merge², ) long: 1 on the merged token whose cell holds the target's centre, in the temporal
    patches whose midpoint (`patch_midpoints`, seconds, one per patch: the backbone's
    `SyntheticBackbone.patch_midpoints`) lies inside the target's visible time, else 0 (raster order within each
    patch, patch after patch, as both Qwen-VL towers emit them)."""
    if target.get("event") not in STATIC_EVENTS:
        raise ValueError(
            f"The tower pre-task labels static targets only; got event {target.get('event')!r}. Generate the scenes"
            f" with `--event-types {' '.join(STATIC_EVENTS)}`."
        )
    t, h, w = grid_thw
    if len(patch_midpoints) != t:
        raise ValueError(f"video_grid_thw says {t} temporal patches but {len(patch_midpoints)} patch times were given.")
    rows, cols = h // merge, w // merge
    start, end = target["window"]
    inside = torch.tensor([start <= mid <= end for mid in patch_midpoints])
    visible = inside if target["event"] == "appear" else ~inside
    (width, height), (cx, cy) = frame_size, target["center"]
    cell = torch.zeros(rows * cols, dtype=torch.long)
    cell[int(cy * rows // height) * cols + int(cx * cols // width)] = 1
    return (visible.long()[:, None] * cell[None, :]).flatten()


def tower_records(data_dir: Path, split: str) -> list[dict[str, Any]]:
    """One record per sample of `split`: the video (for the collator) and the target and frame size (for the labels)."""
    from groundvts.processing.prompts import assistant_turn, user_turn

    from groundvts.scripts.data.synthetic.videos import read_split

    samples, settings = read_split(data_dir, split)
    frame_size = [settings["width"], settings["height"]]
    return [
        {"messages": [user_turn(sample["query"]), assistant_turn(".")],  # answer unused: the collator needs both turns
         "videos": [sample["video"]],
         "target": json.dumps(sample["target"]), "frame_size": frame_size}  # JSON: one Arrow type for every row
        for sample in samples
    ]


def record_labels(record: dict[str, Any], processor: Any, video_kwargs: dict[str, Any], batch: dict[str, Any],
                  row: int) -> torch.Tensor:
    """`visible_cell_labels` of one `tower_records` record, whose video is row `row` of the processor outputs
    `batch` (made with `video_kwargs`)."""
    from groundvts.scripts.data.synthetic.backbones import backbone_for_processor

    video = record["videos"][0]
    midpoints = backbone_for_processor(processor).patch_midpoints(processor, video_kwargs, batch, row, video)
    return visible_cell_labels(json.loads(record["target"]), record["frame_size"],
                               [int(v) for v in batch["video_grid_thw"][row]], midpoints)


class TowerCollator:
    """Pixels and grids from a `GroundVTSVideoCollator` (its cache and video settings), plus per-token labels
    (computed once per record)."""

    def __init__(self, video_collator: Any) -> None:
        self.video_collator = video_collator
        self.labels: dict[str, torch.Tensor] = {}

    def __call__(self, records: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        batch = self.video_collator(records)
        labels = []
        for row, record in enumerate(records):
            key = json.dumps([record["videos"], record["target"]])
            if key not in self.labels:
                self.labels[key] = record_labels(record, self.video_collator.processor,
                                                 self.video_collator.video_kwargs, batch, row)
            labels.append(self.labels[key])
        return {"pixel_values_videos": batch["pixel_values_videos"], "video_grid_thw": batch["video_grid_thw"],
                "cell_labels": torch.cat(labels)}


def video_token_streams(model: Any, pixel_values_videos: torch.Tensor, video_grid_thw: torch.Tensor
                        ) -> list[torch.Tensor]:
    """Every (tokens, hidden) stream the tower hands the language model for a batch, before any selection, the
    tokens in the same order in each: the projected video tokens, then (Qwen3-VL) each DeepStack layer's."""
    output = model.model.get_video_features(pixel_values_videos, video_grid_thw, return_dict=True)
    deepstack = getattr(output, "deepstack_features", None) or []
    return [torch.cat(list(output.pooler_output)), *(torch.cat(list(layer)) for layer in deepstack)]


def video_token_features(model: Any, pixel_values_videos: torch.Tensor, video_grid_thw: torch.Tensor) -> torch.Tensor:
    """(tokens, hidden): the projected video tokens of a batch, before any selection."""
    return video_token_streams(model, pixel_values_videos, video_grid_thw)[0]


class TowerMatchingTrainer(Trainer):
    """Trains the vision tower alone: MSE between each video token and the fixed vector of its label, averaged over
    the tower's streams (Qwen3-VL's DeepStack layers learn the same code as the main tokens, so that what they add to
    the first decoder layers carries the label too)."""

    def __init__(self, model: Any, args: TrainingArguments, **kwargs: Any) -> None:
        from groundvts.trainers.stages import parameter_groups

        groups = parameter_groups(model)
        for name, param in model.named_parameters():
            param.requires_grad_(groups[name] in TOWER_GROUPS)
        generator = torch.Generator().manual_seed(args.seed)
        self.codebook = torch.randn(2, model.config.text_config.hidden_size, generator=generator)
        super().__init__(model=model, args=args, **kwargs)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        streams = video_token_streams(model, inputs["pixel_values_videos"], inputs["video_grid_thw"])
        loss = sum(F.mse_loss(s, self.codebook.to(s)[inputs["cell_labels"]]) for s in streams) / len(streams)
        return (loss, streams[0]) if return_outputs else loss

    @torch.no_grad()
    def label_accuracy(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """Share of video tokens whose nearest codebook vector is their label's: all tokens, and target tokens."""
        device = self.model.device
        features = video_token_features(self.model, batch["pixel_values_videos"].to(device),
                                        batch["video_grid_thw"].to(device))
        nearest = torch.cdist(features, self.codebook.to(features)).argmin(1).cpu()
        labels = batch["cell_labels"]
        return {"token_accuracy": round(100 * (nearest == labels).float().mean().item(), 1),
                "target_token_accuracy": round(100 * (nearest[labels == 1] == 1).float().mean().item(), 1)}


def train_tower(model: Any, video_collator: Any, train: list[dict[str, Any]], test: list[dict[str, Any]],
                out: Path, steps: int, lr: float, batch_size: int, seed: int) -> dict[str, float]:
    """Runs the pre-task on `model` in place; returns the label accuracy on (up to 64 of) the `test` records."""
    from datasets import Dataset

    args = TrainingArguments(
        output_dir=str(out), max_steps=steps, learning_rate=lr, per_device_train_batch_size=batch_size,
        lr_scheduler_type="cosine", warmup_steps=0.05, weight_decay=0.01, max_grad_norm=1.0, adam_beta2=0.98,
        use_cpu=not torch.cuda.is_available(), report_to=[], logging_steps=max(steps // 10, 1), save_strategy="no",
        seed=seed, dataloader_num_workers=0, remove_unused_columns=False,
    )
    collator = TowerCollator(video_collator)
    trainer = TowerMatchingTrainer(model, args, train_dataset=Dataset.from_list(train), data_collator=collator)
    trainer.train()
    model.eval()
    return trainer.label_accuracy(collator(test[:64]))


def target_token_recall(model_dir: Path, data_dir: Path, limit: int = 100, keep_ratio: float | None = None,
                        strategy: str | None = None, fps: float | None = None) -> float:
    """Percentage of the tokens that show the target (`visible_cell_labels`) which reach the language model, over
    the first `limit` test videos, asked with the evaluation prompt: 100 for a dense model, about 50 for a random
    half, and how well VTS finds the target otherwise. `keep_ratio`, `strategy` and `fps` override the model's."""
    from groundvts.processing.prompts import build_inference_messages

    from groundvts.scripts.inference.loading import ModelSettings

    model, processor = ModelSettings(model=str(model_dir), keep_ratio=keep_ratio, strategy=strategy).load()
    sampling = {"fps": fps} if fps is not None else {}
    kept = total = 0
    for record in tower_records(data_dir, "test")[:limit]:
        query = record["messages"][0]["content"][1]["text"]
        text = processor.apply_chat_template(build_inference_messages(query, None, "mr"), tokenize=False,
                                             add_generation_prompt=True)
        inputs = processor(text=[text], videos=record["videos"], return_tensors="pt", **sampling).to(model.device)
        with torch.no_grad():
            keep = model(**inputs, return_vts_selection=True).video_keep[0].cpu()
        labels = record_labels(record, processor, sampling, inputs, 0)
        kept += int(keep[labels == 1].sum())
        total += int((labels == 1).sum())
    return round(100 * kept / max(total, 1), 1)
