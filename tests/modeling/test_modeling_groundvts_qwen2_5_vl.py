import math

import pytest
import torch
import torch.nn.functional as F
from transformers import Qwen2_5_VLForConditionalGeneration

from groundvts.modeling.modeling_groundvts_qwen2_5_vl import GroundVTSQwen2_5_VLForConditionalGeneration
from tiny_models import (
    VIDEO_ID,
    collate,
    tiny_qwen_config,
    video_sample,
    video_token_count,
    vts_settings,
)

# Videos of different lengths so that rows lose different numbers of tokens.
SAMPLES = [
    dict(prefix=3, grid=(2, 4, 4), question=4, seed=0),  # 8 video tokens
    dict(prefix=5, grid=(3, 4, 6), question=3, seed=1),  # 18 video tokens
    dict(prefix=2, grid=(1, 6, 4), question=5, seed=2),  # 6 video tokens
]


def batch_of(indices, padding_side="left", **kwargs):
    return collate([video_sample(**SAMPLES[i], **kwargs) for i in indices], padding_side)


def llm_input_lengths(model, batch, **kwargs):
    """Run a forward and record the sequence length the language model actually received."""
    seen = []
    hook = model.model.language_model.register_forward_pre_hook(
        lambda module, args, kw: seen.append(kw["inputs_embeds"].shape[1]), with_kwargs=True
    )
    try:
        with torch.no_grad():
            out = model(**batch, use_cache=True, **kwargs)
    finally:
        hook.remove()
    return seen, out


def test_language_model_sees_only_kept_tokens(qwen_model):
    batch = batch_of([0, 1])
    seen, out = llm_input_lengths(qwen_model, batch)
    n_video = video_token_count(batch)  # [8, 18]
    dropped = [n - math.ceil(0.5 * n) for n in n_video]  # [4, 9]
    row_lengths = batch["attention_mask"].sum(1) - torch.tensor(dropped)
    assert seen == [int(row_lengths.max())] < [batch["input_ids"].shape[1]]
    assert out.past_key_values.get_seq_length() == seen[0]
    assert out.token_keep[batch["input_ids"] == VIDEO_ID].sum() == sum(math.ceil(0.5 * n) for n in n_video)
    assert out.logits.shape[:2] == batch["input_ids"].shape  # logits still line up with input_ids


def test_kept_tokens_keep_dense_positions(qwen_model):
    batch = batch_of([0, 1])
    with torch.no_grad():
        out = qwen_model(**batch)
        dense, _ = qwen_model.model.get_rope_index(
            batch["input_ids"], batch["mm_token_type_ids"], video_grid_thw=batch["video_grid_thw"],
            second_per_grid_ts=batch["second_per_grid_ts"], attention_mask=batch["attention_mask"],
        )
    mask = out.pruned_attention_mask.bool()
    for row in range(2):
        kept_dense = dense[:, row, out.token_keep[row] & batch["attention_mask"][row].bool()]
        assert torch.equal(out.pruned_position_ids[-3:, row, mask[row]], kept_dense)
    # Sanity: positions really have gaps (a dropped video token is missing on some axis).
    video_t = dense[0, 1, (batch["input_ids"][1] == VIDEO_ID)]
    assert video_t.unique().numel() == 3 and video_t.max() - video_t.min() == 4  # 1 s per grid, 2 tokens/s


def test_without_position_encoding_positions_are_contiguous(qwen_model):
    batch = batch_of([0, 1])
    with vts_settings(qwen_model, vts_keep_positions=False), torch.no_grad():
        out = qwen_model(**batch)
    mask = out.pruned_attention_mask.bool()
    for row in range(2):
        n = int(mask[row].sum())
        for axis in range(3):
            assert out.pruned_position_ids[-3:][axis, row, mask[row]].tolist() == list(range(n))


def stock_copy(model):
    stock = Qwen2_5_VLForConditionalGeneration(model.config).eval()
    missing, unexpected = stock.load_state_dict(model.state_dict(), strict=False)
    assert missing == [] and all(k.startswith("model.vts.") for k in unexpected)
    return stock


def test_text_only_and_image_rows_pass_through_unchanged(qwen_model):
    stock = stock_copy(qwen_model)
    ids = torch.tensor([[5, 6, 7, 8, 9, 10]])
    with torch.no_grad():
        assert torch.allclose(qwen_model(input_ids=ids).logits, stock(input_ids=ids).logits, atol=1e-6)
    # An image (not a video) is never sampled: identical to stock Qwen2.5-VL.
    from tiny_models import IMAGE_ID, PATCH_DIM, VISION_END, VISION_START

    ids = torch.tensor([[5, VISION_START] + [IMAGE_ID] * 4 + [VISION_END, 7, 8]])
    image = dict(
        input_ids=ids, attention_mask=torch.ones_like(ids), mm_token_type_ids=(ids == IMAGE_ID).long(),
        pixel_values=torch.randn(16, PATCH_DIM), image_grid_thw=torch.tensor([[1, 4, 4]]),
    )
    with torch.no_grad():
        assert torch.allclose(qwen_model(**image).logits, stock(**image).logits, atol=1e-6)


def test_dense_strategy_equals_stock_qwen_where_the_position_rules_agree(qwen_model):
    """At 0.5 s per grid (one temporal id per grid) these videos end no later in time than in space, so the
    pretrained position rule and stock 5.23's agree, and "dense" is exactly stock Qwen2.5-VL."""
    stock = stock_copy(qwen_model)
    batch = batch_of([0, 1])
    batch.pop("query_mask")
    batch["second_per_grid_ts"] = torch.tensor([0.5, 0.5])
    with vts_settings(qwen_model, vts_strategy="dense"), torch.no_grad():
        ours = qwen_model(**batch).logits
        theirs = stock(**batch).logits
    valid = batch["attention_mask"].bool()
    assert torch.allclose(ours[valid], theirs[valid], atol=1e-5)


def test_dense_strategy_equals_stock_qwen_given_the_pretrained_positions(qwen_model):
    """Where the rules differ (1 s per grid: the video lasts longer in time than in space), "dense" differs from
    stock 5.23 only by the positions: stock given our positions gives our logits."""
    stock = stock_copy(qwen_model)
    batch = batch_of([0, 1])
    batch.pop("query_mask")
    rope_args = dict(video_grid_thw=batch["video_grid_thw"], second_per_grid_ts=batch["second_per_grid_ts"],
                     attention_mask=batch["attention_mask"])
    ours_positions, _ = qwen_model.model.get_rope_index(batch["input_ids"], batch["mm_token_type_ids"], **rope_args)
    stock_positions, _ = stock.model.get_rope_index(batch["input_ids"], batch["mm_token_type_ids"], **rope_args)
    assert not torch.equal(ours_positions, stock_positions)
    with vts_settings(qwen_model, vts_strategy="dense"), torch.no_grad():
        ours = qwen_model(**batch).logits
        theirs = stock(**batch, position_ids=ours_positions).logits
    valid = batch["attention_mask"].bool()
    assert torch.allclose(ours[valid], theirs[valid], atol=1e-5)


@pytest.mark.parametrize("padding_side", ["left", "right"])
def test_batch_equals_one_by_one(qwen_model, padding_side):
    batch = batch_of([0, 1, 2], padding_side)
    with torch.no_grad():
        batched = qwen_model(**batch)
    for row in range(3):
        single = batch_of([row])
        with torch.no_grad():
            alone = qwen_model(**single).logits[0]
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
        for key in ("attention_mask",):
            batch[key] = F.pad(batch[key], (0, 1), value=1)
        for key in ("mm_token_type_ids", "query_mask"):
            batch[key] = F.pad(batch[key], (0, 1), value=0)
    return batch["input_ids"], torch.stack(logits, 1)


@pytest.mark.parametrize("settings", [{}, {"vts_keep_positions": False}, {"vts_strategy": "frame"}])
def test_greedy_generate_with_cache_equals_no_cache_reference(qwen_model, settings):
    batch = batch_of([0, 1, 2], "left")
    steps = 5
    with vts_settings(qwen_model, **settings), torch.no_grad():
        generated = qwen_model.generate(
            **batch, max_new_tokens=steps, min_new_tokens=steps, do_sample=False,
            output_logits=True, return_dict_in_generate=True,
        )
        reference_ids, reference_logits = no_cache_reference(qwen_model, batch, steps)
    assert torch.equal(generated.sequences, reference_ids)
    assert torch.allclose(torch.stack(generated.logits, 1), reference_logits, atol=1e-4)


def scores_of(model, batch):
    with torch.no_grad():
        return model(**batch, return_vts_selection=True).video_scores


def test_query_ignores_answer_and_padding(qwen_model):
    prompt_only = collate([video_sample(**SAMPLES[0])], "left", with_labels=True)
    with_answer = collate([video_sample(**SAMPLES[0], answer=6)], "left", with_labels=True)
    # Compare the default pooling without a query mask: every prompt token is the query.
    for batch in (prompt_only, with_answer):
        batch.pop("query_mask")
    reference = scores_of(qwen_model, prompt_only)[0]
    assert torch.allclose(scores_of(qwen_model, with_answer)[0], reference, atol=1e-6)
    # Without labels the answer tokens would be part of the prompt and change the query.
    with_answer.pop("labels")
    assert not torch.allclose(scores_of(qwen_model, with_answer)[0], reference, atol=1e-4)

    padded = collate([video_sample(**SAMPLES[0]), video_sample(**SAMPLES[1])], "left")
    padded.pop("query_mask")
    assert torch.allclose(scores_of(qwen_model, padded)[0], reference, atol=1e-6)


def test_query_mask_selects_the_question(qwen_model):
    batch = batch_of([0])
    embeds = qwen_model.get_input_embeddings()(batch["input_ids"][0])
    query = embeds[batch["query_mask"][0].bool()].mean(0)
    with torch.no_grad():
        out = qwen_model(**batch, return_vts_selection=True)
        video = qwen_model.model.get_video_features(batch["pixel_values_videos"], batch["video_grid_thw"]).pooler_output[0]
        expected = qwen_model.model.vts.relevance(video, query)
    assert torch.allclose(out.video_scores[0], expected, atol=1e-6)
    with vts_settings(qwen_model, vts_query_pooling="prompt"):
        assert not torch.allclose(scores_of(qwen_model, batch)[0], expected, atol=1e-4)


@pytest.mark.parametrize(
    "strategy",
    ["token", "frame", "uniform", "random", "parameter_free", "temporal_redundancy", "centre_distance", "dense"],
)
def test_every_strategy_prunes_to_its_budget(qwen_model, strategy):
    batch = batch_of([0, 1])
    with vts_settings(qwen_model, vts_strategy=strategy):
        seen, out = llm_input_lengths(qwen_model, batch, return_vts_selection=True)
    n_video = video_token_count(batch)
    frame = 4  # tokens per temporal grid in SAMPLES 0 and 1 ((4 x 4) / 4 and (4 x 6) / 4 = 6)
    if strategy == "dense":
        expected = n_video
    elif strategy in ("frame", "uniform"):
        frames = [n // f for n, f in zip(n_video, [frame, 6])]
        expected = [math.ceil(0.5 * k) * f for k, f in zip(frames, [frame, 6])]
    else:
        expected = [math.ceil(0.5 * n) for n in n_video]
    assert [int(k.sum()) for k in out.video_keep] == expected
    row_lengths = batch["attention_mask"].sum(1) - torch.tensor(n_video) + torch.tensor(expected)
    assert seen == [int(row_lengths.max())]
    assert torch.isfinite(out.logits).all()


def test_loss_backward_and_gradient_checkpointing():
    torch.manual_seed(0)
    model = GroundVTSQwen2_5_VLForConditionalGeneration(tiny_qwen_config()).train()
    batch = collate([video_sample(**SAMPLES[0], answer=4), video_sample(**SAMPLES[1], answer=3)], "right", True)
    out = model(**batch)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    assert model.model.vts.wv.weight.grad.abs().sum() > 0  # selection path (straight-through)
    assert model.model.vts.mlp[0].weight.grad.abs().sum() > 0
    assert model.model.language_model.layers[0].self_attn.q_proj.weight.grad.abs().sum() > 0
    model.zero_grad()
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    checkpointed = model(**batch)
    assert torch.allclose(checkpointed.loss, out.loss, atol=1e-6)
    checkpointed.loss.backward()
    assert model.model.vts.wv.weight.grad.abs().sum() > 0


def test_loss_ignores_positions_after_removed_tokens(qwen_model):
    batch = collate([video_sample(**SAMPLES[0], answer=4)], "right", with_labels=True)
    # A label on a video token would be predicted by a removed token; it must not count.
    batch["labels"] = torch.where(batch["input_ids"] == VIDEO_ID, batch["input_ids"], batch["labels"])
    with torch.no_grad():
        polluted = qwen_model(**batch).loss
        batch["labels"] = collate([video_sample(**SAMPLES[0], answer=4)], "right", True)["labels"]
        clean = qwen_model(**batch).loss
        kept_video_labels = qwen_model(**batch).token_keep
    assert torch.isfinite(polluted) and not torch.allclose(polluted, clean)  # kept video tokens still count
    assert kept_video_labels is not None


def test_eager_and_sdpa_agree(qwen_model):
    batch = batch_of([0, 1], "left")
    with torch.no_grad():
        sdpa = qwen_model(**batch).logits
        qwen_model.set_attn_implementation("eager")
        try:
            eager = qwen_model(**batch).logits
        finally:
            qwen_model.set_attn_implementation("sdpa")
    valid = batch["attention_mask"].bool()
    assert torch.allclose(sdpa[valid], eager[valid], atol=1e-5)


def test_bfloat16_forward_and_generate():
    torch.manual_seed(0)
    model = GroundVTSQwen2_5_VLForConditionalGeneration(tiny_qwen_config()).eval().to(torch.bfloat16)
    batch = batch_of([0, 1], "left")
    batch["pixel_values_videos"] = batch["pixel_values_videos"].to(torch.bfloat16)
    with torch.no_grad():
        out = model(**batch)
        generated = model.generate(**batch, max_new_tokens=3, do_sample=False)
    assert out.logits.dtype == torch.bfloat16 and torch.isfinite(out.logits.float()).all()
    assert generated.shape == (2, batch["input_ids"].shape[1] + 3)
