"""What the two Qwen-VL GroundVTS members (GroundVTS-Q on Qwen2.5-VL, GroundVTS-Q3 on Qwen3-VL) share beyond the
family-wide [`GroundVTSForConditionalGenerationMixin`] (Hub-facing, flat, relative imports only).

Both backbones place each video's tokens as `<|video_pad|>` runs located by `mm_token_type_ids`, describe videos by
`video_grid_thw` (temporal patches x rows x columns of patches) and use (text,) t, h, w M-RoPE rows, so the VTS steps
around the stock forward are the same: find the vision tokens, pool the query, run VTS on each video, remove the
unselected tokens (and padding) before the language model and carry its pruned layout through `generate`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from transformers.modeling_outputs import BaseModelOutputWithPast, CausalLMOutputWithPast

from .groundvts_mixin import GroundVTSForConditionalGenerationMixin, vts_model_output
from .token_pruning import (
    PrunedLayout,
    contiguous_positions,
    items_per_row,
    query_token_mask,
    repeat_row_blocks,
    run_vts,
)
from .vts import VideoTokenSelection


# transformers 5.23 has no Qwen-VL-specific output classes (the models return plain BaseModelOutputWithPast /
# CausalLMOutputWithPast), so ours extend those and add `rope_deltas`.
@dataclass
class GroundVTSModelOutputWithPast(BaseModelOutputWithPast):
    r"""
    token_keep (`torch.BoolTensor` of shape `(batch_size, sequence_length)`):
        Which input tokens reached the language model (attended non-video tokens and kept video tokens).
    pruned_attention_mask (`torch.LongTensor` of shape `(batch_size, pruned_length)`):
        The attention mask of the sequence the language model saw (its KV cache layout).
    pruned_position_ids (`torch.LongTensor` of shape `(3 or 4, batch_size, pruned_length)`):
        The positions of the tokens the language model saw.
    video_keep (`tuple[torch.BoolTensor]`, one `(num_video_tokens,)` tensor per video):
        Per-video keep masks, in the order of the video's tokens (returned with `return_vts_selection=True`).
    video_scores (`tuple[torch.FloatTensor]`, one per video):
        Per-video relevance scores (returned with `return_vts_selection=True`).
    """

    rope_deltas: torch.LongTensor | None = None
    token_keep: torch.BoolTensor | None = None
    pruned_attention_mask: torch.LongTensor | None = None
    pruned_position_ids: torch.LongTensor | None = None
    video_keep: tuple[torch.BoolTensor, ...] | None = None
    video_scores: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class GroundVTSCausalLMOutputWithPast(CausalLMOutputWithPast):
    r"""Causal LM output with the VTS fields of [`GroundVTSModelOutputWithPast`]."""

    rope_deltas: torch.LongTensor | None = None
    token_keep: torch.BoolTensor | None = None
    pruned_attention_mask: torch.LongTensor | None = None
    pruned_position_ids: torch.LongTensor | None = None
    video_keep: tuple[torch.BoolTensor, ...] | None = None
    video_scores: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class PrunedInputs:
    """The language model's inputs after VTS: kept tokens only, in their original order."""

    layout: PrunedLayout
    inputs_embeds: torch.Tensor  # (B, L', D)
    attention_mask: torch.Tensor  # (B, L')
    position_ids: torch.Tensor  # (3 or 4, B, L'), dense (or, "w/o PE", contiguous) positions of the kept tokens


class GroundVTSQwenVLModelMixin:
    """Inner-model steps shared by GroundVTS-Q and GroundVTS-Q3; list it before the stock `Qwen*VLModel`."""

    def model_output(
        self, outputs: Any, pruned: PrunedInputs | None, token_keep: torch.Tensor | None, selections: Any
    ) -> GroundVTSModelOutputWithPast:
        """The inner model's output from the language model's: hidden states back at their dense slots, the keep
        mask and pruned layout for the outer model, and the VTS selection when `selections` is given."""
        if pruned is None:
            layout = mask = positions = None
        else:
            layout, mask, positions = pruned.layout, pruned.attention_mask, pruned.position_ids
        return vts_model_output(GroundVTSModelOutputWithPast, outputs, layout, token_keep, mask, positions, selections,
                                rope_deltas=self.rope_deltas)

    def compute_3d_position_ids(self, input_ids=None, *args, mm_token_type_ids=None, **kwargs):
        # Positions depend on the token types only, so `inputs_embeds` without `input_ids` gets them too
        # (the stock method reads `input_ids` just to know that it may compute them).
        if input_ids is None and mm_token_type_ids is not None:
            input_ids = mm_token_type_ids
        return super().compute_3d_position_ids(input_ids, *args, mm_token_type_ids=mm_token_type_ids, **kwargs)

    def vision_token_masks(
        self,
        input_ids: torch.LongTensor | None,
        inputs_embeds: torch.Tensor,
        mm_token_type_ids: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, L) bool masks of the image and the video placeholder tokens: from `input_ids`, else from
        `mm_token_type_ids` (1 image, 2 video), else like the stock model from the embeddings (equal to the
        placeholder token's embedding)."""
        if input_ids is not None:
            return input_ids == self.config.image_token_id, input_ids == self.config.video_token_id
        if mm_token_type_ids is not None:
            types = mm_token_type_ids.to(inputs_embeds.device)
            return types == 1, types == 2
        image_mask, video_mask = self.get_placeholder_mask(None, inputs_embeds=inputs_embeds)
        return image_mask[..., 0], video_mask[..., 0]

    def sample_video_tokens(
        self,
        video_embeds: list[torch.Tensor],
        video_grid_thw: torch.LongTensor,
        inputs_embeds: torch.Tensor,
        text_embeds: torch.Tensor,
        video_tokens: torch.Tensor,
        image_tokens: torch.Tensor,
        attention_mask: torch.Tensor | None,
        query_mask: torch.Tensor | None,
        labels: torch.Tensor | None,
        prompt_mask: torch.Tensor | None,
    ) -> tuple[torch.Tensor, list[VideoTokenSelection], torch.Tensor]:
        """Run VTS on every video (features in temporal-major order, one tensor per video) and write what the LLM
        receives for the kept tokens into `inputs_embeds`; returns (inputs_embeds, selections, token_keep)."""
        video_embeds = [v.to(inputs_embeds.device, inputs_embeds.dtype) for v in video_embeds]
        query_tokens = query_token_mask(
            video_tokens | image_tokens, attention_mask, query_mask, labels, self.config.vts_query_pooling, prompt_mask
        )
        # A "frame" is one temporal patch: its merged h x w tokens.
        frame_sizes = (video_grid_thw[:, 1:].prod(-1) // self.visual.spatial_merge_size**2).tolist()
        selections, token_keep = run_vts(
            self.vts, video_embeds, video_tokens, text_embeds, query_tokens, frame_sizes, attention_mask
        )
        kept_embeds = torch.cat([s.embeds for s in selections]).to(inputs_embeds.dtype)
        inputs_embeds = inputs_embeds.masked_scatter((video_tokens & token_keep).unsqueeze(-1), kept_embeds)
        return inputs_embeds, selections, token_keep

    def prune_for_language_model(
        self,
        token_keep: torch.Tensor | None,
        inputs_embeds: torch.Tensor,
        attention_mask: torch.Tensor | None,
        position_ids: torch.Tensor | None,
        video_tokens: torch.Tensor,
    ) -> PrunedInputs | None:
        """Remove the unselected video tokens and the padding (None when nothing is removed and positions stay)
        and set `rope_deltas` for decode steps that pass no positions."""
        if token_keep is None or (bool(token_keep.all()) and self.config.vts_keep_positions):
            return None
        if position_ids is None:
            raise ValueError(
                "GroundVTS needs M-RoPE positions for video inputs: pass `mm_token_type_ids` (the processor "
                "returns it) or `position_ids`."
            )
        layout = PrunedLayout.from_keep(token_keep, attention_mask)
        pruned_mask = layout.attention_mask(attention_mask)
        pruned_positions = layout.gather(position_ids, 2)
        if not self.config.vts_keep_positions:
            pruned_positions = contiguous_positions(pruned_mask, video_tokens.any(1), pruned_positions)
        # Decode continues at (attended tokens so far) + rope_deltas, the stock convention.
        self.rope_deltas = pruned_positions[-3:].amax(dim=(0, 2)).unsqueeze(1) + 1 - pruned_mask.sum(1, keepdim=True)
        return PrunedInputs(layout, layout.gather(inputs_embeds, 1), pruned_mask, pruned_positions)


class GroundVTSQwenVLForConditionalGenerationMixin(GroundVTSForConditionalGenerationMixin):
    """Outer-model overrides shared by GroundVTS-Q and GroundVTS-Q3; list it before the stock class."""

    # Generated text continues one past the largest of the t, h, w rows (the rule both Qwen-VLs were trained with).
    _joint_position_rows = 3
    _vts_output_class = GroundVTSCausalLMOutputWithPast

    def _expand_inputs_for_generation(self, expand_size=1, is_encoder_decoder=False, input_ids=None, **model_kwargs):
        # Beam search / num_return_sequences repeat every input along dim 0. That is right for (batch, ...)
        # tensors, but pixel_values(_videos) are patches and the grids / fps are per image or video (generate
        # only expands them correctly when it pre-encodes, which GroundVTS opts out of): repeat each sample's
        # whole block instead, in the order of the expanded rows.
        visual = {}
        if expand_size > 1 and input_ids is not None:
            merge = self.config.vision_config.spatial_merge_size**2
            for token_id, grid_key, pixels_key, per_item_keys in (
                (self.config.video_token_id, "video_grid_thw", "pixel_values_videos", ("second_per_grid_ts",)),
                (self.config.image_token_id, "image_grid_thw", "pixel_values", ()),
            ):
                grid = model_kwargs.get(grid_key)
                if grid is None:
                    continue
                patches = torch.as_tensor(grid).prod(-1)
                tokens = (input_ids == token_id).sum(1).tolist()
                items = items_per_row(tokens, (patches // merge).tolist(), grid_key)
                for key in (grid_key, *per_item_keys):
                    if model_kwargs.get(key) is not None:
                        visual[key] = repeat_row_blocks(model_kwargs.pop(key), items, expand_size)
                if model_kwargs.get(pixels_key) is not None:
                    patches_per_row = [int(block.sum()) for block in patches.split(items)]
                    visual[pixels_key] = repeat_row_blocks(model_kwargs.pop(pixels_key), patches_per_row, expand_size)
        input_ids, model_kwargs = super()._expand_inputs_for_generation(
            expand_size=expand_size, is_encoder_decoder=is_encoder_decoder, input_ids=input_ids, **model_kwargs
        )
        model_kwargs.update(visual)
        return input_ids, model_kwargs

    def _pruned_decode_positions(self, outputs, model_kwargs):
        # The pruned positions have 4 rows (text, t, h, w) when the prompt's did; keep the row count `generate`
        # already carries, else only the (t, h, w) rows.
        position_ids = model_kwargs.get("position_ids")
        if position_ids is not None and position_ids.shape[0] == outputs.pruned_position_ids.shape[0]:
            return outputs.pruned_position_ids
        return outputs.pruned_position_ids[-3:]
