"""GroundVTS-Q's M-RoPE positions follow the rule Qwen2.5-VL was trained with (modeling/mrope.py), written out by
hand for small cases: text after a vision block continues at the block's largest position + 1."""

import pytest
import torch
import torch.nn.functional as F
from transformers import Qwen2_5_VLModel

from groundvts.modeling.mrope import IMAGE, TEXT, VIDEO, pretrained_rope_index
from groundvts.modeling.token_pruning import append_generated_positions
from tiny_models import collate, video_sample, vts_settings

MERGE, TOKENS_PER_SECOND = 2, 2


def positions(types, images=None, videos=None, seconds=None, mask=None):
    types = torch.as_tensor(types)
    types = types[None] if types.dim() == 1 else types
    as_tensor = lambda x: torch.as_tensor(x) if x is not None else None
    ids, deltas = pretrained_rope_index(
        types, as_tensor(images), as_tensor(videos), as_tensor(seconds), as_tensor(mask), MERGE, TOKENS_PER_SECOND
    )
    return ids, deltas


def rows(t, h, w):
    return torch.tensor([t, h, w])


def test_video_longer_in_time_than_in_space():
    # 2 text, a (3, 4, 4) video at 1 s per grid (temporal step 2 ids; 2x2 merged tokens per grid), 2 text.
    ids, deltas = positions([TEXT] * 2 + [VIDEO] * 12 + [TEXT] * 2, videos=[[3, 4, 4]], seconds=[1.0])
    expected = rows(
        [0, 1] + [2] * 4 + [4] * 4 + [6] * 4 + [7, 8],
        [0, 1] + [2, 2, 3, 3] * 3 + [7, 8],
        [0, 1] + [2, 3, 2, 3] * 3 + [7, 8],
    )
    assert torch.equal(ids[:, 0], expected)  # stock 5.23 would restart the text at 4, inside the video's time
    assert deltas.tolist() == [[9 - 16]]


def test_video_as_long_in_time_as_in_space():
    ids, _ = positions([TEXT] + [VIDEO] * 8 + [TEXT] * 2, videos=[[2, 4, 4]], seconds=[0.5])
    expected = rows([0] + [1] * 4 + [2] * 4 + [3, 4], [0] + [1, 1, 2, 2] * 2 + [3, 4], [0] + [1, 2, 1, 2] * 2 + [3, 4])
    assert torch.equal(ids[:, 0], expected)


def test_video_shorter_in_time_than_in_space():
    # (2, 8, 4): 4 x 2 merged tokens per grid; height reaches further than time.
    ids, _ = positions([TEXT] + [VIDEO] * 16 + [TEXT], videos=[[2, 8, 4]], seconds=[0.5])
    height = [1, 1, 2, 2, 3, 3, 4, 4]
    expected = rows([0] + [1] * 8 + [2] * 8 + [5], [0] + height * 2 + [5], [0] + [1, 2] * 8 + [5])
    assert torch.equal(ids[:, 0], expected)


def test_image_then_text():
    ids, _ = positions([TEXT] + [IMAGE] * 6 + [TEXT] * 2, images=[[1, 4, 6]])
    expected = rows([0] + [1] * 6 + [4, 5], [0] + [1, 1, 1, 2, 2, 2] + [4, 5], [0] + [1, 2, 3] * 2 + [4, 5])
    assert torch.equal(ids[:, 0], expected)


def test_two_videos_in_one_row_and_back_to_back():
    # T V(2,4,4 @ 1 s) T V(1,4,4 @ 1 s) T
    ids, _ = positions(
        [TEXT] + [VIDEO] * 8 + [TEXT] + [VIDEO] * 4 + [TEXT], videos=[[2, 4, 4], [1, 4, 4]], seconds=[1.0, 1.0]
    )
    expected = rows(
        [0] + [1] * 4 + [3] * 4 + [4] + [5] * 4 + [7],
        [0] + [1, 1, 2, 2] * 2 + [4] + [5, 5, 6, 6] + [7],
        [0] + [1, 2, 1, 2] * 2 + [4] + [5, 6, 5, 6] + [7],
    )
    assert torch.equal(ids[:, 0], expected)
    # Two videos with no text between them are still two blocks: the second starts after the first's maximum.
    ids, _ = positions([VIDEO] * 8 + [VIDEO] * 4, videos=[[2, 4, 4], [1, 4, 4]], seconds=[1.0, 1.0])
    assert ids[0, 0, 8:].tolist() == [3] * 4 and ids[1, 0, 8:].tolist() == [3, 3, 4, 4]


def test_padded_batch_rows_equal_their_unpadded_positions():
    row_a = [TEXT] * 2 + [VIDEO] * 12 + [TEXT] * 2  # 16 tokens
    row_b = [TEXT] + [VIDEO] * 8 + [TEXT] * 2  # 11 tokens, padded by 5
    alone_a, delta_a = positions(row_a, videos=[[3, 4, 4]], seconds=[1.0])
    alone_b, delta_b = positions(row_b, videos=[[2, 4, 4]], seconds=[0.5])
    for side in ("left", "right"):
        pad = (5, 0) if side == "left" else (0, 5)
        types = torch.stack([torch.tensor(row_a), F.pad(torch.tensor(row_b), pad)])
        mask = torch.stack([torch.ones(16, dtype=torch.long), F.pad(torch.ones(11, dtype=torch.long), pad)])
        ids, deltas = positions(types, videos=[[3, 4, 4], [2, 4, 4]], seconds=[1.0, 0.5], mask=mask)
        assert torch.equal(ids[:, 0], alone_a[:, 0])
        assert torch.equal(ids[:, 1, mask[1].bool()], alone_b[:, 0])
        assert ids[:, 1, ~mask[1].bool()].eq(0).all()
        assert torch.equal(deltas, torch.cat([delta_a, delta_b]))


def test_grid_and_placeholder_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="video_grid_thw"):
        positions([TEXT] + [VIDEO] * 8, videos=[[1, 4, 4]], seconds=[1.0])
    with pytest.raises(ValueError, match="second_per_grid_ts"):
        positions([VIDEO] * 4 + [TEXT] + [VIDEO] * 4, videos=[[1, 4, 4], [1, 4, 4]], seconds=[1.0])


def llm_position_calls(model, **generate_kwargs):
    seen = []
    hook = model.model.language_model.register_forward_pre_hook(
        lambda module, args, kw: seen.append(kw["position_ids"].clone()), with_kwargs=True
    )
    try:
        with torch.no_grad():
            model.generate(**generate_kwargs)
    finally:
        hook.remove()
    return seen


@pytest.mark.parametrize("strategy", ["token", "dense"])
@pytest.mark.parametrize("padding_side", ["left"])
def test_generated_tokens_continue_after_the_largest_prompt_position(qwen_model, strategy, padding_side):
    """Prefill (dense or pruned) and every cached decode step use the pretrained rule: the first generated token
    sits one past the largest position of its prompt, the next one past that, per row."""
    samples = [video_sample(prefix=3, grid=(3, 4, 4), question=2, seed=0), video_sample(prefix=1, grid=(2, 4, 4), question=4, seed=1)]
    batch = collate(samples, padding_side)
    rope_args = dict(video_grid_thw=batch["video_grid_thw"], second_per_grid_ts=batch["second_per_grid_ts"],
                     attention_mask=batch["attention_mask"])
    full, _ = qwen_model.model.get_rope_index(batch["input_ids"], batch["mm_token_type_ids"], **rope_args)
    prompt_max = full.amax(dim=(0, 2))  # per row; padding sits at 0
    # The videos' time (1 s per grid, 2 ids per second) outlasts their 2x2 merged frames: stock 5.23 would differ.
    stock, _ = Qwen2_5_VLModel.get_rope_index(qwen_model.model, batch["input_ids"], batch["mm_token_type_ids"], **rope_args)
    assert (stock.amax(dim=(0, 2)) < prompt_max).all()
    with vts_settings(qwen_model, vts_strategy=strategy):
        calls = llm_position_calls(qwen_model, **batch, max_new_tokens=3, min_new_tokens=3, do_sample=False)
    assert len(calls) == 3
    for step, call in enumerate(calls[1:], start=1):
        assert call.shape[-1] == 1
        assert torch.equal(call[-3:, :, 0], (prompt_max + step)[None].expand(3, -1)), (step, call[-3:, :, 0])


def test_text_after_a_prompt_that_ends_in_a_video_continues_past_every_axis():
    # generate's decode positions: (text row, t, h, w) for a prompt ending in the (3, 4, 4) video of the first test.
    ids, _ = positions([TEXT] * 2 + [VIDEO] * 12, videos=[[3, 4, 4]], seconds=[1.0])
    text_row = torch.arange(14)[None, None]
    prompt = torch.cat([text_row, ids], dim=0)  # (4, 1, 14)
    extended = append_generated_positions(prompt, 2, joint_rows=3)
    assert extended[0, 0, -2:].tolist() == [14, 15]
    assert extended[1:, 0, -2:].tolist() == [[7, 8]] * 3  # one past the video's last time id (6), on every axis
