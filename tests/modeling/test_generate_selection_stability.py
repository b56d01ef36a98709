"""Which video tokens VTS keeps depends on the prompt only. `generate(use_cache=False)` re-runs VTS over the whole
sequence at every step; the generated tokens must not join the query, so every step keeps the prefill's tokens and
cached and uncached greedy decoding agree, for both backbones, every query pooling, with and without `query_mask`."""

import pytest
import torch

from tiny_models import vts_settings

STEPS = 10


def greedy_with_keep_masks(model, batch: dict, use_cache: bool):
    """Greedy generate; returns the sequences and the keep mask (all videos concatenated) of every VTS call."""
    keeps = []
    hook = model.model.vts.register_forward_hook(
        lambda module, args, selections: keeps.append(torch.cat([s.keep for s in selections]))
    )
    try:
        with torch.no_grad():
            sequences = model.generate(
                **batch, max_new_tokens=STEPS, min_new_tokens=STEPS, do_sample=False, use_cache=use_cache
            )
    finally:
        hook.remove()
    return sequences, keeps


@pytest.mark.parametrize("pooling", ["query_mask", "prompt"])
@pytest.mark.parametrize("with_query_mask", [True, False])
def test_uncached_generate_keeps_the_prefill_selection(video_backbone, pooling, with_query_mask):
    model, batch = video_backbone
    if not with_query_mask:
        batch = {k: v for k, v in batch.items() if k != "query_mask"}
    with vts_settings(model, vts_query_pooling=pooling):
        cached, cached_keeps = greedy_with_keep_masks(model, batch, use_cache=True)
        uncached, uncached_keeps = greedy_with_keep_masks(model, batch, use_cache=False)
    assert len(cached_keeps) == 1 and len(uncached_keeps) == STEPS  # VTS at prefill only vs at every step
    prefill = cached_keeps[0]
    assert not bool(prefill.all())
    for step, keep in enumerate(uncached_keeps):
        assert torch.equal(keep, prefill), f"step {step} kept other video tokens than the prefill"
    assert torch.equal(uncached, cached)


def test_prompt_mask_excludes_tokens_from_the_query(video_backbone):
    """The forward's `prompt_mask`: tokens marked 0 do not count, exactly as if they carried a label."""
    model, batch = video_backbone
    batch = {k: v for k, v in batch.items() if k != "query_mask"}
    tail = torch.zeros_like(batch["attention_mask"])
    tail[:, -2:] = 1  # the last two (question) tokens of every row
    with torch.no_grad():
        plain = model(**batch, return_vts_selection=True).video_scores
        masked = model(**batch, prompt_mask=1 - tail, return_vts_selection=True).video_scores
        labelled = model(**batch, labels=torch.where(tail.bool(), batch["input_ids"], -100),
                         return_vts_selection=True).video_scores
    for p, m, lab in zip(plain, masked, labelled, strict=True):
        assert torch.allclose(m, lab, atol=1e-6)
        assert not torch.allclose(m, p, atol=1e-4)
