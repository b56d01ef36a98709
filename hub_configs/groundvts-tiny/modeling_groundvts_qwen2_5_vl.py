"""GroundVTS-Q: Qwen2.5-VL with Visual Token Sampling (Hub-facing, flat, relative imports only).

Only the inner model's `forward` changes: after the video features are scattered into the input
embeddings, VTS picks the tokens to keep and the unselected video tokens are physically removed
before the language model (its KV cache holds only kept tokens). Kept tokens keep their dense
M-RoPE (t, h, w) positions. The last hidden state is scattered back to the input length (zeros
where a token was removed) so that logits line up with `input_ids` and `labels`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from transformers import Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLModel
from transformers.conversion_mapping import (
    get_checkpoint_conversion_mapping,
    register_checkpoint_conversion_mapping,
)
from transformers.core_model_loading import WeightRenaming
from transformers.modeling_outputs import BaseModelOutputWithPast, CausalLMOutputWithPast
from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import Qwen2_5_VLPreTrainedModel
from transformers.utils import can_return_tuple

from .configuration_groundvts_qwen2_5_vl import GroundVTSQwen2_5_VLConfig
from .groundvts_mixin import GroundVTSForConditionalGenerationMixin
from .mrope import pretrained_rope_index
from .token_pruning import (
    PrunedLayout,
    contiguous_positions,
    items_per_row,
    query_token_mask,
    repeat_row_blocks,
    run_vts,
)
from .vts import VisualTokenSampler


# transformers 5.23 has no Qwen2.5-VL-specific output classes (Qwen2_5_VLModel and its ForConditionalGeneration
# return plain BaseModelOutputWithPast / CausalLMOutputWithPast), so ours extend those and add `rope_deltas`.
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


class GroundVTSQwen2_5_VLModel(Qwen2_5_VLModel):
    config_class = GroundVTSQwen2_5_VLConfig

    def __init__(self, config: GroundVTSQwen2_5_VLConfig):
        super().__init__(config)
        self.vts = VisualTokenSampler(config, config.text_config.hidden_size)
        self.post_init()

    def get_rope_index(
        self,
        input_ids: torch.LongTensor | None,
        mm_token_type_ids: torch.IntTensor,
        image_grid_thw: torch.LongTensor | None = None,
        video_grid_thw: torch.LongTensor | None = None,
        second_per_grid_ts: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        **kwargs,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # Text after a vision block continues at the block's largest position + 1, the rule the pretrained
        # weights were trained with; stock 5.23 advances by max(h, w) instead (mrope.py, upstream #45381).
        return pretrained_rope_index(
            mm_token_type_ids,
            image_grid_thw,
            video_grid_thw,
            second_per_grid_ts,
            attention_mask,
            self.config.vision_config.spatial_merge_size,
            self.config.vision_config.tokens_per_second,
        )

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
        `mm_token_type_ids` (1 image, 2 video), else like stock Qwen2.5-VL from the embeddings (equal to the
        placeholder token's embedding)."""
        if input_ids is not None:
            return input_ids == self.config.image_token_id, input_ids == self.config.video_token_id
        if mm_token_type_ids is not None:
            types = mm_token_type_ids.to(inputs_embeds.device)
            return types == 1, types == 2
        image_mask, video_mask = self.get_placeholder_mask(None, inputs_embeds=inputs_embeds)
        return image_mask[..., 0], video_mask[..., 0]

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        past_key_values: Any = None,
        inputs_embeds: torch.Tensor | None = None,
        use_cache: bool | None = None,
        pixel_values: torch.Tensor | None = None,
        pixel_values_videos: torch.Tensor | None = None,
        image_grid_thw: torch.LongTensor | None = None,
        video_grid_thw: torch.LongTensor | None = None,
        mm_token_type_ids: torch.IntTensor | None = None,
        second_per_grid_ts: torch.Tensor | None = None,
        query_mask: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        return_vts_selection: bool = False,
        prompt_mask: torch.Tensor | None = None,
        **kwargs,
    ) -> tuple | GroundVTSModelOutputWithPast:
        r"""
        query_mask (`torch.Tensor` of shape `(batch_size, sequence_length)`, *optional*):
            1 on the tokens of the user's question (from the GroundVTS processor); their mean input
            embedding is the VTS query. Without it, every prompt token outside the vision tokens is used.
        labels (`torch.LongTensor`, *optional*):
            Only used to keep labelled tokens (the answer) out of the VTS query.
        return_vts_selection (`bool`, *optional*):
            Also return per-video keep masks and relevance scores.
        prompt_mask (`torch.Tensor` of shape `(batch_size, sequence_length)`, *optional*):
            1 on prompt tokens, 0 on tokens generated after the prompt; tokens marked 0 never join the VTS query,
            so the selection depends on the prompt only. `generate` maintains it; without it every token counts
            as prompt.

        With `inputs_embeds` instead of `input_ids`, the vision tokens are located from `mm_token_type_ids`
        (or, without it, by comparing the embeddings with the placeholder tokens' embeddings) and the query is
        pooled from the given embeddings.
        """
        if inputs_embeds is None:
            inputs_embeds = self.get_input_embeddings()(input_ids)
        text_embeds = inputs_embeds
        image_tokens = video_tokens = None
        if pixel_values is not None or pixel_values_videos is not None:
            image_tokens, video_tokens = self.vision_token_masks(input_ids, text_embeds, mm_token_type_ids)

        if pixel_values is not None:
            image_embeds = torch.cat(
                self.get_image_features(pixel_values, image_grid_thw, return_dict=True).pooler_output, dim=0
            )
            image_embeds = image_embeds.to(inputs_embeds.device, inputs_embeds.dtype)
            if int(image_tokens.sum()) != image_embeds.shape[0]:
                raise ValueError(
                    f"Image features and image tokens do not match, tokens: {int(image_tokens.sum())}, "
                    f"features: {image_embeds.shape[0]}"
                )
            inputs_embeds = inputs_embeds.masked_scatter(image_tokens.unsqueeze(-1), image_embeds)

        selections = token_keep = None
        if pixel_values_videos is not None:
            video_embeds = [
                v.to(inputs_embeds.device, inputs_embeds.dtype)
                for v in self.get_video_features(pixel_values_videos, video_grid_thw, return_dict=True).pooler_output
            ]
            vision_tokens = video_tokens | image_tokens
            query_tokens = query_token_mask(
                vision_tokens, attention_mask, query_mask, labels, self.config.vts_query_pooling, prompt_mask
            )
            frame_sizes = (video_grid_thw[:, 1:].prod(-1) // self.visual.spatial_merge_size**2).tolist()
            selections, token_keep = run_vts(
                self.vts, video_embeds, video_tokens, text_embeds, query_tokens, frame_sizes, attention_mask
            )
            kept_embeds = torch.cat([s.embeds for s in selections]).to(inputs_embeds.dtype)
            inputs_embeds = inputs_embeds.masked_scatter((video_tokens & token_keep).unsqueeze(-1), kept_embeds)

        if position_ids is None:
            position_ids = self.compute_3d_position_ids(
                input_ids=input_ids,
                image_grid_thw=image_grid_thw,
                video_grid_thw=video_grid_thw,
                second_per_grid_ts=second_per_grid_ts,
                inputs_embeds=inputs_embeds,
                attention_mask=attention_mask,
                past_key_values=past_key_values,
                mm_token_type_ids=mm_token_type_ids,
            )

        layout = None
        pruned_mask = pruned_positions = None
        if token_keep is not None and (not bool(token_keep.all()) or not self.config.vts_keep_positions):
            if position_ids is None:
                raise ValueError(
                    "GroundVTS needs M-RoPE positions for video inputs: pass `mm_token_type_ids` (the processor "
                    "returns it) or `position_ids`."
                )
            layout = PrunedLayout.from_keep(token_keep, attention_mask)
            inputs_embeds = layout.gather(inputs_embeds, 1)
            pruned_mask = layout.attention_mask(attention_mask)
            pruned_positions = layout.gather(position_ids, 2)
            if not self.config.vts_keep_positions:
                pruned_positions = contiguous_positions(pruned_mask, video_tokens.any(1), pruned_positions)
            # Pruned positions have gaps, so never let the LM read them as packed sequences: pass
            # only the (t, h, w) rows and always an explicit mask.
            attention_mask, position_ids = pruned_mask, pruned_positions[-3:]
            # Decode continues at (attended tokens so far) + rope_deltas, the stock convention.
            self.rope_deltas = pruned_positions[-3:].amax(dim=(0, 2)).unsqueeze(1) + 1 - pruned_mask.sum(1, keepdim=True)

        outputs = self.language_model(
            input_ids=None,
            position_ids=position_ids,
            attention_mask=attention_mask,
            past_key_values=past_key_values,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            return_dict=True,
            **kwargs,
        )
        hidden = outputs.last_hidden_state
        return GroundVTSModelOutputWithPast(
            last_hidden_state=layout.scatter_back(hidden) if layout is not None else hidden,
            past_key_values=outputs.past_key_values,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            rope_deltas=self.rope_deltas,
            token_keep=token_keep,
            pruned_attention_mask=pruned_mask,
            pruned_position_ids=pruned_positions,
            video_keep=tuple(s.keep for s in selections) if selections and return_vts_selection else None,
            video_scores=tuple(s.scores for s in selections) if selections and return_vts_selection else None,
        )


class GroundVTSQwen2_5_VLForConditionalGeneration(
    GroundVTSForConditionalGenerationMixin, Qwen2_5_VLForConditionalGeneration
):
    config_class = GroundVTSQwen2_5_VLConfig
    # Generated text continues one past the largest of the t, h, w rows (the pretrained M-RoPE rule).
    _joint_position_rows = 3

    def __init__(self, config: GroundVTSQwen2_5_VLConfig):
        # Skip the parent's __init__, which would build a throwaway stock inner model.
        Qwen2_5_VLPreTrainedModel.__init__(self, config)
        self.model = GroundVTSQwen2_5_VLModel(config)
        self.lm_head = nn.Linear(config.text_config.hidden_size, config.text_config.vocab_size, bias=False)
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        past_key_values: Any = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        pixel_values: torch.Tensor | None = None,
        pixel_values_videos: torch.Tensor | None = None,
        image_grid_thw: torch.LongTensor | None = None,
        video_grid_thw: torch.LongTensor | None = None,
        mm_token_type_ids: torch.IntTensor | None = None,
        second_per_grid_ts: torch.Tensor | None = None,
        query_mask: torch.Tensor | None = None,
        return_vts_selection: bool = False,
        logits_to_keep: int | torch.Tensor = 0,
        prompt_mask: torch.Tensor | None = None,
        **kwargs,
    ) -> tuple | GroundVTSCausalLMOutputWithPast:
        r"""Same as Qwen2.5-VL's forward, plus `query_mask`, `return_vts_selection` and `prompt_mask` (see the
        inner model). `return_dict=False` returns the output's `to_tuple()`, as in Qwen2.5-VL."""
        outputs = self.model(
            input_ids=input_ids,
            pixel_values=pixel_values,
            pixel_values_videos=pixel_values_videos,
            image_grid_thw=image_grid_thw,
            video_grid_thw=video_grid_thw,
            second_per_grid_ts=second_per_grid_ts,
            mm_token_type_ids=mm_token_type_ids,
            position_ids=position_ids,
            attention_mask=attention_mask,
            past_key_values=past_key_values,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            query_mask=query_mask,
            labels=labels,
            return_vts_selection=return_vts_selection,
            prompt_mask=prompt_mask,
            return_dict=True,
            **kwargs,
        )
        hidden_states = outputs.last_hidden_state
        slice_indices = slice(-logits_to_keep, None) if isinstance(logits_to_keep, int) else logits_to_keep
        logits = self.lm_head(hidden_states[:, slice_indices, :])

        loss = None
        if labels is not None:
            loss = self._vts_loss(logits, labels, outputs.token_keep, **kwargs)

        return GroundVTSCausalLMOutputWithPast(
            loss=loss,
            logits=logits,
            past_key_values=outputs.past_key_values,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            rope_deltas=outputs.rope_deltas,
            token_keep=outputs.token_keep,
            pruned_attention_mask=outputs.pruned_attention_mask,
            pruned_position_ids=outputs.pruned_position_ids,
            video_keep=outputs.video_keep,
            video_scores=outputs.video_scores,
        )

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


# transformers renames legacy checkpoint keys (`model.layers.*`, `visual.*`) only for classes it knows;
# register ours like the stock ones, or plain Qwen2.5-VL weights would load as a random LLM. The inner
# model's rule is the stock one except that it leaves `model.vts.*` alone instead of filing it under the LLM.
register_checkpoint_conversion_mapping(
    GroundVTSQwen2_5_VLForConditionalGeneration.__name__,
    get_checkpoint_conversion_mapping("Qwen2_5_VLForConditionalGeneration"),
    overwrite=True,
)
register_checkpoint_conversion_mapping(
    GroundVTSQwen2_5_VLModel.__name__,
    [WeightRenaming(source_patterns=r"^model\.(?!language_model\.|visual\.|vts\.)(.+)", target_patterns=r"model.language_model.\1")],
    overwrite=True,
)

GroundVTSQwen2_5_VLConfig.register_for_auto_class("AutoConfig")
GroundVTSQwen2_5_VLModel.register_for_auto_class("AutoModel")
GroundVTSQwen2_5_VLForConditionalGeneration.register_for_auto_class("AutoModelForImageTextToText")

__all__ = [
    "GroundVTSQwen2_5_VLConfig",
    "GroundVTSQwen2_5_VLModel",
    "GroundVTSQwen2_5_VLForConditionalGeneration",
]
