"""GroundVTS-Q3 (Qwen3-VL): VTS inside Qwen3-VL's per-temporal-patch blocks, with DeepStack.

Generate-level behaviour (batched == one by one, beam search, num_return_sequences, cache == no cache), the
selection's stability, `return_dict=False` and run-time settings are covered for every backbone by the parametrized
tests next to this file (`backbone` / `video_backbone` fixtures).
"""

import math

import pytest
import torch
import torch.nn.functional as F
from transformers import Qwen3VLForConditionalGeneration
from transformers.models.qwen3_vl.modeling_qwen3_vl import BaseModelOutputWithDeepstackFeatures

from groundvts.modeling.configuration_groundvts_qwen3_vl import GroundVTSQwen3VLConfig
from groundvts.modeling.modeling_groundvts_qwen3_vl import GroundVTSQwen3VLForConditionalGeneration
from tiny_models import (
    IMAGE_ID,
    PATCH_DIM,
    VIDEO_ID,
    VISION_END,
    VISION_START,
    collate_qwen3,
    qwen3_video_sample,
    spread_vts_scores,
    tiny_qwen3_config,
    vts_settings,
)

# Videos of different lengths so that rows lose different numbers of tokens.
SAMPLES = [
    dict(prefix=3, grid=(2, 4, 4), question=4, seed=0),  # 2 patches x 4 tokens
    dict(prefix=5, grid=(3, 4, 6), question=3, seed=1),  # 3 patches x 6 tokens
    dict(prefix=2, grid=(1, 6, 4), question=5, seed=2),  # 1 patch x 6 tokens
]


def batch_of(indices, padding_side="left", **kwargs):
    return collate_qwen3([qwen3_video_sample(**SAMPLES[i], **kwargs) for i in indices], padding_side)


def video_token_count(batch):
    return (batch["video_grid_thw"].prod(-1) // 4).tolist()


def language_model_calls(model, call):
    """Run `call()` and return the keyword arguments of every language-model call."""
    seen = []
    hook = model.model.language_model.register_forward_pre_hook(
        lambda module, args, kw: seen.append(kw), with_kwargs=True
    )
    try:
        with torch.no_grad():
            result = call()
    finally:
        hook.remove()
    return seen, result


def stock_copy(model):
    stock = Qwen3VLForConditionalGeneration(model.config).eval()
    missing, unexpected = stock.load_state_dict(model.state_dict(), strict=False)
    assert missing == [] and all(k.startswith("model.vts.") for k in unexpected)
    return stock


def patch_keep_counts(keep: torch.Tensor, grid) -> list[int]:
    t, h, w = grid
    return keep.view(int(t), -1).sum(1).tolist()


# --- what the language model sees --------------------------------------------------------------------------------


def test_language_model_sees_only_kept_tokens_and_every_timestamp(qwen3_model):
    batch = batch_of([0, 1])
    calls, out = language_model_calls(qwen3_model, lambda: qwen3_model(**batch, use_cache=True))
    n_video = video_token_count(batch)  # [8, 18]
    kept = [math.ceil(0.5 * n) for n in n_video]
    row_lengths = batch["attention_mask"].sum(1) - torch.tensor(n_video) + torch.tensor(kept)
    assert [c["inputs_embeds"].shape[1] for c in calls] == [int(row_lengths.max())]
    assert out.past_key_values.get_seq_length() == int(row_lengths.max())
    assert out.logits.shape[:2] == batch["input_ids"].shape
    # Timestamp text and <|vision_start|> / <|vision_end|> are never dropped: every attended non-pad token stays.
    attended = batch["attention_mask"].bool()
    not_video = attended & (batch["input_ids"] != VIDEO_ID)
    assert out.token_keep[not_video].all() and int(out.token_keep[~attended].sum()) == 0
    assert int(out.token_keep[batch["input_ids"] == VIDEO_ID].sum()) == sum(kept)


def test_kept_tokens_keep_their_qwen3_positions(qwen3_model):
    batch = batch_of([0, 1])
    with torch.no_grad():
        out = qwen3_model(**batch)
        dense, _ = qwen3_model.model.get_rope_index(
            batch["input_ids"], batch["mm_token_type_ids"], video_grid_thw=batch["video_grid_thw"],
            attention_mask=batch["attention_mask"],
        )
    mask = out.pruned_attention_mask.bool()
    for row in range(2):
        kept_dense = dense[:, row, out.token_keep[row]]
        assert torch.equal(out.pruned_position_ids[-3:, row, mask[row]], kept_dense)
    # Sanity: each temporal patch is its own block whose t id is its running text position, so dropping tokens
    # leaves gaps.
    video_t = dense[0, 1, batch["input_ids"][1] == VIDEO_ID]
    assert video_t.unique().numel() == 3


def test_without_position_encoding_positions_are_contiguous(qwen3_model):
    batch = batch_of([0, 1])
    with vts_settings(qwen3_model, vts_keep_positions=False), torch.no_grad():
        out = qwen3_model(**batch)
    mask = out.pruned_attention_mask.bool()
    for row in range(2):
        n = int(mask[row].sum())
        for axis in range(3):
            assert out.pruned_position_ids[-3:][axis, row, mask[row]].tolist() == list(range(n))


# --- equal to stock Qwen3-VL where nothing is sampled -------------------------------------------------------------


def image_and_video_row():
    """One row with an image then a two-patch video, in Qwen3-VL's layout."""
    g = torch.Generator().manual_seed(5)
    video = qwen3_video_sample(prefix=1, grid=(2, 4, 4), question=3, seed=6)
    ids = [5, VISION_START] + [IMAGE_ID] * 4 + [VISION_END] + video["input_ids"]
    ids = torch.tensor([ids])
    return dict(
        input_ids=ids, attention_mask=torch.ones_like(ids),
        mm_token_type_ids=(ids == IMAGE_ID).long() + 2 * (ids == VIDEO_ID).long(),
        pixel_values=torch.randn(16, PATCH_DIM, generator=g), image_grid_thw=torch.tensor([[1, 4, 4]]),
        pixel_values_videos=video["pixel_values_videos"], video_grid_thw=torch.tensor([video["video_grid_thw"]]),
    )


@pytest.mark.parametrize("inputs", ["text", "videos", "image_and_video"])
def test_dense_strategy_equals_stock_qwen3_vl(qwen3_model, inputs):
    stock = stock_copy(qwen3_model)
    if inputs == "text":
        batch = {"input_ids": torch.tensor([[5, 6, 7, 8, 9, 10]])}
    elif inputs == "videos":
        batch = batch_of([0, 1, 2])
        batch.pop("query_mask")
    else:
        batch = image_and_video_row()
    with vts_settings(qwen3_model, vts_strategy="dense"), torch.no_grad():
        ours = qwen3_model(**batch).logits
        theirs = stock(**batch).logits
    valid = batch.get("attention_mask", torch.ones_like(batch["input_ids"])).bool()
    assert torch.allclose(ours[valid], theirs[valid], atol=1e-5)


def test_deepstack_features_land_on_the_kept_tokens(qwen3_model):
    """Independent reference: stock Qwen3-VL given only the kept tokens (removed video pads deleted from the input),
    their features as pre-encoded vision outputs and our positions places DeepStack by its own rules. Equal logits
    mean every kept token got its own DeepStack features (a shifted gather changes them by far more than 1e-5)."""
    stock = stock_copy(qwen3_model)
    batch = image_and_video_row()
    with vts_settings(qwen3_model, vts_strategy="parameter_free"), torch.no_grad():
        out = qwen3_model(**batch, return_vts_selection=True)
        video = qwen3_model.model.get_image_features(
            batch["pixel_values_videos"], batch["video_grid_thw"], return_dict=True
        )
        image = qwen3_model.model.get_image_features(batch["pixel_values"], batch["image_grid_thw"], return_dict=True)
    keep = out.video_keep[0]
    assert 0 < int(keep.sum()) < keep.numel()
    kept_ids = batch["input_ids"][:, out.token_keep[0]]
    encoded = {
        "image": image,
        "video": BaseModelOutputWithDeepstackFeatures(
            pooler_output=(video.pooler_output[0][keep],),
            deepstack_features=[(layer[0][keep],) for layer in video.deepstack_features],
        )
    }
    assert len(encoded["video"].deepstack_features) == 2
    with torch.no_grad():
        reference = stock(
            input_ids=kept_ids, attention_mask=torch.ones_like(kept_ids), position_ids=out.pruned_position_ids[-3:],
            image_grid_thw=batch["image_grid_thw"],
            mm_token_type_ids=(kept_ids == IMAGE_ID).long() + 2 * (kept_ids == VIDEO_ID).long(),
            video_grid_thw=batch["video_grid_thw"], mm_encoder_outputs=encoded,
        ).logits
    assert torch.allclose(out.logits[:, out.token_keep[0]], reference, atol=1e-5)
    # Shifting the DeepStack rows by one token is visible: the check above can fail.
    shifted = {
        "image": image,
        "video": BaseModelOutputWithDeepstackFeatures(
            pooler_output=encoded["video"].pooler_output,
            deepstack_features=[(layer[0].roll(1, 0),) for layer in encoded["video"].deepstack_features],
        )
    }
    with torch.no_grad():
        wrong = stock(
            input_ids=kept_ids, attention_mask=torch.ones_like(kept_ids), position_ids=out.pruned_position_ids[-3:],
            image_grid_thw=batch["image_grid_thw"],
            mm_token_type_ids=(kept_ids == IMAGE_ID).long() + 2 * (kept_ids == VIDEO_ID).long(),
            video_grid_thw=batch["video_grid_thw"], mm_encoder_outputs=shifted,
        ).logits
    assert not torch.allclose(out.logits[:, out.token_keep[0]], wrong, atol=1e-4)


def test_deepstack_is_gathered_with_the_keep_mask_and_not_reweighted(qwen3_model):
    """With VTS ("token") the main features become ŵ·MLP(v); the DeepStack rows are the kept tokens' raw rows, in
    order, on the kept visual slots of the pruned (left-padded) batch."""
    batch = batch_of([0, 1])
    calls, out = language_model_calls(qwen3_model, lambda: qwen3_model(**batch, return_vts_selection=True))
    with torch.no_grad():
        video = qwen3_model.model.get_image_features(
            batch["pixel_values_videos"], batch["video_grid_thw"], return_dict=True
        )
    kept = torch.cat(out.video_keep)
    mask = calls[0]["visual_pos_masks"]
    pruned_ids = torch.full(mask.shape, -1)
    for row in range(2):
        pruned_ids[row, out.pruned_attention_mask[row].bool()] = batch["input_ids"][row, out.token_keep[row]]
    assert torch.equal(mask, pruned_ids == VIDEO_ID)
    for layer, embeds in zip(video.deepstack_features, calls[0]["deepstack_visual_embeds"]):
        assert torch.equal(embeds, torch.cat(layer)[kept])


# --- batches, generation, query ---------------------------------------------------------------------------------


@pytest.mark.parametrize("padding_side", ["left", "right"])
def test_batch_equals_one_by_one(qwen3_model, padding_side):
    batch = batch_of([0, 1, 2], padding_side)
    with torch.no_grad():
        batched = qwen3_model(**batch)
    for row in range(3):
        with torch.no_grad():
            alone = qwen3_model(**batch_of([row])).logits[0]
        valid = batch["attention_mask"][row].bool()
        kept = batched.token_keep[row][valid]
        assert torch.allclose(batched.logits[row][valid][kept], alone[kept], atol=1e-5)


def no_cache_reference(model, batch, steps):
    """Greedy decoding by re-running the whole growing sequence without a KV cache."""
    batch = dict(batch)
    logits = []
    for _ in range(steps):
        with torch.no_grad():
            out = model(**batch, use_cache=False)
        logits.append(out.logits[:, -1])
        token = out.logits[:, -1].argmax(-1, keepdim=True)
        batch["input_ids"] = torch.cat([batch["input_ids"], token], 1)
        batch["attention_mask"] = F.pad(batch["attention_mask"], (0, 1), value=1)
        for key in ("mm_token_type_ids", "query_mask"):
            batch[key] = F.pad(batch[key], (0, 1), value=0)
    return batch["input_ids"], torch.stack(logits, 1)


@pytest.mark.parametrize(
    "settings", [{}, {"vts_keep_positions": False}, {"vts_strategy": "frame"}, {"vts_min_tokens_per_frame": 0}]
)
def test_greedy_generate_with_cache_equals_no_cache_reference(qwen3_model, settings):
    batch = batch_of([0, 1, 2], "left")
    steps = 5
    with vts_settings(qwen3_model, **settings), torch.no_grad():
        generated = qwen3_model.generate(
            **batch, max_new_tokens=steps, min_new_tokens=steps, do_sample=False,
            output_logits=True, return_dict_in_generate=True,
        )
        reference_ids, reference_logits = no_cache_reference(qwen3_model, batch, steps)
    assert torch.equal(generated.sequences, reference_ids)
    assert torch.allclose(torch.stack(generated.logits, 1), reference_logits, atol=1e-4)


def scores_of(model, batch):
    with torch.no_grad():
        return model(**batch, return_vts_selection=True).video_scores


def test_query_ignores_answer_and_padding(qwen3_model):
    prompt_only = collate_qwen3([qwen3_video_sample(**SAMPLES[0])], "left", with_labels=True)
    with_answer = collate_qwen3([qwen3_video_sample(**SAMPLES[0], answer=6)], "left", with_labels=True)
    for batch in (prompt_only, with_answer):
        batch.pop("query_mask")
    reference = scores_of(qwen3_model, prompt_only)[0]
    assert torch.allclose(scores_of(qwen3_model, with_answer)[0], reference, atol=1e-6)
    with_answer.pop("labels")
    assert not torch.allclose(scores_of(qwen3_model, with_answer)[0], reference, atol=1e-4)

    padded = collate_qwen3([qwen3_video_sample(**SAMPLES[0]), qwen3_video_sample(**SAMPLES[1])], "left")
    padded.pop("query_mask")
    assert torch.allclose(scores_of(qwen3_model, padded)[0], reference, atol=1e-6)


def test_query_mask_selects_the_question(qwen3_model):
    batch = batch_of([0])
    embeds = qwen3_model.get_input_embeddings()(batch["input_ids"][0])
    query = embeds[batch["query_mask"][0].bool()].mean(0)
    with torch.no_grad():
        out = qwen3_model(**batch, return_vts_selection=True)
        video = qwen3_model.model.get_image_features(
            batch["pixel_values_videos"], batch["video_grid_thw"], return_dict=True
        ).pooler_output[0]
        expected = qwen3_model.model.vts.relevance(video, query)
    assert torch.allclose(out.video_scores[0], expected, atol=1e-6)


# --- strategies and the per-timestamp floor ---------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["token", "frame", "uniform", "random", "parameter_free", "dense"])
@pytest.mark.parametrize("keep_positions", [True, False])
def test_every_strategy_prunes_to_its_budget(qwen3_model, strategy, keep_positions):
    batch = batch_of([0, 1])
    with vts_settings(qwen3_model, vts_strategy=strategy, vts_keep_positions=keep_positions):
        calls, out = language_model_calls(qwen3_model, lambda: qwen3_model(**batch, return_vts_selection=True))
    n_video = video_token_count(batch)
    frame_sizes = [4, 6]  # merged tokens per temporal patch of samples 0 and 1
    if strategy == "dense":
        expected = n_video
    elif strategy in ("frame", "uniform"):
        expected = [math.ceil(0.5 * (n // f)) * f for n, f in zip(n_video, frame_sizes)]
    else:
        expected = [math.ceil(0.5 * n) for n in n_video]
    assert [int(k.sum()) for k in out.video_keep] == expected
    for keep, grid in zip(out.video_keep, batch["video_grid_thw"]):
        counts = patch_keep_counts(keep, grid)
        if strategy in ("frame", "uniform"):  # whole temporal patches
            assert all(c in (0, keep.numel() // int(grid[0])) for c in counts)
        else:  # the default floor: every "<t seconds>" keeps a token
            assert min(counts) >= 1
    row_lengths = batch["attention_mask"].sum(1) - torch.tensor(n_video) + torch.tensor(expected)
    assert [c["inputs_embeds"].shape[1] for c in calls] == [int(row_lengths.max())]
    assert torch.isfinite(out.logits).all()


LONG_VIDEO = dict(prefix=2, grid=(6, 4, 4), question=3, seed=3)  # 6 patches x 4 tokens


@pytest.mark.parametrize("strategy", ["token", "random", "parameter_free"])
def test_min_tokens_per_frame_keeps_every_timestamp_within_the_budget(qwen3_model, strategy):
    """At rho = 0.25 the budget is exactly one token per patch: plain top-K leaves patches empty, the floor gives
    each patch its best token (by the strategy's scores)."""
    batch = collate_qwen3([qwen3_video_sample(**LONG_VIDEO)])
    grid = LONG_VIDEO["grid"]
    with vts_settings(qwen3_model, vts_strategy=strategy, vts_keep_ratio=0.25), torch.no_grad():
        floored = qwen3_model(**batch, return_vts_selection=True)
        with vts_settings(qwen3_model, vts_min_tokens_per_frame=0):
            plain = qwen3_model(**batch, return_vts_selection=True)
    assert patch_keep_counts(floored.video_keep[0], grid) == [1] * 6
    assert int(plain.video_keep[0].sum()) == 6
    if strategy != "random":
        scores = floored.video_scores[0].view(6, -1)
        best = torch.zeros_like(scores, dtype=torch.bool).scatter(1, scores.argmax(1, keepdim=True), True)
        assert torch.equal(floored.video_keep[0], best.flatten())
        assert min(patch_keep_counts(plain.video_keep[0], grid)) == 0  # the floor changed something


def test_min_tokens_per_frame_above_the_budget_is_a_clear_error(qwen3_model):
    batch = collate_qwen3([qwen3_video_sample(**LONG_VIDEO)])
    with vts_settings(qwen3_model, vts_keep_ratio=0.1), pytest.raises(ValueError) as error, torch.no_grad():
        qwen3_model(**batch)  # K = ceil(0.1 * 24) = 3 < 6 patches
    assert "vts_min_tokens_per_frame=1" in str(error.value) and "vts_keep_ratio" in str(error.value)
    with vts_settings(qwen3_model, vts_keep_ratio=0.1, vts_min_tokens_per_frame=0), torch.no_grad():
        assert int(qwen3_model(**batch, return_vts_selection=True).video_keep[0].sum()) == 3


@pytest.mark.parametrize("value", [-1, 1.5, "1", True])
def test_invalid_min_tokens_per_frame_is_rejected_by_the_config(value):
    with pytest.raises(ValueError, match="vts_min_tokens_per_frame"):
        tiny_qwen3_config(vts_min_tokens_per_frame=value)


def test_config_defaults_and_model_type():
    config = GroundVTSQwen3VLConfig()
    assert config.model_type == "groundvts_qwen3_vl"
    assert (config.vts_reduction_dim, config.vts_keep_ratio, config.vts_min_tokens_per_frame) == (512, 0.5, 1)
    assert config.vts_strategy == "token" and config.vts_keep_positions is True
    with pytest.raises(ValueError, match="vts_strategy"):
        tiny_qwen3_config(vts_strategy="foo")


# --- training, attention backends, dtype -------------------------------------------------------------------------


def test_loss_backward_and_gradient_checkpointing():
    torch.manual_seed(0)
    model = GroundVTSQwen3VLForConditionalGeneration(tiny_qwen3_config()).train()
    batch = collate_qwen3(
        [qwen3_video_sample(**SAMPLES[0], answer=4), qwen3_video_sample(**SAMPLES[1], answer=3)], "right", True
    )
    out = model(**batch)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    assert model.model.vts.wv.weight.grad.abs().sum() > 0  # selection path (straight-through)
    assert model.model.vts.mlp[0].weight.grad.abs().sum() > 0
    assert model.model.visual.deepstack_merger_list[0].linear_fc1.weight.grad.abs().sum() > 0
    assert model.model.language_model.layers[0].self_attn.q_proj.weight.grad.abs().sum() > 0
    model.zero_grad()
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    checkpointed = model(**batch)
    assert torch.allclose(checkpointed.loss, out.loss, atol=1e-6)
    checkpointed.loss.backward()
    assert model.model.vts.wv.weight.grad.abs().sum() > 0


def test_eager_and_sdpa_agree(qwen3_model):
    batch = batch_of([0, 1], "left")
    with torch.no_grad():
        sdpa = qwen3_model(**batch).logits
        qwen3_model.set_attn_implementation("eager")
        try:
            eager = qwen3_model(**batch).logits
        finally:
            qwen3_model.set_attn_implementation("sdpa")
    valid = batch["attention_mask"].bool()
    assert torch.allclose(sdpa[valid], eager[valid], atol=1e-5)


def test_bfloat16_forward_and_generate():
    torch.manual_seed(0)
    model = GroundVTSQwen3VLForConditionalGeneration(tiny_qwen3_config()).eval().to(torch.bfloat16)
    spread_vts_scores(model)
    batch = batch_of([0, 1], "left")
    batch["pixel_values_videos"] = batch["pixel_values_videos"].to(torch.bfloat16)
    with torch.no_grad():
        out = model(**batch)
        generated = model.generate(**batch, max_new_tokens=3, do_sample=False)
    assert out.logits.dtype == torch.bfloat16 and torch.isfinite(out.logits.float()).all()
    assert generated.shape == (2, batch["input_ids"].shape[1] + 3)


def test_inputs_embeds_with_mm_token_type_ids_equal_input_ids(qwen3_model):
    batch = batch_of([0, 1])
    with torch.no_grad():
        expected = qwen3_model(**batch, return_vts_selection=True)
        embeds = qwen3_model.get_input_embeddings()(batch["input_ids"])
        ours = qwen3_model(**{k: v for k, v in batch.items() if k != "input_ids"}, inputs_embeds=embeds,
                           return_vts_selection=True)
    assert all(torch.equal(a, b) for a, b in zip(ours.video_keep, expected.video_keep))
    valid = batch["attention_mask"].bool()
    assert torch.allclose(ours.logits[valid], expected.logits[valid], atol=1e-5)
