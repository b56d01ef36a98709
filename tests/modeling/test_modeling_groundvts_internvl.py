"""GroundVTS-I (InternVL): physical token removal over video-frame tokens, dense 1-D positions, cached
generation, batching, strategies, input validation and the real-size config."""

import math

import pytest
import torch
import torch.nn.functional as F
from transformers import InternVLForConditionalGeneration

from groundvts.hub_configs import hub_config_path
from groundvts.modeling.configuration_groundvts_internvl import GroundVTSInternVLConfig, frame_token_count
from groundvts.modeling.modeling_groundvts_internvl import GroundVTSInternVLForConditionalGeneration, mask_positions
from tiny_models import (
    IMG_CONTEXT_ID,
    INTERNVL_FRAME_TOKENS,
    collate_internvl,
    internvl_sample,
    spread_vts_scores,
    stock_internvl_config,
    tiny_internvl_config,
    vts_settings,
)

FRAME = INTERNVL_FRAME_TOKENS
# Videos of different lengths so that rows lose different numbers of tokens; the third row also has a still image.
SAMPLES = [
    dict(prefix=3, frames=3, question=4, seed=0),  # 12 video tokens
    dict(prefix=5, frames=5, question=3, seed=1),  # 20 video tokens
    dict(prefix=2, frames=1, question=5, seed=2, image=True),  # 4 video tokens + 4 image tokens
]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    model = GroundVTSInternVLForConditionalGeneration(tiny_internvl_config()).eval()
    spread_vts_scores(model)
    return model


def batch_of(indices, padding_side="left", with_labels=False, **kwargs):
    return collate_internvl([internvl_sample(**SAMPLES[i], **kwargs) for i in indices], padding_side, with_labels)


def video_token_count(batch):
    return [int(n) * FRAME for n in batch["video_num_frames"]]


def llm_inputs(model, batch, **kwargs):
    """Run a forward and record the embeddings the language model actually received."""
    seen = []
    hook = model.model.language_model.register_forward_pre_hook(
        lambda module, args, kw: seen.append(kw["inputs_embeds"]), with_kwargs=True
    )
    try:
        with torch.no_grad():
            out = model(**batch, use_cache=True, **kwargs)
    finally:
        hook.remove()
    return seen, out


def stock_copy(model):
    stock = InternVLForConditionalGeneration(stock_internvl_config(model.config)).eval()
    missing, unexpected = stock.load_state_dict(model.state_dict(), strict=False)
    assert missing == [] and unexpected and all(k.startswith("model.vts.") for k in unexpected)
    return stock


def test_language_model_sees_only_kept_video_tokens(model):
    batch = batch_of([0, 1])
    seen, out = llm_inputs(model, batch)
    n_video = video_token_count(batch)  # [12, 20]
    dropped = [n - math.ceil(0.5 * n) for n in n_video]  # [6, 10]
    row_lengths = batch["attention_mask"].sum(1) - torch.tensor(dropped)
    assert [e.shape[1] for e in seen] == [int(row_lengths.max())] and seen[0].shape[1] < batch["input_ids"].shape[1]
    assert out.past_key_values.get_seq_length() == seen[0].shape[1]
    video = batch["mm_token_type_ids"] == 2
    assert out.token_keep[video].sum() == sum(math.ceil(0.5 * n) for n in n_video)
    assert out.token_keep[~video & batch["attention_mask"].bool()].all()  # text and frame markers all stay
    assert out.pruned_attention_mask.sum(1).tolist() == row_lengths.tolist()
    assert out.logits.shape[:2] == batch["input_ids"].shape  # logits still line up with input_ids
    # Removed slots get zeros in the scattered-back hidden state, hence identical logits (the bias-free head of 0).
    removed = video & ~out.token_keep
    assert torch.equal(out.logits[removed], model.lm_head(torch.zeros(int(removed.sum()), 32)))


def test_kept_tokens_keep_dense_positions(model):
    batch = batch_of([0, 1])
    with torch.no_grad():
        out = model(**batch)
    dense = mask_positions(batch["attention_mask"])
    mask = out.pruned_attention_mask.bool()
    for row in range(2):
        kept = out.token_keep[row] & batch["attention_mask"][row].bool()
        assert torch.equal(out.pruned_position_ids[row, mask[row]], dense[row, kept])
        # Sanity: the positions really have gaps where video tokens were removed.
        assert int(out.pruned_position_ids[row, mask[row]].diff().max()) > 1


def test_without_position_encoding_positions_are_contiguous(model):
    batch = batch_of([0, 1])
    with vts_settings(model, vts_keep_positions=False), torch.no_grad():
        out = model(**batch)
    mask = out.pruned_attention_mask.bool()
    for row in range(2):
        n = int(mask[row].sum())
        assert out.pruned_position_ids[row, mask[row]].tolist() == list(range(n))


def test_without_vts_inputs_the_model_is_plain_internvl(model):
    stock = stock_copy(model)
    batch = batch_of([0, 2])
    plain = {k: batch[k] for k in ("input_ids", "attention_mask", "pixel_values")}
    with torch.no_grad():
        ours, theirs = model(**plain), stock(**plain)
    assert ours.token_keep is None and ours.pruned_attention_mask is None
    assert torch.allclose(ours.logits, theirs.logits, atol=1e-6)
    ids = torch.tensor([[5, 6, 7, 8, 9, 10]])
    with torch.no_grad():
        assert torch.allclose(model(input_ids=ids).logits, stock(input_ids=ids).logits, atol=1e-6)


def test_still_images_are_never_sampled(model):
    batch = batch_of([2])
    seen, out = llm_inputs(model, batch)
    image = batch["mm_token_type_ids"][0] == 1
    assert out.token_keep[0][image].all()
    with torch.no_grad():
        image_features = model.model.get_image_features(batch["pixel_values"][:1]).pooler_output[0]
    # Left padding, one row: the valid pruned slots are the kept input tokens in order.
    lm_embeds = seen[0][0][out.pruned_attention_mask[0].bool()]
    kept_positions = out.token_keep[0].nonzero().flatten()
    at_image = image[kept_positions] & (batch["input_ids"][0][kept_positions] == IMG_CONTEXT_ID)
    assert at_image.sum() == FRAME and torch.allclose(lm_embeds[at_image], image_features, atol=1e-6)


def test_dense_strategy_equals_stock_internvl(model):
    stock = stock_copy(model)
    batch = batch_of([0, 1, 2])
    positions = mask_positions(batch["attention_mask"])
    with vts_settings(model, vts_strategy="dense"), torch.no_grad():
        ours = model(**batch, position_ids=positions).logits
    with torch.no_grad():
        theirs = stock(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
            pixel_values=batch["pixel_values"], position_ids=positions,
        ).logits
    valid = batch["attention_mask"].bool()
    assert torch.allclose(ours[valid], theirs[valid], atol=1e-5)


def test_image_token_id_comes_from_the_config():
    torch.manual_seed(0)
    model = GroundVTSInternVLForConditionalGeneration(tiny_internvl_config()).eval()
    batch = batch_of([0, 1])
    with torch.no_grad():
        reference = model(**batch).logits
        moved = dict(batch, input_ids=batch["input_ids"].masked_fill(batch["input_ids"] == IMG_CONTEXT_ID, 120))
        model.config.image_token_id = 120
        # Context-token embeddings are replaced by frame features, so the id itself does not change logits.
        assert torch.allclose(model(**moved).logits, reference, atol=1e-6)
        with pytest.raises(ValueError, match="do not match"):
            model(**batch)


@pytest.mark.parametrize("padding_side", ["left", "right"])
def test_batch_equals_one_by_one(model, padding_side):
    batch = batch_of([0, 1, 2], padding_side)
    with torch.no_grad():
        batched = model(**batch)
    for row in range(3):
        with torch.no_grad():
            alone = model(**batch_of([row])).logits[0]
        valid = batch["attention_mask"][row].bool()
        kept = batched.token_keep[row][valid]
        assert torch.allclose(batched.logits[row][valid][kept], alone[kept], atol=1e-5)


def test_pre_encoded_image_features_give_the_same_selection(model):
    """generate never pre-encodes (opt-out), but a caller passing `mm_encoder_outputs` gets the same VTS result."""
    assert model._supports_mm_encoder_outputs() is False
    batch = batch_of([0, 2])
    with torch.no_grad():
        direct = model(**batch, return_vts_selection=True)
        encoded = {"image": model.model.get_image_features(batch["pixel_values"])}
        pre = model(**{k: v for k, v in batch.items() if k != "pixel_values"}, mm_encoder_outputs=encoded)
    assert torch.equal(pre.token_keep, direct.token_keep)
    assert torch.allclose(pre.logits, direct.logits, atol=1e-6)


def grow(batch, token):
    batch = dict(batch)
    batch["input_ids"] = torch.cat([batch["input_ids"], token], 1)
    batch["attention_mask"] = F.pad(batch["attention_mask"], (0, 1), value=1)
    for key in ("mm_token_type_ids", "query_mask"):
        batch[key] = F.pad(batch[key], (0, 1), value=0)
    return batch


def no_cache_reference(model, batch, steps):
    """Greedy decoding by re-running the whole growing sequence without a KV cache or given positions."""
    logits = []
    for _ in range(steps):
        with torch.no_grad():
            out = model(**batch, use_cache=False)
        logits.append(out.logits[:, -1])
        batch = grow(batch, out.logits[:, -1].argmax(-1, keepdim=True))
    return batch["input_ids"], torch.stack(logits, 1)


def greedy(model, batch, steps, **kwargs):
    with torch.no_grad():
        return model.generate(
            **batch, max_new_tokens=steps, min_new_tokens=steps, do_sample=False,
            output_logits=True, return_dict_in_generate=True, **kwargs,
        )


@pytest.mark.parametrize("settings", [{}, {"vts_keep_positions": False}, {"vts_strategy": "frame"}])
def test_greedy_generate_with_cache_equals_no_cache_reference(model, settings):
    batch = batch_of([0, 1, 2], "left")  # left padding, videos of 3, 5 and 1 frames
    steps = 5
    with vts_settings(model, **settings):
        generated = greedy(model, batch, steps)
        reference_ids, reference_logits = no_cache_reference(model, batch, steps)
    assert generated.past_key_values.get_seq_length() < batch["input_ids"].shape[1] + steps - 1
    assert torch.equal(generated.sequences, reference_ids)
    assert torch.allclose(torch.stack(generated.logits, 1), reference_logits, atol=1e-4)


def test_generate_without_cache_equals_cached_generate(model):
    batch = batch_of([0, 1, 2], "left")
    cached, uncached = greedy(model, batch, 3), greedy(model, batch, 3, use_cache=False)
    assert torch.equal(cached.sequences, uncached.sequences)
    assert torch.allclose(torch.stack(cached.logits, 1), torch.stack(uncached.logits, 1), atol=1e-4)


def test_manual_decode_without_position_ids_continues_dense_positions(model):
    """A hand-written decode loop passes only the pruned mask; the model continues at the dense positions."""
    batch = batch_of([0, 1, 2], "left")
    steps = 3
    generated = greedy(model, batch, steps)
    with torch.no_grad():
        out = model(**batch, use_cache=True)
        mask, cache, logits = out.pruned_attention_mask, out.past_key_values, [out.logits[:, -1]]
        for step in range(1, steps):
            token = generated.sequences[:, batch["input_ids"].shape[1] + step - 1, None]
            mask = F.pad(mask, (0, 1), value=1)
            out = model(input_ids=token, attention_mask=mask, past_key_values=cache, use_cache=True)
            logits.append(out.logits[:, -1])
    assert torch.allclose(torch.stack(logits, 1), torch.stack(generated.logits, 1), atol=1e-4)


def scores_of(model, batch):
    with torch.no_grad():
        return model(**batch, return_vts_selection=True).video_scores


def test_query_ignores_answer_and_padding(model):
    prompt_only = collate_internvl([internvl_sample(**SAMPLES[0])], "left", with_labels=True)
    with_answer = collate_internvl([internvl_sample(**SAMPLES[0], answer=6)], "left", with_labels=True)
    # Compare the default pooling without a query mask: every prompt token is the query.
    for batch in (prompt_only, with_answer):
        batch.pop("query_mask")
    reference = scores_of(model, prompt_only)[0]
    assert torch.allclose(scores_of(model, with_answer)[0], reference, atol=1e-6)
    # Without labels the answer tokens would be part of the prompt and change the query.
    with_answer.pop("labels")
    assert not torch.allclose(scores_of(model, with_answer)[0], reference, atol=1e-4)

    padded = batch_of([0, 1])
    padded.pop("query_mask")
    assert torch.allclose(scores_of(model, padded)[0], reference, atol=1e-6)


def test_query_mask_selects_the_question(model):
    batch = batch_of([0])
    embeds = model.get_input_embeddings()(batch["input_ids"][0])
    query = embeds[batch["query_mask"][0].bool()].mean(0)
    with torch.no_grad():
        out = model(**batch, return_vts_selection=True)
        video = model.model.get_image_features(batch["pixel_values"]).pooler_output.flatten(0, 1)
        expected = model.model.vts.relevance(video, query)
    assert torch.allclose(out.video_scores[0], expected, atol=1e-6)
    with vts_settings(model, vts_query_pooling="prompt"):
        assert not torch.allclose(scores_of(model, batch)[0], expected, atol=1e-4)


@pytest.mark.parametrize(
    "strategy",
    ["token", "frame", "uniform", "random", "parameter_free", "temporal_redundancy", "centre_distance", "dense"],
)
def test_every_strategy_prunes_to_its_budget(model, strategy):
    batch = batch_of([0, 1])
    with vts_settings(model, vts_strategy=strategy):
        seen, out = llm_inputs(model, batch, return_vts_selection=True)
    frames = batch["video_num_frames"].tolist()  # [3, 5]
    n_video = video_token_count(batch)
    if strategy == "dense":
        expected = n_video
    elif strategy in ("frame", "uniform"):
        expected = [math.ceil(0.5 * f) * FRAME for f in frames]  # [8, 12]: whole frames of image_seq_length
    else:
        expected = [math.ceil(0.5 * n) for n in n_video]  # [6, 10]
    assert [int(k.sum()) for k in out.video_keep] == expected
    if strategy in ("frame", "uniform"):
        for keep in out.video_keep:
            per_frame = keep.view(-1, FRAME).sum(1)
            assert set(per_frame.tolist()) <= {0, FRAME}
    row_lengths = batch["attention_mask"].sum(1) - torch.tensor(n_video) + torch.tensor(expected)
    assert seen[0].shape[1] == int(row_lengths.max())
    assert torch.isfinite(out.logits).all()


def bad_input_cases():
    def drop(key):
        return lambda b: {k: v for k, v in b.items() if k != key}

    def replace(key, value):
        return lambda b: dict(b, **{key: value(b)})

    def text_as_video(b):
        types = b["mm_token_type_ids"].clone()
        types[0, -1] = 2
        return types

    return [
        ("no_frames", drop("video_num_frames"), "video_num_frames` is missing"),
        ("no_types", drop("mm_token_type_ids"), "without `mm_token_type_ids`"),
        ("wrong_count", replace("video_num_frames", lambda b: torch.tensor([3, 4])), "describes 28"),
        ("across_rows", replace("video_num_frames", lambda b: torch.tensor([4, 4])), "across batch rows"),
        ("zero_frames", replace("video_num_frames", lambda b: torch.tensor([8, 0])), "positive frame counts"),
        ("text_as_video", replace("mm_token_type_ids", text_as_video), "not image context tokens"),
        ("query_shape", replace("query_mask", lambda b: b["query_mask"][:, 1:]), "`query_mask` has shape"),
    ]


@pytest.mark.parametrize("name, corrupt, message", bad_input_cases(), ids=[c[0] for c in bad_input_cases()])
def test_bad_vts_inputs_raise_clear_errors(model, name, corrupt, message):
    batch = corrupt(batch_of([0, 1]))
    with pytest.raises(ValueError, match=message), torch.no_grad():
        model(**batch)


def test_loss_backward_and_gradient_checkpointing():
    torch.manual_seed(0)
    model = GroundVTSInternVLForConditionalGeneration(tiny_internvl_config()).train()
    batch = collate_internvl([internvl_sample(**SAMPLES[0], answer=4), internvl_sample(**SAMPLES[1], answer=3)], "right", True)
    out = model(**batch)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    assert model.model.vts.wv.weight.grad.abs().sum() > 0  # selection path (straight-through)
    assert model.model.vts.mlp[0].weight.grad.abs().sum() > 0
    assert model.model.multi_modal_projector.linear_2.weight.grad.abs().sum() > 0
    assert model.model.language_model.layers[0].self_attn.q_proj.weight.grad.abs().sum() > 0
    model.zero_grad()
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    checkpointed = model(**batch)
    assert torch.allclose(checkpointed.loss, out.loss, atol=1e-6)
    checkpointed.loss.backward()
    assert model.model.vts.wv.weight.grad.abs().sum() > 0


def test_loss_ignores_positions_after_removed_tokens(model):
    clean_batch = collate_internvl([internvl_sample(**SAMPLES[0], answer=4)], "right", with_labels=True)
    polluted_batch = dict(clean_batch)
    # A label after a removed video token would be predicted by a token the LM never saw: it must not count.
    polluted_batch["labels"] = torch.where(
        clean_batch["mm_token_type_ids"] == 2, clean_batch["input_ids"], clean_batch["labels"]
    )
    with torch.no_grad():
        clean = model(**clean_batch)
        polluted = model(**polluted_batch)
    assert torch.isfinite(polluted.loss)
    # Reference: cross-entropy over the answer plus only the video labels whose predecessor was kept.
    labels = polluted_batch["labels"].clone()
    labels[:, 1:][~clean.token_keep[:, :-1]] = -100
    assert (labels != -100).sum() < (polluted_batch["labels"] != -100).sum()
    expected = F.cross_entropy(polluted.logits[0, :-1], labels[0, 1:], ignore_index=-100)
    assert torch.allclose(polluted.loss, expected, atol=1e-5)


def test_eager_and_sdpa_agree(model):
    batch = batch_of([0, 1], "left")
    with torch.no_grad():
        sdpa = model(**batch).logits
        model.set_attn_implementation("eager")
        try:
            eager = model(**batch).logits
        finally:
            model.set_attn_implementation("sdpa")
    valid = batch["attention_mask"].bool()
    assert torch.allclose(sdpa[valid], eager[valid], atol=1e-5)


def test_bfloat16_forward_and_generate():
    torch.manual_seed(0)
    model = GroundVTSInternVLForConditionalGeneration(tiny_internvl_config()).eval().to(torch.bfloat16)
    batch = batch_of([0, 1], "left")
    batch["pixel_values"] = batch["pixel_values"].to(torch.bfloat16)
    with torch.no_grad():
        out = model(**batch)
        generated = model.generate(**batch, max_new_tokens=3, do_sample=False)
    assert out.logits.dtype == torch.bfloat16 and torch.isfinite(out.logits.float()).all()
    assert generated.shape == (2, batch["input_ids"].shape[1] + 3)


def test_real_size_config_matches_internvl3_5_8b_and_paper_vts_size():
    config = GroundVTSInternVLConfig.from_json_file(str(hub_config_path("groundvts-i-internvl3_5-8b")))
    assert config.model_type == "groundvts_internvl"
    assert config.image_token_id == 151671
    assert frame_token_count(config) == 256 == config.image_seq_length
    text = config.text_config
    assert text.model_type == "qwen3"
    assert (text.hidden_size, text.num_hidden_layers, text.num_attention_heads, text.num_key_value_heads) == (4096, 36, 32, 8)
    assert (text.intermediate_size, text.vocab_size, text.head_dim) == (12288, 151936, 128)
    vision = config.vision_config
    assert (vision.hidden_size, vision.num_hidden_layers, vision.num_attention_heads, vision.intermediate_size) == (1024, 24, 16, 4096)
    assert (list(vision.image_size), list(vision.patch_size), vision.hidden_act, vision.norm_type) == ([448, 448], [14, 14], "gelu", "layer_norm")
    assert (vision.attention_bias, vision.use_qk_norm, vision.use_mean_pooling, vision.layer_scale_init_value) == (True, False, True, 0.1)
    assert (config.downsample_ratio, config.projector_hidden_act, config.vision_feature_layer) == (0.5, "gelu", -1)
    assert (text.rms_norm_eps, text.max_position_embeddings, text.rope_parameters["rope_theta"], text.tie_word_embeddings) == (1e-6, 40960, 1e6, False)
    assert (config.vts_reduction_dim, config.vts_keep_ratio) == (128, 0.5)
    with torch.device("meta"):  # shapes only, no memory
        full = GroundVTSInternVLForConditionalGeneration(config)
    count = lambda module: sum(p.numel() for p in module.parameters())
    n = count(full.model.vts)
    assert n == 2 * 4096 * 128 + 2 * (4096 * 4096 + 4096)
    assert round(n / 1e6, 1) == 34.6  # paper Table 14 (VTS)
    assert round(count(full.model.multi_modal_projector) / 1e6, 1) == 33.6  # paper Table 14 (projector)
    assert round((count(full) - n) / 1e9, 2) == 8.53  # InternVL3.5-8B (0.3B vision + 8.2B language)
