"""Backbone-independent plumbing around VTS: which tokens form the query, and how the selected
video tokens are physically removed from (and results put back into) a padded batch.

Hub-facing: copied flat next to the weights together with the modelling files.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .vts import VideoTokenSelection, VisualTokenSampler


def query_token_mask(
    vision_tokens: torch.Tensor,
    attention_mask: torch.Tensor | None,
    query_mask: torch.Tensor | None,
    labels: torch.Tensor | None,
    pooling: str,
) -> torch.Tensor:
    """(B, L) bool: the tokens whose input embeddings are averaged into the VTS query.

    Never a vision token, a padding token or a token with a training label (the answer).
    `pooling="query_mask"` uses the processor's mask where a row has one; `"prompt"` (the official
    GroundVTS behaviour) always uses every remaining prompt token.
    """
    prompt = ~vision_tokens
    if attention_mask is not None:
        prompt &= attention_mask.bool()
    if labels is not None:
        prompt &= labels.eq(-100)
    if pooling == "prompt" or query_mask is None:
        return prompt
    chosen = prompt & query_mask.bool()
    # A row whose query mask selects nothing (e.g. a video-only prompt) falls back to its prompt.
    return torch.where(chosen.any(dim=1, keepdim=True), chosen, prompt)


def pool_query(text_embeds: torch.Tensor, token_mask: torch.Tensor) -> torch.Tensor:
    """Mean input embedding of the query tokens of each row: (B, L, D), (B, L) -> (B, D)."""
    weights = token_mask.to(text_embeds.dtype).unsqueeze(-1)
    return (text_embeds * weights).sum(1) / weights.sum(1).clamp_min(1)


def video_rows(video_tokens: torch.Tensor, tokens_per_video: list[int]) -> torch.Tensor:
    """Batch row of each video, given the (B, L) mask of video tokens in flattened order."""
    rows = video_tokens.nonzero()[:, 0]
    if rows.numel() != sum(tokens_per_video):
        raise ValueError(
            f"The input has {rows.numel()} video tokens but the videos provide {sum(tokens_per_video)} features; "
            "build inputs with the GroundVTS processor so both agree."
        )
    starts = torch.tensor([0] + tokens_per_video[:-1], device=rows.device).cumsum(0)
    return rows[starts]


def run_vts(
    sampler: VisualTokenSampler,
    video_embeds: list[torch.Tensor],
    video_tokens: torch.Tensor,
    text_embeds: torch.Tensor,
    query_tokens: torch.Tensor,
    frame_sizes: list[int],
    attention_mask: torch.Tensor | None,
) -> tuple[list[VideoTokenSelection], torch.Tensor]:
    """Run VTS for every video of the batch; returns the selections and the (B, L) mask of
    input tokens that reach the language model: every attended non-video token and the kept video
    tokens (padding is dropped too, so the pruned batch is as short as its longest row)."""
    rows = video_rows(video_tokens, [v.shape[0] for v in video_embeds])
    queries = pool_query(text_embeds, query_tokens)[rows]
    selections = sampler(video_embeds, queries, frame_sizes)
    token_keep = ~video_tokens
    token_keep[video_tokens] = torch.cat([s.keep for s in selections])
    if attention_mask is not None:
        token_keep &= attention_mask.bool()
    return selections, token_keep


@dataclass
class PrunedLayout:
    """Where each token of the pruned batch comes from.

    index[b, j] is the input position held by slot j of row b; slots with valid=False are fillers
    (rows that lost more tokens are shorter) and are masked out. Fillers sit on the padding side,
    so left-padded prompts stay end-aligned for generation.
    """

    index: torch.Tensor  # (B, L') long
    valid: torch.Tensor  # (B, L') bool
    input_length: int

    @classmethod
    def from_keep(cls, token_keep: torch.Tensor, attention_mask: torch.Tensor | None) -> "PrunedLayout":
        left = attention_mask is None or bool(attention_mask[:, -1].all())
        counts = token_keep.sum(1)
        new_length = int(counts.max())
        # A stable sort moves kept positions to one end without changing their order.
        key = token_keep.long() if left else (~token_keep).long()
        order = torch.sort(key, dim=1, stable=True).indices
        slots = torch.arange(new_length, device=token_keep.device)[None]
        if left:
            index = order[:, -new_length:]
            valid = slots >= (new_length - counts)[:, None]
        else:
            index = order[:, :new_length]
            valid = slots < counts[:, None]
        return cls(index=index, valid=valid, input_length=token_keep.shape[1])

    def gather(self, x: torch.Tensor, dim: int) -> torch.Tensor:
        """Gather along the sequence axis `dim`; the batch axis is the one just before it."""
        shape = [1] * x.dim()
        shape[dim - 1], shape[dim] = self.index.shape
        index = self.index.view(shape).expand(*x.shape[:dim], self.index.shape[1], *x.shape[dim + 1 :])
        return torch.gather(x, dim, index)

    def attention_mask(self, attention_mask: torch.Tensor | None) -> torch.Tensor:
        mask = self.valid.long()
        if attention_mask is not None:
            mask = mask * self.gather(attention_mask, 1).long()
        return mask

    def scatter_back(self, hidden: torch.Tensor) -> torch.Tensor:
        """(B, L', D) -> (B, L, D), zeros where a token was removed."""
        full = hidden.new_zeros(hidden.shape[0], self.input_length, *hidden.shape[2:])
        rows = torch.arange(hidden.shape[0], device=hidden.device)[:, None].expand_as(self.index)
        full[rows[self.valid], self.index[self.valid]] = hidden[self.valid]
        return full


def contiguous_positions(attention_mask: torch.Tensor, rows: torch.Tensor, position_ids: torch.Tensor) -> torch.Tensor:
    """The "w/o PE" ablation: rows in `rows` get 0, 1, 2, ... over their attended tokens on every
    position axis, discarding the dense-sampling positions. position_ids: (..., B, L')."""
    sequential = (attention_mask.long().cumsum(-1) - 1).clamp_min(0).to(position_ids.dtype)
    return torch.where(rows[:, None], sequential, position_ids)


def items_per_row(tokens_per_row: list[int], tokens_per_item: list[int], name: str) -> list[int]:
    """How many consecutive visual items (videos, images, frames) belong to each batch row, given each row's
    number of placeholder tokens and each item's, both in order of appearance."""
    counts, item = [], 0
    for row, total in enumerate(tokens_per_row):
        start, covered = item, 0
        while covered < total and item < len(tokens_per_item):
            covered += tokens_per_item[item]
            item += 1
        if covered != total:
            raise ValueError(
                f"`{name}` does not match the placeholder tokens of row {row} ({total} tokens, the items cover "
                f"{covered}); build inputs with the GroundVTS processor so both agree."
            )
        counts.append(item - start)
    if item != len(tokens_per_item):
        raise ValueError(
            f"`{name}` describes {len(tokens_per_item)} items but the batch's placeholder tokens use only {item}; "
            "build inputs with the GroundVTS processor so both agree."
        )
    return counts


def repeat_row_blocks(values, block_sizes: list[int], expand_size: int):
    """Repeat each batch row's consecutive block of `values` (dim 0) `expand_size` times, keeping the blocks in
    order: blocks [A1 A2 | B] with expand_size 2 give [A1 A2 A1 A2 | B B]. This is how per-video and per-patch
    inputs must follow generate's `repeat_interleave` of the (batch, ...) inputs. Lists stay lists."""
    if not torch.is_tensor(values):
        return repeat_row_blocks(torch.as_tensor(values), block_sizes, expand_size).tolist()
    blocks = values.split(block_sizes)
    return torch.cat([block for block in blocks for _ in range(expand_size)])
