"""M-RoPE (t, h, w) positions of a Qwen2.5-VL prompt, by the rule the pretrained weights were trained with.

Hub-facing: copied flat next to the weights together with the modelling files.

Within a vision block (an image, or a video of T temporal grids of H x W merged tokens) the positions are

    t = start + floor(g * second_per_grid_t * tokens_per_second)      (g = temporal grid; 0 for images)
    h = start + row,  w = start + column

and text continues one past the **largest position of the block** (its temporal ids included). This is the rule
of Qwen2.5-VL's reference code (transformers <= 5.2, vLLM) that the released weights were trained with.
transformers 5.23's stock `get_rope_index` instead advances by max(H, W) after a vision block and ignores the
temporal extent (upstream issue 45381), which puts the question after a long video inside the video's time
range. The temporal product is evaluated as `(g * second_per_grid_t) * tokens_per_second` in the dtype of
`second_per_grid_ts`, the reference's order, so that floor() rounds identically.
"""

from __future__ import annotations

import torch

TEXT, IMAGE, VIDEO = 0, 1, 2


def vision_block_positions(
    grid_thw: torch.Tensor,
    spatial_merge_size: int,
    start: int,
    second_per_grid_t: torch.Tensor | float | None,
    tokens_per_second: float,
) -> torch.Tensor:
    """(3, T*H*W) positions of one image or video whose first token sits at `start`.

    `second_per_grid_t` None means a still image (temporal ids all `start`)."""
    t, h, w = (int(x) for x in grid_thw)
    h, w = h // spatial_merge_size, w // spatial_merge_size
    device = grid_thw.device if torch.is_tensor(grid_thw) else None
    grids = torch.arange(t, device=device)
    if second_per_grid_t is None:
        temporal = torch.zeros(t, dtype=torch.long, device=device)
    else:
        step = torch.as_tensor(second_per_grid_t, device=device)
        if not step.is_floating_point():
            step = step.float()
        temporal = (grids * step * tokens_per_second).long()
    ids = torch.stack(
        torch.meshgrid(temporal, torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
    ).reshape(3, -1)
    return ids + start


def pretrained_rope_index(
    mm_token_type_ids: torch.Tensor,
    image_grid_thw: torch.Tensor | None,
    video_grid_thw: torch.Tensor | None,
    second_per_grid_ts: torch.Tensor | None,
    attention_mask: torch.Tensor | None,
    spatial_merge_size: int,
    tokens_per_second: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions (3, B, L) and `rope_deltas` (B, 1) of a padded batch.

    `mm_token_type_ids` (B, L) says which tokens are text (0), image (1) or video (2) placeholders; images and
    videos are consumed from their grids in order of appearance, row by row (several per row allowed, also
    back to back). Padding (attention_mask 0) gets position 0 and is skipped. rope_deltas = largest position + 1
    - number of attended tokens, per row: decode steps continue at (attended tokens so far) + rope_deltas.
    """
    batch, length = mm_token_type_ids.shape
    device = mm_token_type_ids.device
    grids = {IMAGE: _queue(image_grid_thw), VIDEO: _queue(video_grid_thw)}
    video_seconds = list(second_per_grid_ts) if second_per_grid_ts is not None else None
    merge_area = spatial_merge_size**2
    position_ids = torch.zeros(3, batch, length, dtype=torch.long, device=device)
    deltas = []
    for row in range(batch):
        attended = attention_mask[row].bool() if attention_mask is not None else torch.ones(length, dtype=torch.bool, device=device)
        types = mm_token_type_ids[row][attended].tolist()
        pieces, next_pos, i = [], 0, 0
        while i < len(types):
            kind = types[i]
            run = i
            while run < len(types) and types[run] == kind:
                run += 1
            if kind == TEXT:
                pieces.append(torch.arange(next_pos, next_pos + run - i, device=device).expand(3, -1))
                next_pos += run - i
            else:
                covered = 0
                while covered < run - i:
                    if not grids[kind]:
                        raise ValueError(
                            f"Row {row} has more {'video' if kind == VIDEO else 'image'} placeholder tokens than "
                            f"`{'video' if kind == VIDEO else 'image'}_grid_thw` describes; build inputs with the "
                            "GroundVTS processor so both agree."
                        )
                    grid = grids[kind].pop(0)
                    step = None
                    if kind == VIDEO:
                        step = 1.0 if video_seconds is None else _next_step(video_seconds, row)
                    block = vision_block_positions(grid.to(device), spatial_merge_size, next_pos, step, tokens_per_second)
                    pieces.append(block)
                    covered += int(grid.prod()) // merge_area
                    next_pos = int(block.max()) + 1
                if covered != run - i:
                    raise ValueError(
                        f"Row {row}: a run of {run - i} vision placeholder tokens does not match the grids "
                        f"(they cover {covered}); build inputs with the GroundVTS processor so both agree."
                    )
            i = run
        positions = torch.cat(pieces, dim=1) if pieces else torch.zeros(3, 0, dtype=torch.long, device=device)
        position_ids[:, row, attended] = positions
        deltas.append(next_pos - len(types))
    return position_ids, torch.tensor(deltas, device=device).unsqueeze(1)


def _next_step(video_seconds: list, row: int):
    if not video_seconds:
        raise ValueError(
            f"Row {row} has more videos than `second_per_grid_ts` has entries; pass one value per video "
            "(the GroundVTS processor returns it)."
        )
    return video_seconds.pop(0)


def _queue(grid_thw: torch.Tensor | None) -> list[torch.Tensor]:
    return list(grid_thw) if grid_thw is not None else []
