"""Feasibility prototype: train a tiny GroundVTS-Q (Qwen2.5-VL architecture) from scratch on the synthetic benchmark
(`groundvts make-synthetic`) on CPU, and compare its greedy grounding answers with the mean-window baseline.

Not a `groundvts` subcommand (a research script; the lead decides what becomes library code). Speed comes from a
per-record cache: every record goes through the stock `GroundVTSVideoCollator` once (decode + processor), its
unpadded tensors are kept in memory, and each training step only pads and concatenates them.

    python scripts/synthetic_experiment.py --data /tmp/syn --out /tmp/synrun --steps 600 --batch 16 --lr 2e-3
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from groundvts.modeling.configuration_groundvts_qwen2_5_vl import GroundVTSQwen2_5_VLConfig
from groundvts.modeling.modeling_groundvts_qwen2_5_vl import GroundVTSQwen2_5_VLForConditionalGeneration
from groundvts.processing.parsing import parse_mr_answer
from groundvts.processing.prompts import build_mr_conversation
from groundvts.processing.tiny import build_tiny_qwen2_5_vl_processor, special_token_ids
from groundvts.trainers.collator import GroundVTSVideoCollator


PAD_VALUES = {"input_ids": None, "attention_mask": 0, "labels": -100, "query_mask": 0, "mm_token_type_ids": 0}


def read_split(data: Path, split: str) -> list[dict[str, Any]]:
    """Samples of a split from the manifest: video path, query, window, duration."""
    manifest = json.loads((data / "manifest.json").read_text())
    rows = []
    for sample in manifest["samples"]:
        if sample["split"] != split:
            continue
        rows.append({
            "video": str(data / "videos" / f"{sample['video_id']}.mp4"), "query": sample["query"],
            "window": tuple(sample["window"]), "duration": sample["duration"],
        })
    return rows


def build_processor(side: int, fps: float):
    return build_tiny_qwen2_5_vl_processor(max_pixels=side * side, min_pixels=side * side, fps=fps, max_frames=128)


def model_config(processor, hidden: int, layers: int, vdepth: int, vhidden: int) -> GroundVTSQwen2_5_VLConfig:
    ids = special_token_ids(processor)
    heads = max(hidden // 32, 2)
    half = hidden // heads // 2  # mrope sections (t, h, w) sum to head_dim / 2
    mrope = [half // 2, half // 4, half - half // 2 - half // 4]
    text = dict(vocab_size=ids["vocab_size"], hidden_size=hidden, intermediate_size=hidden * 3, num_hidden_layers=layers,
                num_attention_heads=heads, num_key_value_heads=heads, max_position_embeddings=4096,
                pad_token_id=ids["pad_token_id"], bos_token_id=ids["bos_token_id"], eos_token_id=ids["eos_token_id"],
                rope_parameters={"rope_type": "default", "mrope_section": mrope, "rope_theta": 1e4},
                tie_word_embeddings=True)
    vision = dict(depth=vdepth, hidden_size=vhidden, intermediate_size=vhidden * 2, num_heads=max(vhidden // 32, 2),
                  out_hidden_size=hidden, patch_size=14, spatial_merge_size=2, temporal_patch_size=2,
                  tokens_per_second=2, window_size=112, fullatt_block_indexes=list(range(vdepth)))
    return GroundVTSQwen2_5_VLConfig(
        text_config=text, vision_config=vision, image_token_id=ids["image_token_id"],
        video_token_id=ids["video_token_id"], vision_start_token_id=ids["vision_start_token_id"],
        vision_end_token_id=ids["vision_end_token_id"], vts_keep_ratio=1.0,
    )


def encode_records(collator: GroundVTSVideoCollator, rows, template: int, with_answer: bool) -> list[dict]:
    """One unpadded tensor dict per row (the stock collator on a one-record batch)."""
    cached = []
    for row in rows:
        record = build_mr_conversation(row["query"], *row["window"], row["video"], template_index=template)
        if with_answer:
            batch = collator([record])
        else:
            processor = collator.processor
            text = processor.apply_chat_template(record["messages"][:1], tokenize=False, add_generation_prompt=True)
            batch = dict(processor(text=[text], videos=record["videos"], return_tensors="pt", **collator.video_kwargs))
        cached.append({k: (v[0] if k in PAD_VALUES else v) for k, v in batch.items() if torch.is_tensor(v)})
    return cached


def pad_collate(items: list[dict], pad_id: int, side: str = "right") -> dict[str, torch.Tensor]:
    length = max(item["input_ids"].shape[0] for item in items)
    batch: dict[str, torch.Tensor] = {}
    for key, fill in PAD_VALUES.items():
        if key not in items[0]:
            continue
        fill = pad_id if fill is None else fill
        rows = []
        for item in items:
            gap = length - item[key].shape[0]
            rows.append(F.pad(item[key], (gap, 0) if side == "left" else (0, gap), value=fill))
        batch[key] = torch.stack(rows)
    for key in ("pixel_values_videos", "video_grid_thw", "second_per_grid_ts"):
        batch[key] = torch.cat([item[key].float() if key == "pixel_values_videos" else item[key] for item in items])
    return batch


def iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union > 0 else 0.0


def metrics(preds: list[tuple[float, float] | None], rows) -> dict[str, float]:
    ious = [iou(p, r["window"]) if p is not None else 0.0 for p, r in zip(preds, rows)]
    out = {f"R1@{t}": 100 * float(np.mean([x >= t for x in ious])) for t in (0.3, 0.5, 0.7)}
    out["mIoU"] = 100 * float(np.mean(ious))
    out["parsed"] = 100 * float(np.mean([p is not None for p in preds]))
    return out


def baseline(train_rows, test_rows) -> dict[str, float]:
    """Mean training window as fractions of the duration, scaled to each test video."""
    s = np.mean([r["window"][0] / r["duration"] for r in train_rows])
    e = np.mean([r["window"][1] / r["duration"] for r in train_rows])
    return metrics([(s * r["duration"], e * r["duration"]) for r in test_rows], test_rows)


@torch.no_grad()
def evaluate(model, processor, prompts: list[dict], rows, batch: int = 32, max_new_tokens: int = 16):
    model.eval()
    tok = processor.tokenizer
    preds, texts = [], []
    for start in range(0, len(prompts), batch):
        items = prompts[start : start + batch]
        inputs = pad_collate(items, tok.pad_token_id, side="left")
        out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
        for seq in out[:, inputs["input_ids"].shape[1]:]:
            text = tok.decode(seq, skip_special_tokens=True)
            texts.append(text)
    for text, row in zip(texts, rows):
        pred = parse_mr_answer(text, row["duration"])
        preds.append(None if pred is None else (pred.start, pred.end))
    model.train()
    return metrics(preds, rows), texts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--side", type=int, default=112, help="frame side in px (112 -> 16 tokens / 2 frames)")
    parser.add_argument("--fps", type=float, default=1.0)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--vdepth", type=int, default=2)
    parser.add_argument("--vhidden", type=int, default=64)
    parser.add_argument("--num-train", type=int, default=1000)
    parser.add_argument("--num-test", type=int, default=200)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--eval-every", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timing-only", action="store_true", help="measure data and step cost, then stop")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    log = open(args.out / "log.jsonl", "a")

    def report(**values):
        values["wall"] = round(time.time() - t0, 1)
        print(json.dumps(values), flush=True)
        log.write(json.dumps(values) + "\n")
        log.flush()

    t0 = time.time()
    train_rows = read_split(args.data, "train")[: args.num_train]
    test_rows = read_split(args.data, "test")[: args.num_test]
    processor = build_processor(args.side, args.fps)
    collator = GroundVTSVideoCollator(processor, {"fps": args.fps})

    # Data cost: the stock collator decoding mp4s, one batch.
    sample = [build_mr_conversation(r["query"], *r["window"], r["video"], template_index=0) for r in train_rows[:8]]
    t = time.time()
    probe = collator(sample)
    report(event="stock_collator_batch8_s", seconds=round(time.time() - t, 3),
           seq_len=int(probe["input_ids"].shape[1]), grid=probe["video_grid_thw"].tolist()[:2])

    t = time.time()
    train = encode_records(collator, train_rows, template=0, with_answer=True)
    test = encode_records(collator, test_rows, template=0, with_answer=False)
    report(event="cache_built", seconds=round(time.time() - t, 1), train=len(train), test=len(test),
           mean_len=float(np.mean([x["input_ids"].shape[0] for x in train])),
           mean_video_tokens=float(np.mean([int(x["video_grid_thw"].prod()) // 4 for x in train])))

    config = model_config(processor, args.hidden, args.layers, args.vdepth, args.vhidden)
    model = GroundVTSQwen2_5_VLForConditionalGeneration(config)
    n_params = sum(p.numel() for p in model.parameters())
    report(event="model", params=n_params, vision=sum(p.numel() for p in model.model.visual.parameters()))
    report(event="baseline", **baseline(train_rows, test_rows))

    optim = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.98), weight_decay=0.01)
    warm = max(1, args.steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        optim, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / args.steps))))
    pad = processor.tokenizer.pad_token_id
    order: list[int] = []
    losses = []
    t_train = time.time()
    model.train()
    for step in range(1, args.steps + 1):
        if len(order) < args.batch:
            order += random.sample(range(len(train)), len(train))
        idx, order = order[: args.batch], order[args.batch :]
        t = time.time()
        batch = pad_collate([train[i] for i in idx], pad)
        t_data = time.time() - t
        loss = model(**batch, use_cache=False).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optim.step()
        sched.step()
        optim.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if step <= 3 or step % 25 == 0:
            report(event="step", step=step, loss=round(float(np.mean(losses[-25:])), 4), data_s=round(t_data, 4),
                   step_s=round(time.time() - t, 3), lr=sched.get_last_lr()[0])
        if args.timing_only and step >= 5:
            return 0
        if step % args.eval_every == 0 or step == args.steps:
            t = time.time()
            scores, texts = evaluate(model, processor, test, test_rows)
            report(event="eval", step=step, eval_s=round(time.time() - t, 1), train_s=round(time.time() - t_train, 1),
                   examples=texts[:4], **scores)
    model.save_pretrained(args.out / "model")
    return 0


if __name__ == "__main__":
    sys.exit(main())
