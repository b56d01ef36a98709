import math
from types import SimpleNamespace

import pytest
import torch

from groundvts.modeling.vts import VisualTokenSampler, num_kept, validate_vts_config

D = 16


def vts_config(**overrides):
    values = dict(
        vts_reduction_dim=8, vts_keep_ratio=0.5, vts_temperature=1.0, vts_gumbel_temperature=1.0,
        vts_weight_temperature=1.0, vts_strategy="token", vts_train_selection="gumbel",
        vts_keep_positions=True, vts_query_pooling="query_mask",
    )
    values.update(overrides)
    return SimpleNamespace(**values)


def make_sampler(**overrides):
    torch.manual_seed(0)
    return VisualTokenSampler(vts_config(**overrides), D).eval()


def video(n=24, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, D, generator=g), torch.randn(D, generator=g)


@pytest.mark.parametrize("n, rho, k", [(8, 0.5, 4), (7, 0.5, 4), (6, 0.5, 3), (10, 0.25, 3), (1, 0.5, 1), (5, 1.0, 5)])
def test_num_kept_is_ceil_rho_n(n, rho, k):
    assert num_kept(n, rho) == k == math.ceil(rho * n)


def test_layer_shapes_match_the_paper():
    sampler = make_sampler()
    assert sampler.wv.weight.shape == (8, D) and sampler.wv.bias is None
    assert sampler.wq.weight.shape == (8, D) and sampler.wq.bias is None
    assert sampler.mlp[0].weight.shape == (D, D) and sampler.mlp[0].bias is not None
    assert isinstance(sampler.mlp[1], torch.nn.ReLU)


def test_relevance_is_a_distribution_and_topk_is_kept():
    sampler = make_sampler()
    v, q = video()
    (sel,) = sampler([v], q[None], [4])
    w = sampler.relevance(v, q)
    assert torch.allclose(w.sum(), torch.tensor(1.0), atol=1e-6)
    assert torch.equal(sel.scores, w)
    assert int(sel.keep.sum()) == 12
    assert set(sel.keep.nonzero().flatten().tolist()) == set(torch.topk(w, 12).indices.tolist())


def test_kept_tokens_are_reweighted_mlp_outputs():
    sampler = make_sampler(vts_weight_temperature=0.5)
    v, q = video()
    (sel,) = sampler([v], q[None], [4])
    w = sampler.relevance(v, q)
    w_hat = torch.softmax(w[sel.keep] / 0.5, dim=0)  # eq. 7 with z~ = hard mask
    assert torch.allclose(w_hat.sum(), torch.tensor(1.0))
    expected = w_hat[:, None] * sampler.mlp(v[sel.keep])
    assert torch.allclose(sel.embeds, expected, atol=1e-6)


def test_eval_is_deterministic_and_training_forward_matches_eval():
    sampler = make_sampler()
    v, q = video()
    first, second = sampler([v], q[None], [4])[0], sampler([v], q[None], [4])[0]
    assert torch.equal(first.keep, second.keep) and torch.equal(first.embeds, second.embeds)
    sampler.train()
    trained = sampler([v], q[None], [4])[0]
    # Straight-through: the forward value is the hard selection, only gradients differ.
    assert torch.equal(trained.keep, first.keep)
    assert torch.allclose(trained.embeds, first.embeds, atol=1e-6)


def grads(selection_mode):
    sampler = make_sampler(vts_train_selection=selection_mode).train()
    v, q = video()
    (sel,) = sampler([v], q[None], [4], generator=torch.Generator().manual_seed(3))
    (sel.embeds * torch.linspace(-1, 1, D)).sum().backward()
    return sampler.wv.weight.grad, sampler.wq.weight.grad


def test_straight_through_gradients_reach_wv_and_wq():
    wv_grad, wq_grad = grads("gumbel")
    assert wv_grad.abs().sum() > 0 and wq_grad.abs().sum() > 0
    # The Gumbel estimator adds a gradient path that the official deterministic top-K lacks.
    wv_topk, _ = grads("topk")
    assert not torch.allclose(wv_grad, wv_topk)


def test_frame_strategy_keeps_whole_frames():
    sampler = make_sampler(vts_strategy="frame")
    v, q = video(n=24)
    (sel,) = sampler([v], q[None], [4])  # 6 frames of 4 tokens
    frames = sel.keep.view(6, 4)
    assert torch.all(frames.all(1) | ~frames.any(1))
    assert int(frames.all(1).sum()) == 3
    frame_scores = sampler.relevance(v, q).view(6, 4).mean(1)
    assert set(frames.all(1).nonzero().flatten().tolist()) == set(torch.topk(frame_scores, 3).indices.tolist())


def test_uniform_strategy_keeps_every_other_frame_unchanged():
    sampler = make_sampler(vts_strategy="uniform")
    v, q = video(n=24)
    (sel,) = sampler([v], q[None], [4])
    assert sel.keep.view(6, 4).all(1).tolist() == [True, False, True, False, True, False]
    assert torch.equal(sel.embeds, v[sel.keep])


def test_random_strategy_keeps_budget_and_varies():
    sampler = make_sampler(vts_strategy="random")
    v, q = video(n=24)
    a = sampler([v], q[None], [4], generator=torch.Generator().manual_seed(0))[0]
    b = sampler([v], q[None], [4], generator=torch.Generator().manual_seed(1))[0]
    assert int(a.keep.sum()) == int(b.keep.sum()) == 12
    assert not torch.equal(a.keep, b.keep)
    assert torch.equal(a.embeds, v[a.keep])


def test_parameter_free_strategy_uses_cosine_relevance():
    sampler = make_sampler(vts_strategy="parameter_free")
    v, q = video(n=24)
    (sel,) = sampler([v], q[None], [4])
    cosine = torch.nn.functional.cosine_similarity(v, q[None], dim=-1)
    assert set(sel.keep.nonzero().flatten().tolist()) == set(torch.topk(cosine, 12).indices.tolist())
    assert torch.equal(sel.embeds, v[sel.keep])


def test_dense_strategy_keeps_everything_unchanged():
    sampler = make_sampler(vts_strategy="dense")
    v, q = video(n=24)
    (sel,) = sampler([v], q[None], [4])
    assert sel.keep.all() and torch.equal(sel.embeds, v)


def test_each_video_gets_its_own_budget():
    sampler = make_sampler(vts_keep_ratio=0.25)
    (v1, q1), (v2, q2) = video(n=8, seed=1), video(n=20, seed=2)
    sels = sampler([v1, v2], torch.stack([q1, q2]), [4, 4])
    assert [int(s.keep.sum()) for s in sels] == [2, 5]


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("vts_keep_ratio", 0.0, "vts_keep_ratio"),
        ("vts_keep_ratio", 1.2, "vts_keep_ratio"),
        ("vts_strategy", "tokens", "vts_strategy"),
        ("vts_train_selection", "soft", "vts_train_selection"),
        ("vts_query_pooling", "all", "vts_query_pooling"),
        ("vts_temperature", 0.0, "vts_temperature"),
    ],
)
def test_invalid_settings_name_the_field(field, value, message):
    with pytest.raises(ValueError, match=message):
        validate_vts_config(vts_config(**{field: value}))


def test_budget_mask_floor_then_global_top_k():
    from groundvts.modeling.vts import budget_mask

    # 3 frames of 4 tokens; the global top-4 all sit in frame 0.
    scores = torch.tensor([9.0, 8.0, 7.0, 6.0, 0.1, 0.3, 0.2, 0.0, 0.5, 0.4, 0.6, 0.7])
    assert budget_mask(scores, 4, 4).nonzero().flatten().tolist() == [0, 1, 2, 3]
    # Floor 1: each frame's best (0, 5, 11), then the best remaining one (1).
    assert budget_mask(scores, 4, 4, 1).nonzero().flatten().tolist() == [0, 1, 5, 11]
    # The floor is inside the budget: 3 frames x 2 > K = 5.
    with pytest.raises(ValueError, match="vts_min_tokens_per_frame=2 needs 6 tokens"):
        budget_mask(scores, 5, 4, 2)
