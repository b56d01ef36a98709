"""Feasibility prototype: train a tiny GroundVTS-Q (Qwen2.5-VL architecture) from scratch on the synthetic benchmark
(`groundvts make-synthetic`) on CPU, and compare its greedy grounding answers with the mean-window baseline.

Not a `groundvts` subcommand (a research script; the lead decides what becomes library code). Speed comes from a
per-record cache: every record goes through the stock `GroundVTSVideoCollator` once (decode + processor), its
unpadded tensors are kept in memory, and each training step only pads and concatenates them.

    python scripts/experiments/synthetic_experiment.py --data /tmp/syn --out /tmp/synrun --steps 600 --batch 16 --lr 2e-3

Diagnosis knobs (docs/synthetic_findings.md, "What made it learn"): `--vts-strategy` (dense by default: a base
model must not run the learned sampler), `--freeze-vision`, `--video-scale`, `--rope-theta`, `--mrope`, `--heads`,
`--init` (curriculum), `--template mix` (adds the evaluation prompt), and `--trainer` (the same run through
`GroundVTSTrainer`, stage 0, `video_cache=True`). Encoded records are memoised on disk under `--cache-dir`.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from groundvts.modeling.configuration_groundvts_qwen2_5_vl import GroundVTSQwen2_5_VLConfig
from groundvts.modeling.modeling_groundvts_qwen2_5_vl import GroundVTSQwen2_5_VLForConditionalGeneration
from groundvts.processing.parsing import parse_mr_answer
from groundvts.processing.prompts import MR_TEMPLATES, build_inference_messages, build_mr_conversation
from groundvts.processing.tiny import build_tiny_qwen2_5_vl_processor, special_token_ids
from groundvts.scripts.data.synthetic.scenes import query_for
from groundvts.trainers.collator import GroundVTSVideoCollator


QUERY_FIRST = False
DEVICE = "cpu"
PAD_VALUES = {"input_ids": None, "attention_mask": 0, "labels": -100, "query_mask": 0, "mm_token_type_ids": 0}


def read_split(data: Path, split: str) -> list[dict[str, Any]]:
    """Samples of a split from the manifest: video path, query, window, duration."""
    manifest = json.loads((data / "manifest.json").read_text())
    frame_size = (manifest["settings"]["width"], manifest["settings"]["height"])
    rows = []
    for sample in manifest["samples"]:
        if sample["split"] != split:
            continue
        rows.append({
            "video": str(data / "videos" / f"{sample['video_id']}.mp4"), "query": sample["query"],
            "window": tuple(sample["window"]), "duration": sample["duration"], "event": sample.get("event"),
            "sample": sample, "frame_size": frame_size,
        })
    return rows


def distractor_rows(row: dict, rng: random.Random) -> list[dict]:
    """Extra grounding rows for the same video: one per distractor with an event of its own, phrased with the
    generator's query templates (`query_for`), so one video needs different answers for different queries."""
    out = []
    for obj in row["sample"]["distractors"]:
        if not obj.get("event") or not obj.get("window"):
            continue
        spec = SimpleNamespace(event=obj["event"], direction=obj.get("direction"), color=obj["color"],
                               shape=obj["shape"], new_color=obj.get("new_color"))
        out.append({**row, "query": query_for(rng, spec), "window": tuple(obj["window"]), "event": obj["event"],
                    "distractor": True})
    return out


def content_row(row: dict, rng: random.Random, kind: str = "mixed") -> dict:
    """A content question on the same video, answered from the manifest (no timing): which objects are in it, or
    the colour of a shape that occurs once. The answer needs the frames, not the token count."""
    objects = [row["sample"]["target"], *row["sample"]["distractors"]]
    shapes = [o["shape"] for o in objects]
    unique = [o for o in objects if shapes.count(o["shape"]) == 1]
    if unique and (kind == "colour" or rng.random() < 0.5):
        obj = rng.choice(unique)
        question, answer = f"What color is the {obj['shape']}?", f"The {obj['shape']} is {obj['color']}."
    else:
        names = sorted(f"{o['color']} {o['shape']}" for o in objects)
        question, answer = "Which shapes are in the video?", ", ".join(names) + "."
    return {**row, "qa": (question, answer)}


def qa_record(row: dict) -> dict:
    question, answer = row["qa"]
    return {"messages": [
        {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": question}]},
        {"role": "assistant", "content": [{"type": "text", "text": answer}]}], "videos": [row["video"]]}


SYNTHETIC_TOKENIZER = False


def build_processor(side: int, fps: float):
    if SYNTHETIC_TOKENIZER:  # the synthetic benchmark's tokenizer: its words are whole tokens (~2x shorter prompts)
        from groundvts.scripts.data.synthetic.benchmark import SyntheticSettings, synthetic_processor

        return synthetic_processor(SyntheticSettings(frame_side=side), fps)
    return build_tiny_qwen2_5_vl_processor(max_pixels=side * side, min_pixels=side * side, fps=fps, max_frames=128)


def model_config(processor, hidden: int, layers: int, vdepth: int, vhidden: int, rope_theta: float = 1e4,
                 mrope: list[int] | None = None, heads: int | None = None,
                 vts_strategy: str = "dense") -> GroundVTSQwen2_5_VLConfig:
    ids = special_token_ids(processor)
    heads = heads or max(hidden // 32, 2)
    half = hidden // heads // 2  # mrope sections (t, h, w) sum to head_dim / 2
    mrope = list(mrope) if mrope else [half // 2, half // 4, half - half // 2 - half // 4]
    if sum(mrope) != half:
        raise ValueError(f"--mrope {mrope} must sum to head_dim / 2 = {half}.")
    text = dict(vocab_size=ids["vocab_size"], hidden_size=hidden, intermediate_size=hidden * 3, num_hidden_layers=layers,
                num_attention_heads=heads, num_key_value_heads=heads, max_position_embeddings=4096,
                pad_token_id=ids["pad_token_id"], bos_token_id=ids["bos_token_id"], eos_token_id=ids["eos_token_id"],
                rope_parameters={"rope_type": "default", "mrope_section": mrope, "rope_theta": rope_theta},
                tie_word_embeddings=True)
    vision = dict(depth=vdepth, hidden_size=vhidden, intermediate_size=vhidden * 2, num_heads=max(vhidden // 32, 2),
                  out_hidden_size=hidden, patch_size=14, spatial_merge_size=2, temporal_patch_size=2,
                  tokens_per_second=2, window_size=112, fullatt_block_indexes=list(range(vdepth)))
    return GroundVTSQwen2_5_VLConfig(
        text_config=text, vision_config=vision, image_token_id=ids["image_token_id"],
        video_token_id=ids["video_token_id"], vision_start_token_id=ids["vision_start_token_id"],
        vision_end_token_id=ids["vision_end_token_id"], vts_keep_ratio=1.0, vts_strategy=vts_strategy,
    )


def eval_prompt_record(row: dict) -> dict:
    """A training record on the evaluation prompt (`GROUNDING_EVAL_PROMPT`), answered 'X to Y seconds'."""
    start, end = row["window"]
    answer = f"{start:.1f} to {end:.1f} seconds"
    messages = build_inference_messages(row["query"])
    if QUERY_FIRST:  # the question before the video: video tokens can attend to it (causal attention)
        messages[-1]["content"] = messages[-1]["content"][::-1]
    return {"messages": [*messages,
                         {"role": "assistant", "content": [{"type": "text", "text": answer}]}], "videos": [row["video"]]}


def make_record(row: dict, template: int | str, rng: random.Random) -> dict:
    """template: an MR_TEMPLATES index, "eval" (the evaluation prompt) or "mix" (a random MR template, or the
    evaluation prompt for a third of the records)."""
    if "qa" in row:
        return qa_record(row)
    if template == "mix":
        template = "eval" if rng.random() < 1 / 3 else rng.randrange(len(MR_TEMPLATES))
    if template == "eval":
        return eval_prompt_record(row)
    return build_mr_conversation(row["query"], *row["window"], row["video"], template_index=int(template))


def freeze_vision(model, part: str) -> None:
    """Keep the vision tower at its random init: "encoder" (patch embedding + blocks; the merger/projector still
    trains) or "all" (the merger too). Trained from scratch together with the LLM, the tower collapses to an
    almost constant output (see docs/synthetic_findings.md, "What made it learn", 1)."""
    if part == "none":
        return
    visual = model.model.visual
    for name, param in visual.named_parameters():
        if part == "all" or not name.startswith("merger."):
            param.requires_grad_(False)


def encode_records(collator: GroundVTSVideoCollator, rows, template: int | str, with_answer: bool,
                   seed: int = 0) -> list[dict]:
    """One unpadded tensor dict per row (the stock collator on a one-record batch); pixels kept in fp16."""
    cached = []
    rng = random.Random(seed)
    for row in rows:
        record = make_record(row, template, rng)
        if with_answer:
            batch = collator([record])
        else:
            processor = collator.processor
            text = processor.apply_chat_template(record["messages"][:1], tokenize=False, add_generation_prompt=True)
            batch = dict(processor(text=[text], videos=record["videos"], return_tensors="pt", **collator.video_kwargs))
        item = {k: (v[0] if k in PAD_VALUES else v) for k, v in batch.items() if torch.is_tensor(v)}
        item["pixel_values_videos"] = item["pixel_values_videos"].half()  # halves memory; cast back per batch
        cached.append(item)
    return cached


def cached_encode(path: Path | None, build):
    """`build()` once, memoised on disk at `path` (torch.save) so later runs on the same data skip decoding."""
    if path is not None and path.exists():
        return torch.load(path)
    value = build()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(value, path)
    return value


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
    if "oracle" in items[0]:  # --oracle-video: the patched video features read this batch's presence labels
        ORACLE_BATCH[:] = [item["oracle"] for item in items]
    return {key: value.to(DEVICE) for key, value in batch.items()}


ORACLE_BATCH: list[torch.Tensor] = []


def _visible_per_patch(obj: dict, patches: int, seconds: float) -> torch.Tensor:
    """(patches,) bool: whether a static object (appear / disappear / no event) shows at each patch's midpoint."""
    window = obj.get("window")
    inside = torch.tensor([window is not None and window[0] <= (k + 0.5) * seconds <= window[1]
                           for k in range(patches)])
    return {"appear": inside, "disappear": ~inside}.get(obj.get("event"), torch.ones(patches, dtype=torch.bool))


def _cell_index(obj: dict, row: dict, rows: int, cols: int) -> int:
    """Index, in a patch's raster order, of the merged token whose cell holds the object's centre."""
    width, height = row["frame_size"]
    cx, cy = obj["center"]
    return int(cy * rows // height) * cols + int(cx * cols // width)


def presence_labels(row: dict, item: dict, cell_only: bool = False) -> torch.Tensor:
    """Per video token: 1 if the target is visible at its temporal patch's midpoint (2-frame patches), else 0;
    with `cell_only`, only on the merged token whose cell holds the target's centre (static targets)."""
    t, h, w = item["video_grid_thw"][0].tolist()
    target = row["sample"]["target"]
    visible = _visible_per_patch(target, t, float(item["second_per_grid_ts"][0])).long()
    per_patch = h * w // 4
    if not cell_only:
        return visible.repeat_interleave(per_patch)
    cell = torch.zeros(per_patch, dtype=torch.long)
    cell[_cell_index(target, row, h // 2, w // 2)] = 1
    return (visible[:, None] * cell[None, :]).flatten()


def cell_codes(row: dict, item: dict) -> torch.Tensor:
    """Per video token: (0, 0) for an empty cell, else (colour + 1, shape + 1) of the object whose centre is in the
    token's cell and that is visible at the patch's midpoint (static objects; appear/disappear events only)."""
    from groundvts.scripts.data.synthetic.scenes import COLORS, SHAPES

    t, h, w = item["video_grid_thw"][0].tolist()
    seconds = float(item["second_per_grid_ts"][0])
    codes = torch.zeros(t, h * w // 4, 2, dtype=torch.long)
    for obj in [row["sample"]["target"], *row["sample"]["distractors"]]:
        visible = _visible_per_patch(obj, t, seconds)
        code = torch.tensor([list(COLORS).index(obj["color"]) + 1, SHAPES.index(obj["shape"]) + 1])
        codes[visible, _cell_index(obj, row, h // 2, w // 2)] = code
    return codes.flatten(0, 1)


def tower_match(model, train, test, steps: int, lr: float, batch: int, pad: int, report) -> None:
    """Diagnostic pre-task: train only the vision tower so that each video token's output matches a fixed random
    vector for "target visible in this token's cell" / "not" (MSE); reports nearest-vector accuracy on test."""
    generator = torch.Generator().manual_seed(0)
    hidden = model.config.text_config.hidden_size
    codes = train[0]["oracle"].dim() == 2  # (colour, shape) per token instead of a visible flag
    colour_table = torch.randn(8, hidden, generator=generator).to(DEVICE)
    shape_table = torch.randn(5, hidden, generator=generator).to(DEVICE)
    table = torch.randn(2, hidden, generator=generator).to(DEVICE)

    def target_of(labels):
        return colour_table[labels[:, 0]] + shape_table[labels[:, 1]] if codes else table[labels]
    visual = model.model.visual
    optim = torch.optim.AdamW(visual.parameters(), lr=lr, betas=(0.9, 0.98), weight_decay=0.01)

    def outputs(items):
        b = pad_collate(items, pad)
        feats = torch.cat(list(model.model.get_video_features(b["pixel_values_videos"], b["video_grid_thw"]).pooler_output))
        return feats, torch.cat(ORACLE_BATCH).to(DEVICE)

    for step in range(1, steps + 1):
        feats, labels = outputs(random.sample(train, batch))
        loss = F.mse_loss(feats, target_of(labels))
        loss.backward()
        optim.step()
        optim.zero_grad(set_to_none=True)
        if step % 100 == 0 or step == steps:
            with torch.no_grad():
                feats, labels = outputs(test[:64])
                if codes:  # nearest colour code, among the tokens that hold an object
                    visible = labels[:, 0] > 0
                    nearest = torch.cdist(feats - shape_table[labels[:, 1]], colour_table).argmin(1)
                    labels = labels[:, 0]
                else:
                    nearest = torch.cdist(feats, table).argmin(1)
                    visible = labels == 1
                # acc_visible: tokens that hold the target (presence) or an object (codes: its colour code).
                report(event="tower_match", step=step, loss=round(loss.item(), 4),
                       acc=round((nearest == labels).float().mean().item(), 4),
                       acc_visible=round((nearest[visible] == labels[visible]).float().mean().item(), 4))
    ORACLE_BATCH.clear()


def use_oracle_video(model) -> torch.nn.Embedding:
    """Diagnostic: replace the vision tower's output by a learned embedding of the presence label (the LLM gets a
    perfect, trivially readable 'visible / not visible' token at the true positions). Tests the LLM's read-out alone."""
    table = torch.nn.Embedding(2, model.config.text_config.hidden_size)
    torch.nn.init.normal_(table.weight, std=1.0)

    def features(pixel_values_videos, video_grid_thw=None, **kwargs):
        return SimpleNamespace(pooler_output=tuple(table(labels.to(table.weight.device)) for labels in ORACLE_BATCH))

    model.model.get_video_features = features
    return table


def iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union > 0 else 0.0


def metrics(preds: list[tuple[float, float] | None], rows) -> dict[str, float]:
    ious = [iou(p, r["window"]) if p is not None else 0.0 for p, r in zip(preds, rows)]
    out = {f"R1@{t}": 100 * float(np.mean([x >= t for x in ious])) for t in (0.3, 0.5, 0.7)}
    out["mIoU"] = 100 * float(np.mean(ious))
    out["parsed"] = 100 * float(np.mean([p is not None for p in preds]))
    # Does the answer follow the video? Correlation of predicted and true start times (0 for a constant answer).
    pairs = np.array([(p[0], r["window"][0]) for p, r in zip(preds, rows) if p is not None])
    out["corr_start"] = float(np.corrcoef(pairs.T)[0, 1]) if len(pairs) > 2 and pairs[:, 0].std() > 0 else 0.0
    events = sorted({r.get("event") for r in rows if r.get("event")})
    if len(events) > 1:
        out["mIoU_by_event"] = {e: round(100 * float(np.mean([x for x, r in zip(ious, rows) if r["event"] == e])), 1)
                                for e in events}
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


@torch.no_grad()
def colour_eval(model, processor, prompts: list[dict], rows, batch: int = 32):
    """Colour accuracy: the greedy answer names the asked shape's true colour (and no other colour)."""
    from groundvts.scripts.data.synthetic.scenes import COLORS

    model.eval()
    tok = processor.tokenizer
    texts = []
    for start in range(0, len(prompts), batch):
        inputs = pad_collate(prompts[start : start + batch], tok.pad_token_id, side="left")
        out = model.generate(**inputs, max_new_tokens=40, do_sample=False,
                             pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
        texts += [tok.decode(seq, skip_special_tokens=True) for seq in out[:, inputs["input_ids"].shape[1]:]]
    hits = []
    for text, row in zip(texts, rows):
        gold = row["qa"][1].rstrip(".").split()[-1]
        said = text.lower().rsplit(" is ", 1)[-1].strip(" .")  # the tokenizer is char-level: a word may be cut
        named = {c for c in COLORS if said and c.startswith(said[: len(c)])}
        hits.append(named == {gold})
    predicted = [t.rstrip(".").split()[-1] if t.split() else "" for t in texts]
    model.train()
    return {"colour_acc": 100 * float(np.mean(hits)), "distinct_answers": len(set(predicted))}, texts


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
    parser.add_argument("--vts-strategy", default="dense",
                        help="dense = raw video tokens (a base model); token = learned VTS, which at keep 1.0 still"
                        " scales every token by ~1/N and passes it through the VTS MLP (the old default)")
    parser.add_argument("--rope-theta", type=float, default=1e4)
    parser.add_argument("--mrope", type=int, nargs=3, default=None, metavar=("T", "H", "W"))
    parser.add_argument("--heads", type=int, default=None)
    parser.add_argument("--template", default="0", help="MR_TEMPLATES index, 'eval' or 'mix' (training prompts)")
    parser.add_argument("--eval-template", default="0", help="MR_TEMPLATES index or 'eval' (test prompts)")
    parser.add_argument("--init", type=Path, default=None, help="start from a saved model folder (curriculum)")
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/synexp_cache"),
                        help="encoded records are memoised here per (data, split, side, fps, count, template)")
    parser.add_argument("--video-scale", type=float, default=1.0, help="multiply the merger output at init")
    parser.add_argument("--freeze-vision", choices=("none", "encoder", "all"), default="none")
    parser.add_argument("--multi-query", action="store_true",
                        help="add a grounding record per distractor event (same video, its own query and window)")
    parser.add_argument("--content-task", type=float, default=0.0,
                        help="content questions (objects / colour) per train video, mixed into training")
    parser.add_argument("--content-only", action="store_true",
                        help="train on the extra records only (diagnostic: can content pass the vision path at all?)")
    parser.add_argument("--content-kind", choices=("mixed", "colour"), default="mixed",
                        help="colour = only 'What color is the {shape}?' questions; with --content-only the test"
                        " split is then scored by colour accuracy (the colour unit test of the vision path)")
    parser.add_argument("--vision-lr-mult", type=float, default=1.0, help="lr multiplier for the vision tower")
    parser.add_argument("--patch-scale", type=float, default=1.0, help="multiply the patch embedding at init")
    parser.add_argument("--trainer", action="store_true", help="train with GroundVTSTrainer (library route)")
    parser.add_argument("--timing-only", action="store_true", help="measure data and step cost, then stop")
    parser.add_argument("--query-first", action="store_true", help="eval prompt with the text before the video")
    parser.add_argument("--synthetic-tokenizer", action="store_true", help="the synthetic benchmark's tokenizer")
    parser.add_argument("--tower-match", type=int, default=0,
                        help="diagnostic pre-task: N steps training only the tower to emit presence vectors (MSE)")
    parser.add_argument("--match-codes", action="store_true",
                        help="with --tower-match: match (colour, shape) codes of every visible object, not presence")
    parser.add_argument("--oracle-cell-only", action="store_true",
                        help="with --oracle-video: mark only the target's own token of each patch")
    parser.add_argument("--oracle-video", action="store_true",
                        help="diagnostic: video tokens = a learned embedding of 'target visible' (no vision tower)")
    args = parser.parse_args(argv)
    global QUERY_FIRST, SYNTHETIC_TOKENIZER, DEVICE
    QUERY_FIRST, SYNTHETIC_TOKENIZER = args.query_first, args.synthetic_tokenizer
    DEVICE = "cuda" if torch.cuda.is_available() else "cpu"  # the cached tensors move per batch
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
    extra_rng = random.Random(args.seed + 1)
    extra = []
    if args.multi_query:
        extra += [x for row in train_rows for x in distractor_rows(row, extra_rng)]
    if args.content_task > 0:
        whole, frac = int(args.content_task), args.content_task % 1
        extra += [content_row(row, extra_rng, args.content_kind) for row in train_rows
                  for _ in range(whole + (extra_rng.random() < frac))]
    variant = ("_mq" if args.multi_query else "") + (f"_qa{args.content_task}" if args.content_task else "")
    variant += "_colour" if args.content_kind == "colour" else ""
    colour_test = args.content_only and args.content_kind == "colour"
    test_rows = read_split(args.data, "test")[: args.num_test]
    if colour_test:  # score colour answers on held-out videos instead of grounding
        test_rows = [content_row(row, random.Random(i), "colour") for i, row in enumerate(test_rows)]
    processor = build_processor(args.side, args.fps)
    collator = GroundVTSVideoCollator(processor, {"fps": args.fps})

    # Data cost: the stock collator decoding mp4s, one batch.
    sample = [build_mr_conversation(r["query"], *r["window"], r["video"], template_index=0) for r in train_rows[:8]]
    t = time.time()
    probe = collator(sample)
    report(event="stock_collator_batch8_s", seconds=round(time.time() - t, 3),
           seq_len=int(probe["input_ids"].shape[1]), grid=probe["video_grid_thw"].tolist()[:2])

    t = time.time()
    def key(split, n, template):
        return args.cache_dir / f"{args.data.resolve().as_posix().strip('/').replace('/', '_')}_{split}_{args.side}px" \
            f"_{args.fps}fps_{n}_{template}{'_s' + str(args.seed) if template == 'mix' else ''}{'_qf' if QUERY_FIRST else ''}{'_stok' if SYNTHETIC_TOKENIZER else ''}.pt"
    train = cached_encode(key("train", len(train_rows), args.template),
                          lambda: encode_records(collator, train_rows, args.template, True, args.seed))
    if extra:
        train = (train if not args.content_only else []) + cached_encode(
            key("train", len(train_rows), args.template + variant),
            lambda: encode_records(collator, extra, args.template, True, args.seed))
    test = cached_encode(key("test", len(test_rows), "p" + args.eval_template + ("_colour" if colour_test else "")),
                         lambda: encode_records(collator, test_rows, args.eval_template, False))
    report(event="cache_built", seconds=round(time.time() - t, 1), train=len(train), test=len(test), extra=len(extra),
           mean_len=float(np.mean([x["input_ids"].shape[0] for x in train])),
           mean_video_tokens=float(np.mean([int(x["video_grid_thw"].prod()) // 4 for x in train])))

    if args.init is not None:
        model = GroundVTSQwen2_5_VLForConditionalGeneration.from_pretrained(args.init)
    else:
        config = model_config(processor, args.hidden, args.layers, args.vdepth, args.vhidden, args.rope_theta,
                              args.mrope, args.heads, args.vts_strategy)
        model = GroundVTSQwen2_5_VLForConditionalGeneration(config)
    if args.video_scale != 1.0 and args.init is None:
        # The merger's output is the video token embedding; at the default init (std 0.02) its RMS is ~0.06, and
        # the first LLM layer's attention output (a position/"clock" signal) drowns it. Scale it up at init.
        last = model.model.visual.merger.mlp[-1]
        with torch.no_grad():
            last.weight.mul_(args.video_scale)
            last.bias.mul_(args.video_scale)
    if args.patch_scale != 1.0 and args.init is None:
        with torch.no_grad():
            model.model.visual.patch_embed.proj.weight.mul_(args.patch_scale)
    freeze_vision(model, "none" if args.tower_match else args.freeze_vision)  # after the pre-task, if any
    oracle_table = None
    if args.oracle_video:
        for item, row in zip(train, train_rows):
            item["oracle"] = presence_labels(row, item, args.oracle_cell_only)
        for item, row in zip(test, test_rows):
            item["oracle"] = presence_labels(row, item, args.oracle_cell_only)
        oracle_table = use_oracle_video(model)
        model.oracle_table = oracle_table  # registered, so the optimiser and .to() see it
    model.to(DEVICE)
    if args.tower_match:
        for items, rows in ((train, train_rows), (test, test_rows)):
            for item, row in zip(items, rows):
                item["oracle"] = cell_codes(row, item) if args.match_codes else presence_labels(row, item, True)
        tower_match(model, train, test, args.tower_match, args.lr, args.batch, processor.tokenizer.pad_token_id, report)
        for items in (train, test):
            for item in items:
                del item["oracle"]
        freeze_vision(model, args.freeze_vision)
    n_params = sum(p.numel() for p in model.parameters())
    report(event="model", params=n_params, vision=sum(p.numel() for p in model.model.visual.parameters()))
    report(event="baseline", **baseline(train_rows, test_rows))
    if args.trainer:
        return train_with_trainer(args, model, processor, train_rows, test, test_rows, report)

    vision_ids = {id(p) for p in model.model.visual.parameters()}
    groups = [{"params": [p for p in model.parameters() if p.requires_grad and id(p) not in vision_ids]},
              {"params": [p for p in model.model.visual.parameters() if p.requires_grad],
               "lr": args.lr * args.vision_lr_mult}]
    optim = torch.optim.AdamW([g for g in groups if g["params"]], lr=args.lr, betas=(0.9, 0.98), weight_decay=0.01)
    warm = max(1, args.steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        optim, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / max(1, args.steps)))))
    pad = processor.tokenizer.pad_token_id
    order: list[int] = []
    losses = []
    t_train = time.time()
    model.train()
    if args.steps == 0:  # evaluate a saved model (--init) only
        scores, texts = (colour_eval if colour_test else evaluate)(model, processor, test, test_rows)
        report(event="eval", step=0, examples=texts[:4], **scores)
        return 0
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
            scores, texts = (colour_eval if colour_test else evaluate)(model, processor, test, test_rows)
            report(event="eval", step=step, eval_s=round(time.time() - t, 1), train_s=round(time.time() - t_train, 1),
                   examples=texts[:4], **scores)
    model.save_pretrained(args.out / "model")
    processor.save_pretrained(args.out / "model")
    return 0


def train_with_trainer(args, model, processor, train_rows, test, test_rows, report) -> int:
    """The library route: `GroundVTSTrainer` + `GroundVTSSFTConfig(stage=0, video_cache=True)` on a
    `datasets.Dataset` of conversation records (the collator decodes each video on its first visit)."""
    from datasets import Dataset
    from transformers import TrainerCallback

    from groundvts.trainers import GroundVTSSFTConfig, GroundVTSTrainer

    rng = random.Random(args.seed)
    dataset = Dataset.from_list([make_record(row, args.template, rng) for row in train_rows])
    config = GroundVTSSFTConfig(
        output_dir=str(args.out / "trainer"), stage=0, video_fps=args.fps, video_max_frames=128,
        video_max_pixels=args.side * args.side, video_cache=True, max_steps=args.steps,
        per_device_train_batch_size=args.batch, learning_rate=args.lr, lr_scheduler_type="cosine", warmup_steps=max(1, args.steps // 20),
        weight_decay=0.01, adam_beta2=0.98, max_grad_norm=1.0, logging_steps=25, save_strategy="no",
        report_to="none", use_cpu=True, dataloader_num_workers=0, seed=args.seed, bf16=False, fp16=False,
        gradient_checkpointing=False,
    )
    t_train = time.time()

    class Log(TrainerCallback):
        def on_log(self, _args, state, control, logs=None, **kwargs):
            report(event="trainer_log", step=state.global_step, **(logs or {}))

        def on_step_end(self, _args, state, control, **kwargs):
            step = state.global_step
            if step % args.eval_every == 0 or step == args.steps:
                t = time.time()
                scores, texts = evaluate(kwargs["model"], processor, test, test_rows)
                report(event="eval", step=step, eval_s=round(time.time() - t, 1),
                       train_s=round(time.time() - t_train, 1), examples=texts[:4], **scores)

    # Stage 0 marks every weight trainable (and asserts it), so a frozen vision tower is kept out of the optimizer
    # instead: its gradients are still computed but never applied.
    trained = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(trained, lr=args.lr, betas=(0.9, 0.98), weight_decay=0.01)
    trainer = GroundVTSTrainer(model=model, args=config, train_dataset=dataset, processing_class=processor,
                               callbacks=[Log()], optimizers=(optim, None))
    trainer.train()
    trainer.save_model(str(args.out / "model"))
    processor.save_pretrained(args.out / "model")
    return 0


if __name__ == "__main__":
    sys.exit(main())
