"""GroundVTS-Q accepts `inputs_embeds` with video, like stock Qwen2.5-VL: the vision tokens are located from
`mm_token_type_ids` (or, without it, from the placeholder embeddings) and the query is pooled from the given
embeddings, so the result equals passing `input_ids`."""

import pytest
import torch
import torch.nn.functional as F

from tiny_models import IMAGE_ID, PATCH_DIM, VIDEO_ID, VISION_END, VISION_START, collate, video_sample

# Videos of 8 and 18 tokens: the rows lose different numbers of tokens.
ROWS = [dict(prefix=3, grid=(2, 4, 4), question=4, seed=0), dict(prefix=5, grid=(3, 4, 6), question=3, seed=1)]


def with_image(batch: dict) -> dict:
    """Append a still image (1 x 4 x 4 patches, 4 tokens) to the end of every left-padded row."""
    rows = batch["input_ids"].shape[0]
    block = torch.tensor([VISION_START] + [IMAGE_ID] * 4 + [VISION_END]).expand(rows, -1)
    ids = torch.cat([batch["input_ids"], block], 1)
    g = torch.Generator().manual_seed(5)
    return dict(
        batch,
        input_ids=ids,
        attention_mask=F.pad(batch["attention_mask"], (0, block.shape[1]), value=1),
        query_mask=F.pad(batch["query_mask"], (0, block.shape[1]), value=0),
        mm_token_type_ids=(ids == VIDEO_ID).long() * 2 + (ids == IMAGE_ID).long(),
        pixel_values=torch.randn(rows * 16, PATCH_DIM, generator=g),
        image_grid_thw=torch.tensor([[1, 4, 4]] * rows),
    )


def embedded(model, batch: dict, drop: tuple = ()) -> dict:
    inputs = {k: v for k, v in batch.items() if k != "input_ids" and k not in drop}
    return dict(inputs, inputs_embeds=model.get_input_embeddings()(batch["input_ids"]))


def assert_same_run(model, reference: dict, embeds: dict) -> None:
    with torch.no_grad():
        ours = model(**embeds, return_vts_selection=True)
        expected = model(**reference, return_vts_selection=True)
    assert ours.token_keep is not None and not bool(ours.token_keep.all())  # VTS really pruned
    assert torch.equal(ours.token_keep, expected.token_keep)
    for a, b in zip(ours.video_keep, expected.video_keep, strict=True):
        assert torch.equal(a, b)
    assert torch.allclose(ours.logits, expected.logits, atol=1e-6)


@pytest.mark.parametrize("image", [False, True])
@pytest.mark.parametrize("query_mask", [True, False])
def test_inputs_embeds_with_mm_token_type_ids_equal_input_ids(qwen_model, image, query_mask):
    batch = collate([video_sample(**row) for row in ROWS], "left")
    batch = with_image(batch) if image else batch
    if not query_mask:
        batch.pop("query_mask")  # the query is every prompt token: pooled from the given embeddings
    assert_same_run(qwen_model, batch, embedded(qwen_model, batch))


def test_inputs_embeds_without_token_types_locate_vision_tokens_from_the_embeddings(qwen_model):
    """Without `mm_token_type_ids` (positions passed explicitly), the placeholders are found like stock does."""
    batch = with_image(collate([video_sample(**row) for row in ROWS], "left"))
    positions, _ = qwen_model.model.get_rope_index(
        input_ids=batch["input_ids"], mm_token_type_ids=batch["mm_token_type_ids"],
        image_grid_thw=batch["image_grid_thw"], video_grid_thw=batch["video_grid_thw"],
        second_per_grid_ts=batch["second_per_grid_ts"], attention_mask=batch["attention_mask"],
    )
    reference = dict(batch, position_ids=positions)
    assert_same_run(qwen_model, reference, embedded(qwen_model, reference, drop=("mm_token_type_ids",)))
