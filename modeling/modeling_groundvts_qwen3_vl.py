"""GroundVTS-Q3: Qwen3-VL with Visual Token Sampling (Hub-facing, flat, relative imports only).

Only the inner model's `forward` changes, as in GroundVTS-Q: after the video features are scattered into the input
embeddings, VTS picks the tokens to keep and the unselected `<|video_pad|>` tokens are physically removed before the
language model. Qwen3-VL puts `<t seconds><|vision_start|>...<|vision_end|>` around every temporal patch; only the
pads are ever sampled, with one budget per video over all its patches, so timestamps and start/end tokens stay.
Kept tokens keep their stock Qwen3-VL positions (each patch is a `[1, h, w]` grid at its running text position; the
text after it continues at the block's largest position + 1, the rule Qwen3-VL was trained with, so no position
override is needed here). DeepStack: `visual_pos_masks` and every DeepStack feature are gathered with the same keep
mask, in the same order, so each kept token gets its own features (not re-weighted, see the config).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import Qwen3VLForConditionalGeneration, Qwen3VLModel
from transformers.models.qwen3_vl.modeling_qwen3_vl import Qwen3VLPreTrainedModel
from transformers.utils import can_return_tuple

from .configuration_groundvts_qwen3_vl import GroundVTSQwen3VLConfig
from .qwen_vl_mixin import (
    GroundVTSCausalLMOutputWithPast,
    GroundVTSModelOutputWithPast,
    GroundVTSQwenVLForConditionalGenerationMixin,
    GroundVTSQwenVLModelMixin,
)
from .vts import VisualTokenSampler


def deepstack_inputs(
    image_tokens: torch.Tensor,
    video_tokens: torch.Tensor,
    image_features: list[torch.Tensor] | None,
    video_features: list[torch.Tensor] | None,
    token_keep: torch.Tensor | None,
) -> tuple[torch.Tensor | None, list[torch.Tensor] | None]:
    """(visual_pos_masks, deepstack_visual_embeds) of the tokens that reach the language model.

    `*_features` hold one (num_tokens, D) tensor per DeepStack layer, the tokens in input order. Images and videos
    are interleaved in input order as in stock Qwen3-VL; then only the kept tokens' rows stay (same keep mask,
    same order as the input embeddings), and the mask marks only kept visual tokens.
    """
    if image_features is None and video_features is None:
        return None, None
    visual = torch.zeros_like(video_tokens)
    if image_features is not None:
        visual |= image_tokens
    if video_features is not None:
        visual |= video_tokens
    layers = []
    for layer in range(len(image_features if image_features is not None else video_features)):
        reference = (image_features if image_features is not None else video_features)[layer]
        joint = reference.new_zeros(int(visual.sum()), reference.shape[-1])
        if image_features is not None:
            joint[image_tokens[visual]] = image_features[layer].to(joint.dtype)
        if video_features is not None:
            joint[video_tokens[visual]] = video_features[layer].to(joint.dtype)
        layers.append(joint)
    if token_keep is not None:
        kept = token_keep[visual]
        layers = [joint[kept] for joint in layers]
        visual = visual & token_keep
    return visual, layers


class GroundVTSQwen3VLModel(GroundVTSQwenVLModelMixin, Qwen3VLModel):
    config_class = GroundVTSQwen3VLConfig

    def __init__(self, config: GroundVTSQwen3VLConfig):
        super().__init__(config)
        self.vts = VisualTokenSampler(config, config.text_config.hidden_size)
        self.post_init()

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
            1 on prompt tokens, 0 on tokens generated after the prompt (maintained by `generate`); tokens marked 0
            never join the VTS query.
        """
        if inputs_embeds is None:
            inputs_embeds = self.get_input_embeddings()(input_ids)
        text_embeds = inputs_embeds
        image_tokens = video_tokens = None
        if pixel_values is not None or pixel_values_videos is not None:
            image_tokens, video_tokens = self.vision_token_masks(input_ids, text_embeds, mm_token_type_ids)

        image_deepstack = video_deepstack = None
        if pixel_values is not None:
            image_output = self.get_image_features(pixel_values, image_grid_thw, return_dict=True)
            image_embeds = torch.cat(image_output.pooler_output, dim=0).to(inputs_embeds.device, inputs_embeds.dtype)
            if int(image_tokens.sum()) != image_embeds.shape[0]:
                raise ValueError(
                    f"Image features and image tokens do not match, tokens: {int(image_tokens.sum())}, "
                    f"features: {image_embeds.shape[0]}"
                )
            inputs_embeds = inputs_embeds.masked_scatter(image_tokens.unsqueeze(-1), image_embeds)
            image_deepstack = [torch.cat(layer, dim=0) for layer in image_output.deepstack_features]

        selections = token_keep = None
        if pixel_values_videos is not None:
            # Stock `get_video_features` forwards to `get_image_features` without `return_dict`, so a config with
            # `return_dict=False` would hand back a tuple; call the shared implementation directly.
            video_output = self.get_image_features(pixel_values_videos, video_grid_thw, return_dict=True)
            inputs_embeds, selections, token_keep = self.sample_video_tokens(
                video_output.pooler_output, video_grid_thw, inputs_embeds, text_embeds, video_tokens, image_tokens,
                attention_mask, query_mask, labels, prompt_mask,
            )
            video_deepstack = [torch.cat(layer, dim=0) for layer in video_output.deepstack_features]
        visual_pos_masks, deepstack_visual_embeds = deepstack_inputs(
            image_tokens, video_tokens, image_deepstack, video_deepstack, token_keep
        )

        if position_ids is None:
            position_ids = self.compute_3d_position_ids(
                input_ids=input_ids,
                image_grid_thw=image_grid_thw,
                video_grid_thw=video_grid_thw,
                inputs_embeds=inputs_embeds,
                attention_mask=attention_mask,
                past_key_values=past_key_values,
                mm_token_type_ids=mm_token_type_ids,
            )

        pruned = self.prune_for_language_model(token_keep, inputs_embeds, attention_mask, position_ids, video_tokens)
        if pruned is not None:
            # Pruned positions have gaps, so never let the LM read them as packed sequences: pass only the
            # (t, h, w) rows and always an explicit mask. DeepStack lands on the kept visual tokens' new slots.
            inputs_embeds, attention_mask, position_ids = pruned.inputs_embeds, pruned.attention_mask, pruned.position_ids[-3:]
            visual_pos_masks = pruned.layout.gather(visual_pos_masks, 1) & pruned.layout.valid

        outputs = self.language_model(
            input_ids=None,
            position_ids=position_ids,
            attention_mask=attention_mask,
            past_key_values=past_key_values,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            visual_pos_masks=visual_pos_masks,
            deepstack_visual_embeds=deepstack_visual_embeds,
            return_dict=True,
            **kwargs,
        )
        return self.model_output(outputs, pruned, token_keep, selections if return_vts_selection else None)


class GroundVTSQwen3VLForConditionalGeneration(
    GroundVTSQwenVLForConditionalGenerationMixin, Qwen3VLForConditionalGeneration
):
    config_class = GroundVTSQwen3VLConfig

    def __init__(self, config: GroundVTSQwen3VLConfig):
        # Skip the parent's __init__, which would build a throwaway stock inner model.
        Qwen3VLPreTrainedModel.__init__(self, config)
        self.model = GroundVTSQwen3VLModel(config)
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
        query_mask: torch.Tensor | None = None,
        return_vts_selection: bool = False,
        logits_to_keep: int | torch.Tensor = 0,
        prompt_mask: torch.Tensor | None = None,
        **kwargs,
    ) -> tuple | GroundVTSCausalLMOutputWithPast:
        r"""Same as Qwen3-VL's forward, plus `query_mask`, `return_vts_selection` and `prompt_mask` (see the
        inner model)."""
        outputs = self.model(
            input_ids=input_ids,
            pixel_values=pixel_values,
            pixel_values_videos=pixel_values_videos,
            image_grid_thw=image_grid_thw,
            video_grid_thw=video_grid_thw,
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


GroundVTSQwen3VLConfig.register_for_auto_class("AutoConfig")
GroundVTSQwen3VLModel.register_for_auto_class("AutoModel")
GroundVTSQwen3VLForConditionalGeneration.register_for_auto_class("AutoModelForImageTextToText")

__all__ = [
    "GroundVTSQwen3VLConfig",
    "GroundVTSQwen3VLModel",
    "GroundVTSQwen3VLForConditionalGeneration",
]
