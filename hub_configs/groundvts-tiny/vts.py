"""Visual Token Sampling (VTS), GroundVTS §3.3.

Scores every projected visual token of a video against the mean embedding of the text query,
keeps K = ceil(rho * N) of them and re-weights the kept ones:

    w   = softmax((Wv v) . (Wq q) / tau)                                   (eqs. 2-3)
    z   = softmax((log w + g) / tau_g),  g ~ Gumbel(0, 1)                    (eq. 4, training only)
    z~  = hard_topK(w) + z - stopgrad(z)                                     (eqs. 5-6)
    w^_i = exp(w_i / tau') z~_i / sum_j exp(w_j / tau') z~_j,  v~_i = w^_i MLP(v_i)   (eq. 7)

This file is Hub-facing: it is copied flat next to the weights, so it imports nothing relative.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


VTS_STRATEGIES = (
    "token", "frame", "uniform", "random", "parameter_free", "temporal_redundancy", "centre_distance", "dense"
)
VTS_TRAIN_SELECTIONS = ("gumbel", "topk")
VTS_QUERY_POOLINGS = ("query_mask", "prompt")

# Strategies that only choose tokens: kept tokens reach the LLM unchanged and no VTS weight is used.
FIXED_RULE_STRATEGIES = ("uniform", "random", "parameter_free", "temporal_redundancy", "centre_distance", "dense")

# VidCom²-style frame budgets: temperature of the softmax over frame uniqueness (a cosine distance, in [0, 2]).
CENTRE_DISTANCE_TEMPERATURE = 0.01


# Every config field VTS reads; the sampler re-validates them whenever one changes (they may be set at run time).
VTS_FIELDS = (
    "vts_keep_ratio",
    "vts_strategy",
    "vts_train_selection",
    "vts_query_pooling",
    "vts_temperature",
    "vts_gumbel_temperature",
    "vts_weight_temperature",
    "vts_reduction_dim",
    "vts_keep_positions",
    "vts_min_tokens_per_frame",
)


def _real(config, name: str, hint: str = "") -> float:
    """The field as a float; a string, bool or non-number is an error that names the field."""
    value = getattr(config, name)
    try:
        if isinstance(value, (str, bytes, bool)):
            raise TypeError
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}.{hint}") from None


def validate_vts_config(config) -> None:
    """Raise a clear error for VTS config values that cannot work."""
    # `0 < x <= 1` is False for NaN, so NaN is rejected too.
    rho = _real(config, "vts_keep_ratio", ' (vts_strategy = "dense" turns sampling off.)')
    if not 0.0 < rho <= 1.0:
        raise ValueError(f"vts_keep_ratio (rho) must be in (0, 1], got {config.vts_keep_ratio}.")
    if config.vts_strategy not in VTS_STRATEGIES:
        raise ValueError(f"vts_strategy must be one of {VTS_STRATEGIES}, got {config.vts_strategy!r}.")
    if config.vts_train_selection not in VTS_TRAIN_SELECTIONS:
        raise ValueError(
            f"vts_train_selection must be one of {VTS_TRAIN_SELECTIONS}, got {config.vts_train_selection!r}."
        )
    if config.vts_query_pooling not in VTS_QUERY_POOLINGS:
        raise ValueError(f"vts_query_pooling must be one of {VTS_QUERY_POOLINGS}, got {config.vts_query_pooling!r}.")
    for name in ("vts_temperature", "vts_gumbel_temperature", "vts_weight_temperature"):
        value = _real(config, name)
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a finite number > 0, got {getattr(config, name)}.")
    dim = config.vts_reduction_dim
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or dim < 1:
        raise ValueError(f"vts_reduction_dim must be an integer >= 1, got {dim!r}.")
    # A string such as "false" would be truthy; only real booleans (or 0 / 1) are accepted.
    if isinstance(config.vts_keep_positions, str) or config.vts_keep_positions not in (True, False):
        raise ValueError(f"vts_keep_positions must be True or False, got {config.vts_keep_positions!r}.")
    # Only backbones whose prompts name every frame (GroundVTS-Q3's "<t seconds>" markers) have this field.
    floor = getattr(config, "vts_min_tokens_per_frame", 0)
    if isinstance(floor, bool) or not isinstance(floor, numbers.Integral) or floor < 0:
        raise ValueError(f"vts_min_tokens_per_frame must be an integer >= 0, got {floor!r}.")


def num_kept(num_tokens: int, keep_ratio: float) -> int:
    """K = ceil(rho * N), at least 1 when there is anything to keep."""
    # The epsilon guards against float noise such as 0.5 * 6 = 3.0000000000000004 -> 4.
    return min(num_tokens, max(1, math.ceil(keep_ratio * num_tokens - 1e-9))) if num_tokens else 0


@dataclass
class VideoTokenSelection:
    """What VTS did to one video: `keep[i]` says whether token i reaches the LLM."""

    keep: torch.Tensor  # (N,) bool
    # (N,) relevance to the query (w for learned strategies, cosine for parameter_free); None for query-agnostic ones
    scores: torch.Tensor | None
    embeds: torch.Tensor  # (K, D) what the LLM receives for the kept tokens, in original order


class VisualTokenSampler(nn.Module):
    """Query-guided token sampler. Reads its hyper-parameters from `config` at call time,
    so `model.config.vts_keep_ratio = 0.25` takes effect without rebuilding the model."""

    def __init__(self, config, hidden_size: int):
        super().__init__()
        self.config = config
        reduction_dim = int(config.vts_reduction_dim)
        self.wv = nn.Linear(hidden_size, reduction_dim, bias=False)
        self.wq = nn.Linear(hidden_size, reduction_dim, bias=False)
        self.mlp = nn.Sequential(nn.Linear(hidden_size, hidden_size), nn.ReLU(), nn.Linear(hidden_size, hidden_size))
        self._validated_values: tuple | None = None

    def check_config(self) -> None:
        """Validate the VTS config fields if any changed since the last check: they can be set at run time
        (`model.config.vts_keep_ratio = 0`), after the config's own validation ran."""
        values = tuple(getattr(self.config, name, None) for name in VTS_FIELDS)
        # Only values that passed are remembered, so an invalid value is re-checked (and rejected) on every call.
        if values != self._validated_values:
            validate_vts_config(self.config)
            self._validated_values = values

    def forward(
        self,
        video_embeds: list[torch.Tensor],
        queries: torch.Tensor,
        frame_sizes: list[int],
        generator: torch.Generator | None = None,
    ) -> list[VideoTokenSelection]:
        """Select and re-weight the tokens of each video.

        video_embeds: one (N_i, D) tensor per video, tokens in temporal-major order.
        queries: (num_videos, D) mean query embedding of the sample each video belongs to.
        frame_sizes: tokens per frame (per temporal step) of each video, for frame-level strategies.
        """
        self.check_config()
        strategy = self.config.vts_strategy
        rho = float(self.config.vts_keep_ratio)
        floor = int(getattr(self.config, "vts_min_tokens_per_frame", 0))
        selections = []
        for video, query, frame_size in zip(video_embeds, queries, frame_sizes):
            if strategy == "dense":
                keep = torch.ones(video.shape[0], dtype=torch.bool, device=video.device)
                selections.append(VideoTokenSelection(keep=keep, scores=None, embeds=video))
            elif strategy == "uniform":
                selections.append(self._fixed(video, _uniform_frames(video.shape[0], frame_size, rho), None))
            elif strategy == "random":
                keep = _random_tokens(video.shape[0], rho, generator, frame_size, floor)
                selections.append(self._fixed(video, keep, None))
            elif strategy == "parameter_free":
                scores = F.cosine_similarity(video.float(), query.float()[None], dim=-1)
                keep = budget_mask(scores, num_kept(video.shape[0], rho), frame_size, floor)
                selections.append(self._fixed(video, keep, scores))
            elif strategy == "temporal_redundancy":
                selections.append(self._fixed(video, temporal_redundancy_keep(video, frame_size, rho), None))
            elif strategy == "centre_distance":
                selections.append(self._fixed(video, centre_distance_keep(video, frame_size, rho), None))
            else:
                selections.append(self._learned(video, query, frame_size, rho, strategy, generator, floor))
        return selections

    @staticmethod
    def _fixed(video: torch.Tensor, keep: torch.Tensor, scores: torch.Tensor | None) -> VideoTokenSelection:
        keep = keep.to(video.device)
        return VideoTokenSelection(keep=keep, scores=scores, embeds=video[keep])

    def relevance(self, video: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        """w = softmax((Wv v)(Wq q) / tau) over the tokens of one video (eqs. 2-3), in float32."""
        logits = (self.wv(video) @ self.wq(query.to(video.dtype))).float()
        return torch.softmax(logits / float(self.config.vts_temperature), dim=-1)

    def _learned(self, video, query, frame_size, rho, strategy, generator, floor=0) -> VideoTokenSelection:
        weights = self.relevance(video, query)
        if strategy == "frame":
            frame_scores = weights.view(-1, frame_size).mean(-1)
            kept_frames = _topk_mask(frame_scores, num_kept(frame_scores.shape[0], rho))
            hard = kept_frames.repeat_interleave(frame_size)
            soft_hard = hard.to(weights.dtype)
        else:
            hard = budget_mask(weights, num_kept(weights.shape[0], rho), frame_size, floor)
            soft_hard = hard.to(weights.dtype)
            if self.training and self.config.vts_train_selection == "gumbel":
                # Straight-through Gumbel-softmax: the forward value stays the hard top-K mask,
                # the gradient flows through the relaxed z into Wv / Wq.
                z = torch.softmax((torch.log(weights + 1e-20) + _gumbel_like(weights, generator))
                                  / float(self.config.vts_gumbel_temperature), dim=-1)
                soft_hard = soft_hard + z - z.detach()
        scaled = torch.exp(weights / float(self.config.vts_weight_temperature)) * soft_hard
        # The denominator runs over all tokens so that dropped tokens still receive STE gradient.
        token_weights = (scaled / scaled.sum())[hard]
        kept = video[hard]
        embeds = token_weights.to(kept.dtype)[:, None] * self.mlp(kept)
        return VideoTokenSelection(keep=hard, scores=weights, embeds=embeds)


def _topk_mask(scores: torch.Tensor, k: int) -> torch.Tensor:
    keep = torch.zeros(scores.shape[0], dtype=torch.bool, device=scores.device)
    keep[torch.topk(scores, k, sorted=False).indices] = True
    return keep


def budget_mask(scores: torch.Tensor, k: int, frame_size: int, min_per_frame: int = 0) -> torch.Tensor:
    """The token-level selection rule: the top-`k` of `scores`, after first keeping the `min_per_frame` best tokens
    of every frame (`frame_size` consecutive tokens), so that no frame is left without a token. The floor is part of
    the budget `k`, so it raises (naming `vts_min_tokens_per_frame`) when the frames need more than `k` tokens."""
    if not min_per_frame:
        return _topk_mask(scores, k)
    num_frames = scores.shape[0] // frame_size
    per_frame = min(min_per_frame, frame_size)
    if per_frame * num_frames > k:
        raise ValueError(
            f"vts_min_tokens_per_frame={min_per_frame} needs {per_frame * num_frames} tokens for a video with "
            f"{num_frames} frames (temporal patches), more than its budget K = ceil(rho * N) = {k} of N = "
            f"{scores.shape[0]} tokens: lower vts_min_tokens_per_frame (0 turns the floor off) or raise vts_keep_ratio."
        )
    frame_best = scores.view(num_frames, frame_size).topk(per_frame, dim=-1).indices
    frame_best = frame_best + torch.arange(num_frames, device=scores.device)[:, None] * frame_size
    keep = torch.zeros(scores.shape[0], dtype=torch.bool, device=scores.device)
    keep[frame_best.flatten()] = True
    rest = k - per_frame * num_frames
    if rest:
        keep[torch.topk(scores.masked_fill(keep, float("-inf")), rest, sorted=False).indices] = True
    return keep


def _uniform_frames(num_tokens: int, frame_size: int, rho: float) -> torch.Tensor:
    """Keep ceil(rho * F) evenly spaced whole frames (rho = 0.5 at 2 fps is 1 fps)."""
    num_frames = num_tokens // frame_size
    k = num_kept(num_frames, rho)
    frames = torch.zeros(num_frames, dtype=torch.bool)
    frames[(torch.arange(k) * num_frames) // k] = True
    return frames.repeat_interleave(frame_size)


def _random_tokens(
    num_tokens: int, rho: float, generator: torch.Generator | None, frame_size: int = 1, min_per_frame: int = 0
) -> torch.Tensor:
    if min_per_frame:
        # Random scores through the same floor as the learned selection.
        return budget_mask(torch.rand(num_tokens, generator=generator), num_kept(num_tokens, rho), frame_size, min_per_frame)
    keep = torch.zeros(num_tokens, dtype=torch.bool)
    keep[torch.randperm(num_tokens, generator=generator)[: num_kept(num_tokens, rho)]] = True
    return keep


def _frames(video: torch.Tensor, frame_size: int) -> torch.Tensor:
    """(N, D) temporal-major tokens -> (F, frame_size, D) in float32."""
    if frame_size < 1 or video.shape[0] % frame_size:
        raise ValueError(f"A video of {video.shape[0]} tokens does not split into frames of {frame_size} tokens.")
    return video.float().view(-1, frame_size, video.shape[-1])


def _stable_topk_mask(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Top-k with ties broken toward the earlier token, so the selection is deterministic."""
    keep = torch.zeros(scores.shape[0], dtype=torch.bool, device=scores.device)
    keep[torch.sort(scores, descending=True, stable=True).indices[:k]] = True
    return keep


def temporal_redundancy_keep(video: torch.Tensor, frame_size: int, rho: float) -> torch.Tensor:
    """EVS-style keep mask: one global top-K of each token's dissimilarity 1 - cos(v[t, i], v[t-1, i]) to the same
    spatial patch of the previous frame; the first frame scores +inf, so it is kept whole whenever K covers it."""
    frames = _frames(video, frame_size)
    dissimilarity = torch.full(frames.shape[:2], float("inf"), device=frames.device)
    dissimilarity[1:] = 1 - F.cosine_similarity(frames[1:], frames[:-1], dim=-1)
    return _stable_topk_mask(dissimilarity.flatten(), num_kept(video.shape[0], rho))


def centre_distance_keep(video: torch.Tensor, frame_size: int, rho: float) -> torch.Tensor:
    """VidCom²-style keep mask: per-frame budgets from a softmax over frame uniqueness, then in each frame the tokens
    farthest from the video-level and the frame-level mean feature; exactly K per video, >= 1 per frame if K >= F."""
    frames = _frames(video, frame_size)
    frame_means = frames.mean(1)
    from_video = 1 - F.cosine_similarity(frames, frame_means.mean(0), dim=-1)  # (F, M)
    from_frame = 1 - F.cosine_similarity(frames, frame_means[:, None], dim=-1)
    budgets = _frame_budgets(from_video.mean(1), num_kept(video.shape[0], rho), frame_size)
    order = torch.sort(from_video + from_frame, dim=1, descending=True, stable=True).indices
    ranks_kept = torch.arange(frame_size, device=frames.device)[None] < budgets.to(frames.device)[:, None]
    return torch.zeros_like(ranks_kept).scatter(1, order, ranks_kept).flatten()


def _frame_budgets(uniqueness: torch.Tensor, k: int, frame_size: int) -> torch.Tensor:
    """Tokens kept per frame, summing to k. VidCom²: frame t keeps rho * (1 + softmax(u / T)_t - 1/F) of its tokens,
    i.e. k is shared in proportion to 1 + softmax(u / T)_t - 1/F; here rounded to integers in [1, frame_size]."""
    num_frames = uniqueness.shape[0]
    shares = 1 + torch.softmax(uniqueness.double().cpu() / CENTRE_DISTANCE_TEMPERATURE, 0) - 1 / num_frames
    if k < num_frames:  # fewer tokens than frames: one token in each of the k most unique frames
        return _stable_topk_mask(shares, k).long()
    return _apportion(k * shares / shares.sum(), k, 1, frame_size)


def _apportion(ideal: torch.Tensor, total: int, low: int, high: int) -> torch.Tensor:
    """Integers in [low, high] summing to `total` (feasible: low * n <= total <= high * n), close to `ideal`:
    rounded down and clamped, then one more to the frames furthest below their ideal (or one fewer to those
    furthest above it) until the sum is right; ties go to the earlier frame."""
    counts = ideal.floor().long().clamp(low, high)
    while (missing := total - int(counts.sum())) != 0:
        step = 1 if missing > 0 else -1
        room = counts < high if step > 0 else counts > low
        gap = torch.where(room, (ideal - counts) * step, -math.inf)
        chosen = torch.sort(gap, descending=True, stable=True).indices[: min(abs(missing), int(room.sum()))]
        counts[chosen] += step
    return counts


def _gumbel_like(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    uniform = torch.rand(x.shape, dtype=x.dtype, device=x.device, generator=generator)
    return -torch.log((-torch.log(uniform.clamp_min(1e-20))).clamp_min(1e-20))
