"""The query-agnostic baselines `temporal_redundancy` (EVS-style) and `centre_distance` (VidCom²-style): the rule
itself on hand-made videos, then through both backbones (budget, per-frame guarantees, determinism, cached
generation against the no-cache reference, batch against one-by-one)."""

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from groundvts.modeling.vts import (
    CENTRE_DISTANCE_TEMPERATURE,
    VTS_STRATEGIES,
    VisualTokenSampler,
    centre_distance_keep,
    temporal_redundancy_keep,
    validate_vts_config,
)
from tiny_models import INTERNVL_FRAME_TOKENS, collate, collate_internvl, internvl_sample, video_sample, vts_settings

STRATEGIES = ["temporal_redundancy", "centre_distance"]
D = 8
# Videos of different lengths (rows lose different numbers of tokens and need left padding); one InternVL row also
# has a still image, never sampled.
QWEN_ROWS = [
    dict(prefix=3, grid=(4, 4, 4), question=4, seed=0),  # 4 frames of 4 tokens
    dict(prefix=5, grid=(3, 4, 6), question=3, seed=1),  # 3 frames of 6 tokens
    dict(prefix=2, grid=(1, 6, 4), question=5, seed=2),  # 1 frame of 6 tokens
]
INTERNVL_ROWS = [
    dict(prefix=3, frames=4, question=4, seed=0),
    dict(prefix=5, frames=6, question=3, seed=1),
    dict(prefix=2, frames=1, question=5, seed=2, image=True),
]


def sampler_config(strategy: str, rho: float = 0.5) -> SimpleNamespace:
    return SimpleNamespace(
        vts_reduction_dim=4, vts_keep_ratio=rho, vts_temperature=1.0, vts_gumbel_temperature=1.0,
        vts_weight_temperature=1.0, vts_strategy=strategy, vts_train_selection="gumbel",
        vts_keep_positions=True, vts_query_pooling="query_mask",
    )


def random_video(frames: int, frame_size: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(frames * frame_size, D, generator=torch.Generator().manual_seed(seed))


# --- the rules ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_validation_accepts_the_new_strategies(strategy):
    assert strategy in VTS_STRATEGIES
    validate_vts_config(sampler_config(strategy))


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("frames, frame_size", [(6, 4), (5, 9), (1, 6), (12, 2)])
@pytest.mark.parametrize("rho", [1.0, 0.5, 0.25, 0.125, 0.05])
def test_exactly_k_tokens_per_video(strategy, frames, frame_size, rho):
    sampler = VisualTokenSampler(sampler_config(strategy, rho), D).eval()
    video = random_video(frames, frame_size)
    (selection,) = sampler([video], torch.randn(1, D), [frame_size])
    assert int(selection.keep.sum()) == math.ceil(rho * frames * frame_size - 1e-9)
    # Query-agnostic rules: the kept tokens reach the LLM unchanged, no relevance score is reported.
    assert torch.equal(selection.embeds, video[selection.keep]) and selection.scores is None


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_the_question_does_not_change_the_selection_and_repeats_are_identical(strategy):
    sampler = VisualTokenSampler(sampler_config(strategy, 0.25), D).eval()
    video = random_video(8, 4)
    first = sampler([video], torch.randn(1, D), [4])[0].keep
    assert torch.equal(first, sampler([video], torch.randn(1, D), [4])[0].keep)
    assert torch.equal(first, sampler([video.clone()], torch.zeros(1, D), [4])[0].keep)


def test_temporal_redundancy_is_the_global_top_k_of_the_change_from_the_previous_frame():
    video = random_video(6, 4, seed=3)
    frames = video.view(6, 4, D)
    dissimilarity = 1 - F.cosine_similarity(frames[1:], frames[:-1], dim=-1)  # frames 1..5
    keep = temporal_redundancy_keep(video, 4, 0.5)  # K = 12: the first frame (4) + the 8 largest changes
    assert keep.view(6, 4)[0].all()
    expected = set((torch.topk(dissimilarity.flatten(), 8).indices + 4).tolist())
    assert set(keep.nonzero().flatten().tolist()) - {0, 1, 2, 3} == expected


def test_temporal_redundancy_keeps_the_patch_that_moves_in_a_static_video():
    frame = torch.randn(4, D, generator=torch.Generator().manual_seed(0))
    frames = frame.repeat(5, 1, 1)
    frames[3, 2] = -frames[3, 2]  # patch 2 changes in frame 3 (and back in frame 4)
    keep = temporal_redundancy_keep(frames.flatten(0, 1), 4, 0.3)  # K = 6: first frame + both changes
    assert keep.view(5, 4).nonzero().tolist() == [[0, 0], [0, 1], [0, 2], [0, 3], [3, 2], [4, 2]]


def test_temporal_redundancy_fills_a_budget_below_one_frame_from_the_first_frame():
    keep = temporal_redundancy_keep(random_video(4, 8), 8, 0.125)  # K = 4 < 8 tokens per frame
    assert keep.nonzero().flatten().tolist() == [0, 1, 2, 3]


def test_centre_distance_keeps_at_least_one_token_per_frame_and_favours_the_unique_frame():
    base = torch.randn(4, D, generator=torch.Generator().manual_seed(1))
    frames = base.repeat(6, 1, 1) + 0.01 * torch.randn(6, 4, D, generator=torch.Generator().manual_seed(2))
    frames[4] = torch.randn(4, D, generator=torch.Generator().manual_seed(3))  # the one frame unlike the others
    per_frame = centre_distance_keep(frames.flatten(0, 1), 4, 0.5).view(6, 4).sum(1)  # K = 12
    assert int(per_frame.sum()) == 12 and bool((per_frame >= 1).all())
    # Softmax share of frame 4 ~ 1, so it targets rho * 4 * (1 + 1 - 1/6) = 3.67 tokens, the others 1.67.
    assert int(per_frame[4]) >= 3 and int(per_frame[4]) > int(per_frame[[0, 1, 2, 3, 5]].max())


def test_centre_distance_keeps_the_tokens_farthest_from_both_centres_of_each_frame():
    video = random_video(5, 6, seed=4)
    frames = video.view(5, 6, D)
    from_video = 1 - F.cosine_similarity(frames, frames.mean((0, 1)), dim=-1)
    scores = from_video + 1 - F.cosine_similarity(frames, frames.mean(1, keepdim=True), dim=-1)
    keep = centre_distance_keep(video, 6, 0.5).view(5, 6)  # K = 15
    budgets = keep.sum(1)
    for frame, count in enumerate(budgets.tolist()):
        assert set(keep[frame].nonzero().flatten().tolist()) == set(torch.topk(scores[frame], count).indices.tolist())
    # The budget follows the softmax share 1 + softmax(u / T) - 1/F: the most unique frame never gets fewer tokens.
    share = 1 + torch.softmax(from_video.mean(1) / CENTRE_DISTANCE_TEMPERATURE, 0) - 1 / 5
    assert int(budgets[share.argmax()]) == int(budgets.max())


def test_centre_distance_below_one_token_per_frame_keeps_one_in_the_most_unique_frames():
    keep = centre_distance_keep(random_video(8, 4), 4, 0.125).view(8, 4)  # K = 4 < 8 frames
    assert int(keep.sum()) == 4 and set(keep.sum(1).tolist()) <= {0, 1}


# --- through both backbones ----------------------------------------------------------------------------------


@pytest.fixture(params=["qwen", "internvl"])
def backbone(request, qwen_model, internvl_model):
    """(model, rows, batch builder, tokens per frame of each row's video)."""
    if request.param == "qwen":
        frame_sizes = [h * w // 4 for _, h, w in (row["grid"] for row in QWEN_ROWS)]
        return qwen_model, QWEN_ROWS, lambda rows: collate([video_sample(**r) for r in rows], "left"), frame_sizes
    frame_sizes = [INTERNVL_FRAME_TOKENS] * len(INTERNVL_ROWS)
    build = lambda rows: collate_internvl([internvl_sample(**r) for r in rows], "left")  # noqa: E731
    return internvl_model, INTERNVL_ROWS, build, frame_sizes


def video_keeps(model, batch) -> tuple:
    with torch.no_grad():
        out = model(**batch, return_vts_selection=True)
    return out.video_keep, out


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("rho", [0.5, 0.25])
def test_backbone_keeps_the_budget_and_the_per_frame_guarantee(backbone, strategy, rho):
    model, rows, build, frame_sizes = backbone
    with vts_settings(model, vts_strategy=strategy, vts_keep_ratio=rho):
        keeps, out = video_keeps(model, build(rows))
        again, _ = video_keeps(model, build(rows))
    assert torch.isfinite(out.logits).all()
    for keep, repeat, frame_size in zip(keeps, again, frame_sizes, strict=True):
        k = math.ceil(rho * keep.numel())
        assert int(keep.sum()) == k and torch.equal(keep, repeat)
        per_frame = keep.view(-1, frame_size)
        if strategy == "temporal_redundancy" and k >= frame_size:
            assert per_frame[0].all()
        if strategy == "centre_distance" and k >= per_frame.shape[0]:
            assert bool((per_frame.sum(1) >= 1).all())


def grow(batch: dict, token: torch.Tensor) -> dict:
    batch = dict(batch, input_ids=torch.cat([batch["input_ids"], token], 1))
    batch["attention_mask"] = F.pad(batch["attention_mask"], (0, 1), value=1)
    for key in ("mm_token_type_ids", "query_mask"):
        batch[key] = F.pad(batch[key], (0, 1), value=0)
    return batch


def no_cache_reference(model, batch: dict, steps: int):
    """Greedy decoding by re-running the whole growing sequence without a KV cache or given positions."""
    logits = []
    for _ in range(steps):
        with torch.no_grad():
            step = model(**batch, use_cache=False).logits[:, -1]
        logits.append(step)
        batch = grow(batch, step.argmax(-1, keepdim=True))
    return batch["input_ids"], torch.stack(logits, 1)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_cached_greedy_generate_equals_the_no_cache_reference(backbone, strategy):
    model, rows, build, _ = backbone
    batch, steps = build(rows), 4
    with vts_settings(model, vts_strategy=strategy), torch.no_grad():
        generated = model.generate(
            **batch, max_new_tokens=steps, min_new_tokens=steps, do_sample=False,
            output_logits=True, return_dict_in_generate=True,
        )
        reference_ids, reference_logits = no_cache_reference(model, batch, steps)
    assert generated.past_key_values.get_seq_length() < batch["input_ids"].shape[1]  # the prefill was pruned
    assert torch.equal(generated.sequences, reference_ids)
    assert torch.allclose(torch.stack(generated.logits, 1), reference_logits, atol=1e-4)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_batch_equals_one_by_one(backbone, strategy):
    model, rows, build, _ = backbone
    batch = build(rows)
    with vts_settings(model, vts_strategy=strategy), torch.no_grad():
        batched = model(**batch, return_vts_selection=True)
        for index, row in enumerate(rows):
            alone = model(**build([row]), return_vts_selection=True)
            assert torch.equal(alone.video_keep[0], batched.video_keep[index])
            valid = batch["attention_mask"][index].bool()
            kept = batched.token_keep[index][valid]
            assert torch.allclose(batched.logits[index][valid][kept], alone.logits[0][kept], atol=1e-5)
