"""`generate` with `num_beams > 1` or `num_return_sequences > 1` on video inputs, for both backbones.

generate repeats every model input along dim 0, which is right for (batch, ...) tensors but wrong for the
per-patch / per-frame pixels and the per-video grids, fps and frame counts: each beam or returned sequence
must see its own sample's whole video, exactly as if the sample had been duplicated by hand.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tiny_models import (
    IMAGE_ID,
    PAD,
    PATCH_DIM,
    VIDEO_ID,
    VISION_END,
    VISION_START,
    TIMESTAMP_TOKENS,
    collate_internvl,
    internvl_sample,
)


# --- Qwen samples with any number of images and videos per row -------------------------------------------------


def qwen_row(parts: list[tuple], question: int, seed: int, per_patch_blocks: bool = False) -> dict:
    """One row `text (<vs> visual tokens <ve> text)* question`; parts are ("video"|"image", grid, fps).
    `per_patch_blocks`: Qwen3-VL's video layout, `(<t> <vs> patch tokens <ve>)*` per temporal patch."""
    g = torch.Generator().manual_seed(seed)
    text = lambda n: torch.randint(3, 90, (n,), generator=g).tolist()
    row = {"input_ids": text(2), "types": [], "videos": [], "images": []}
    for kind, (t, h, w), seconds_per_grid in parts:
        pixels = torch.randn(t * h * w, PATCH_DIM, generator=g)
        token, token_type = (VIDEO_ID, 2) if kind == "video" else (IMAGE_ID, 1)
        if per_patch_blocks and kind == "video":
            for _ in range(t):
                row["input_ids"] += text(TIMESTAMP_TOKENS) + [VISION_START] + [token] * (h * w // 4) + [VISION_END]
            row["input_ids"] += text(1)
        else:
            row["input_ids"] += [VISION_START] + [token] * (t * h * w // 4) + [VISION_END] + text(1)
        row["videos" if kind == "video" else "images"].append((pixels, [t, h, w], seconds_per_grid))
    row["query_mask"] = [0] * len(row["input_ids"]) + [1] * question
    row["input_ids"] += text(question)
    return row


def collate_qwen(rows: list[dict]) -> dict:
    """Left-padded model inputs; per-video and per-patch inputs in order of appearance, row by row."""
    length = max(len(r["input_ids"]) for r in rows)
    pad = lambda values, fill: F.pad(torch.tensor(values), (length - len(values), 0), value=fill)
    ids = torch.stack([pad(r["input_ids"], PAD) for r in rows])
    batch = {
        "input_ids": ids,
        "attention_mask": torch.stack([pad([1] * len(r["input_ids"]), 0) for r in rows]),
        "query_mask": torch.stack([pad(r["query_mask"], 0) for r in rows]),
        "mm_token_type_ids": (ids == VIDEO_ID).long() * 2 + (ids == IMAGE_ID).long(),
    }
    videos = [v for r in rows for v in r["videos"]]
    images = [i for r in rows for i in r["images"]]
    if videos:
        batch["pixel_values_videos"] = torch.cat([v[0] for v in videos])
        batch["video_grid_thw"] = torch.tensor([v[1] for v in videos])
        batch["second_per_grid_ts"] = torch.tensor([v[2] for v in videos])
    if images:
        batch["pixel_values"] = torch.cat([i[0] for i in images])
        batch["image_grid_thw"] = torch.tensor([i[1] for i in images])
    return batch


QWEN_ROWS = {
    "short": dict(parts=[("video", (2, 4, 4), 1.0)], question=4, seed=0),  # 8 video tokens
    "long": dict(parts=[("video", (3, 4, 6), 0.5)], question=3, seed=1),  # 18 video tokens
    "two_videos_and_image": dict(
        parts=[("video", (1, 4, 4), 1.0), ("image", (1, 4, 4), 1.0), ("video", (2, 4, 6), 0.5)], question=3, seed=2
    ),
}


def qwen_batch(names: list[str]) -> dict:
    return collate_qwen([qwen_row(**QWEN_ROWS[n]) for n in names])


def qwen3_batch(names: list[str]) -> dict:
    """The same rows in Qwen3-VL's layout (time is text there: no `second_per_grid_ts`)."""
    batch = collate_qwen([qwen_row(**QWEN_ROWS[n], per_patch_blocks=True) for n in names])
    batch.pop("second_per_grid_ts", None)
    return batch


# --- InternVL samples: videos of different lengths, a still image, two videos in one row --------------------------


def internvl_row(name: str) -> dict:
    if name == "short":
        return internvl_sample(prefix=3, frames=2, question=4, seed=0)
    if name == "long":
        return internvl_sample(prefix=1, frames=4, question=3, seed=1)
    # Two videos and a still image in one row: the image and the first video, then a second video.
    first = internvl_sample(prefix=2, frames=1, question=0, seed=2, image=True)
    second = internvl_sample(prefix=1, frames=3, question=3, seed=3)
    return {
        "input_ids": first["input_ids"] + second["input_ids"],
        "mm_token_type_ids": first["mm_token_type_ids"] + second["mm_token_type_ids"],
        "query_mask": [0] * len(first["input_ids"]) + second["query_mask"],
        "labels": first["labels"] + second["labels"],
        "pixel_values": torch.cat([first["pixel_values"], second["pixel_values"]]),
        "video_num_frames": first["video_num_frames"] + second["video_num_frames"],
    }


def internvl_batch(names: list[str]) -> dict:
    return collate_internvl([internvl_row(n) for n in names], "left")


@pytest.fixture(params=["qwen", "qwen3", "internvl"])
def backbone(request, qwen_model, qwen3_model, internvl_model):
    """(model, batch builder) of one backbone."""
    if request.param == "qwen":
        return qwen_model, qwen_batch
    if request.param == "qwen3":
        return qwen3_model, qwen3_batch
    return internvl_model, internvl_batch


# --- the expansion itself ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("names", [["short", "long"], ["two_videos_and_image", "short"], ["long"]])
@pytest.mark.parametrize("expand_size", [2, 3])
def test_expansion_equals_duplicating_each_sample(backbone, names, expand_size):
    model, make_batch = backbone
    batch = make_batch(names)
    input_ids, expanded = model._expand_inputs_for_generation(
        expand_size=expand_size, input_ids=batch["input_ids"], **{k: v for k, v in batch.items() if k != "input_ids"}
    )
    expected = make_batch([n for n in names for _ in range(expand_size)])
    assert torch.equal(input_ids, expected["input_ids"])
    assert set(expanded) == set(expected) - {"input_ids"}
    for key, value in expected.items():
        if key != "input_ids":
            assert torch.equal(expanded[key], value), key


def test_expansion_accepts_video_num_frames_as_a_list(internvl_model):
    batch = internvl_batch(["short", "two_videos_and_image"])
    batch["video_num_frames"] = batch["video_num_frames"].tolist()
    _, expanded = internvl_model._expand_inputs_for_generation(
        expand_size=2, input_ids=batch["input_ids"], **{k: v for k, v in batch.items() if k != "input_ids"}
    )
    assert list(expanded["video_num_frames"]) == [2, 2, 1, 3, 1, 3]


def test_expansion_with_mismatched_visual_inputs_raises_a_clear_error(backbone):
    model, make_batch = backbone
    batch = make_batch(["short", "long"])
    key = "video_grid_thw" if "video_grid_thw" in batch else "video_num_frames"
    batch[key] = batch[key][:1]
    with pytest.raises(ValueError, match=key):
        model._expand_inputs_for_generation(
            expand_size=2, input_ids=batch["input_ids"], **{k: v for k, v in batch.items() if k != "input_ids"}
        )


# --- generate ----------------------------------------------------------------------------------------------------


def generate(model, batch, **kwargs):
    with torch.no_grad():
        return model.generate(
            **batch, max_new_tokens=4, min_new_tokens=4, output_logits=True, output_scores=True, return_dict_in_generate=True,
            **kwargs,
        )


def language_model_inputs(model, call):
    """Run `call()` and return the embeddings of the first (prefill) language-model call."""
    seen = []
    hook = model.model.language_model.register_forward_pre_hook(
        lambda module, args, kw: seen.append(kw["inputs_embeds"]), with_kwargs=True
    )
    try:
        call()
    finally:
        hook.remove()
    return seen[0]


@pytest.mark.parametrize("kwargs", [dict(num_beams=2), dict(do_sample=True, num_return_sequences=3)])
def test_every_beam_prefills_its_own_sample(backbone, kwargs):
    """The sensitive check: what the LLM receives at prefill, per beam, equals the single forward's row."""
    model, make_batch = backbone
    batch = make_batch(["two_videos_and_image", "long"])
    with torch.no_grad():
        reference = language_model_inputs(model, lambda: model(**batch, use_cache=True))
    expanded = language_model_inputs(model, lambda: generate(model, batch, **kwargs))
    copies = kwargs.get("num_beams", kwargs.get("num_return_sequences"))
    assert torch.allclose(expanded, reference.repeat_interleave(copies, 0), atol=1e-6)


@pytest.mark.parametrize("use_cache", [True, False])
def test_beam_search_batch_equals_each_sample_alone(backbone, use_cache):
    model, make_batch = backbone
    names = ["short", "two_videos_and_image"]
    batched = generate(model, make_batch(names), num_beams=3, num_return_sequences=2, use_cache=use_cache)
    prompt_length = make_batch(names)["input_ids"].shape[1]
    assert batched.sequences.shape == (4, prompt_length + 4)
    for row, name in enumerate(names):
        single = make_batch([name])
        alone = generate(model, single, num_beams=3, num_return_sequences=2, use_cache=use_cache)
        new_tokens = batched.sequences[2 * row : 2 * row + 2, prompt_length:]
        assert torch.equal(new_tokens, alone.sequences[:, single["input_ids"].shape[1] :])
        assert torch.allclose(batched.sequences_scores[2 * row : 2 * row + 2], alone.sequences_scores, atol=1e-4)


def test_beam_search_with_cache_equals_without(backbone):
    model, make_batch = backbone
    batch = make_batch(["short", "long"])
    cached, uncached = generate(model, batch, num_beams=2), generate(model, batch, num_beams=2, use_cache=False)
    assert torch.equal(cached.sequences, uncached.sequences)
    assert torch.allclose(cached.sequences_scores, uncached.sequences_scores, atol=1e-4)


def test_seeded_sampling_equals_duplicating_the_samples_by_hand(backbone):
    model, make_batch = backbone
    names = ["long", "short"]
    torch.manual_seed(7)
    expanded = generate(model, make_batch(names), do_sample=True, num_return_sequences=2)
    torch.manual_seed(7)
    by_hand = generate(model, make_batch([n for n in names for _ in range(2)]), do_sample=True)
    assert torch.equal(expanded.sequences, by_hand.sequences)
    assert torch.allclose(torch.stack(expanded.logits, 1), torch.stack(by_hand.logits, 1), atol=1e-5)


@pytest.mark.parametrize("use_cache", [True, False])
def test_greedy_equivalent_return_sequences_repeat_the_greedy_output(backbone, use_cache):
    """top_k=1 sampling is greedy: each of the 2 returned sequences of each sample equals its greedy output."""
    model, make_batch = backbone
    batch = make_batch(["short", "two_videos_and_image"])  # different-length videos
    greedy = generate(model, batch, do_sample=False, use_cache=use_cache)
    returned = generate(model, batch, do_sample=True, top_k=1, num_return_sequences=2, use_cache=use_cache)
    assert returned.sequences.shape == (4, batch["input_ids"].shape[1] + 4)
    assert torch.equal(returned.sequences, greedy.sequences.repeat_interleave(2, 0))
    assert torch.allclose(
        torch.stack(returned.logits, 1), torch.stack(greedy.logits, 1).repeat_interleave(2, 0), atol=1e-5
    )


def test_greedy_without_cache_equals_cached(backbone):
    """Without a cache every step re-runs the whole prompt: the query mask must grow with the sequence and the
    pruned layout of the prefill must not leak into the next step."""
    model, make_batch = backbone
    batch = make_batch(["short", "two_videos_and_image"])
    cached, uncached = generate(model, batch, do_sample=False), generate(model, batch, do_sample=False, use_cache=False)
    assert torch.equal(cached.sequences, uncached.sequences)
    assert torch.allclose(torch.stack(cached.logits, 1), torch.stack(uncached.logits, 1), atol=1e-4)
