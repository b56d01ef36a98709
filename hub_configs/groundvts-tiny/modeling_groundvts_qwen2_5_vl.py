"""GroundVTS-Q: Qwen2.5-VL with Visual Token Sampling (Hub-facing, flat, relative imports only).

Only the inner model's `forward` changes: after the video features are scattered into the input
embeddings, VTS picks the tokens to keep and the unselected video tokens are physically removed
before the language model (its KV cache holds only kept tokens). Kept tokens keep their dense
M-RoPE (t, h, w) positions. The last hidden state is scattered back to the input length (zeros
where a token was removed) so that logits line up with `input_ids` and `labels`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLModel
from transformers.conversion_mapping import (
    get_checkpoint_conversion_mapping,
    register_checkpoint_conversion_mapping,
)
from transformers.core_model_loading import WeightRenaming
from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import Qwen2_5_VLPreTrainedModel
from transformers.utils import can_return_tuple

from .configuration_groundvts_qwen2_5_vl import GroundVTSQwen2_5_VLConfig
from .mrope import pretrained_rope_index
from .qwen_vl_mixin import (
    GroundVTSCausalLMOutputWithPast,
    GroundVTSModelOutputWithPast,
    GroundVTSQwenVLForConditionalGenerationMixin,
    GroundVTSQwenVLModelMixin,
)
from .vts import VisualTokenSampler


class GroundVTSQwen2_5_VLModel(GroundVTSQwenVLModelMixin, Qwen2_5_VLModel):
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
            video_embeds = self.get_video_features(pixel_values_videos, video_grid_thw, return_dict=True).pooler_output
            inputs_embeds, selections, token_keep = self.sample_video_tokens(
                video_embeds, video_grid_thw, inputs_embeds, text_embeds, video_tokens, image_tokens,
                attention_mask, query_mask, labels, prompt_mask,
            )

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

        pruned = self.prune_for_language_model(token_keep, inputs_embeds, attention_mask, position_ids, video_tokens)
        if pruned is not None:
            # Pruned positions have gaps, so never let the LM read them as packed sequences: pass
            # only the (t, h, w) rows and always an explicit mask.
            inputs_embeds, attention_mask, position_ids = pruned.inputs_embeds, pruned.attention_mask, pruned.position_ids[-3:]

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
        return self.model_output(outputs, pruned, token_keep, selections if return_vts_selection else None)


class GroundVTSQwen2_5_VLForConditionalGeneration(
    GroundVTSQwenVLForConditionalGenerationMixin, Qwen2_5_VLForConditionalGeneration
):
    config_class = GroundVTSQwen2_5_VLConfig

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
        return self._vts_causal_lm_output(outputs, labels, logits_to_keep, **kwargs)


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
