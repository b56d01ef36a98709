"""GroundVTS-I: transformers-native InternVL (InternVL3.5-HF) with Visual Token Sampling
(Hub-facing, flat, relative imports only).

InternVL has no video input: the processor flattens video frames into `pixel_values` next to the still images,
and each frame becomes `FrameN: <img><IMG_CONTEXT>...</img>` with `image_seq_length` context tokens (256 per
448-px frame). VTS therefore needs to be told which context tokens are video frames and which frames form one
video; the GroundVTS-I processor supplies both:

- `mm_token_type_ids` (batch, seq): 0 text, 1 still-image tokens, 2 `<IMG_CONTEXT>` tokens of video frames;
- `video_num_frames` (num_videos,): frames per video, in order of appearance across the batch (row-major).

With both, the inner model's `forward` runs the vision tower once, scatters all image/frame features into the
input embeddings, lets VTS pick K = ceil(rho * N) tokens per video and physically removes the other video
tokens before the language model (its KV cache holds only kept tokens). Kept tokens keep their dense 1-D
positions (the attention-mask cumsum of the full prompt), so the sequence has gaps; still images and text are
never sampled. The last hidden state is scattered back to the input length (zeros where a token was removed),
so logits line up with `input_ids` and `labels`.

Without `mm_token_type_ids` and `video_num_frames` no VTS runs and the model behaves exactly like InternVL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from transformers import InternVLForConditionalGeneration, InternVLModel
from transformers.conversion_mapping import (
    get_checkpoint_conversion_mapping,
    register_checkpoint_conversion_mapping,
)
from transformers.models.internvl.modeling_internvl import (
    InternVLCausalLMOutputWithPast,
    InternVLModelOutputWithPast,
    InternVLPreTrainedModel,
)
from transformers.utils import can_return_tuple

from .configuration_groundvts_internvl import GroundVTSInternVLConfig, frame_token_count
from .groundvts_mixin import GroundVTSForConditionalGenerationMixin, vts_model_output
from .token_pruning import (
    PrunedLayout,
    contiguous_positions,
    items_per_row,
    query_token_mask,
    repeat_row_blocks,
    run_vts,
)
from .vts import VisualTokenSampler


VIDEO_TOKEN_TYPE = 2


@dataclass
class GroundVTSInternVLModelOutputWithPast(InternVLModelOutputWithPast):
    r"""
    token_keep (`torch.BoolTensor` of shape `(batch_size, sequence_length)`):
        Which input tokens reached the language model (attended non-video tokens and kept video tokens).
    pruned_attention_mask (`torch.LongTensor` of shape `(batch_size, pruned_length)`):
        The attention mask of the sequence the language model saw (its KV cache layout).
    pruned_position_ids (`torch.LongTensor` of shape `(batch_size, pruned_length)`):
        The 1-D positions of the tokens the language model saw.
    video_keep (`tuple[torch.BoolTensor]`, one `(num_video_tokens,)` tensor per video):
        Per-video keep masks, in the order of the video's tokens (returned with `return_vts_selection=True`).
    video_scores (`tuple[torch.FloatTensor]`, one per video):
        Per-video relevance scores (returned with `return_vts_selection=True`).
    """

    token_keep: torch.BoolTensor | None = None
    pruned_attention_mask: torch.LongTensor | None = None
    pruned_position_ids: torch.LongTensor | None = None
    video_keep: tuple[torch.BoolTensor, ...] | None = None
    video_scores: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class GroundVTSInternVLCausalLMOutputWithPast(InternVLCausalLMOutputWithPast):
    r"""Causal LM output with the VTS fields of [`GroundVTSInternVLModelOutputWithPast`]."""

    token_keep: torch.BoolTensor | None = None
    pruned_attention_mask: torch.LongTensor | None = None
    pruned_position_ids: torch.LongTensor | None = None
    video_keep: tuple[torch.BoolTensor, ...] | None = None
    video_scores: tuple[torch.FloatTensor, ...] | None = None


def mask_positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """Dense 1-D positions of a padded batch, as `generate` builds them: cumsum of the mask - 1, 0 on padding."""
    positions = attention_mask.long().cumsum(-1) - 1
    return positions.masked_fill(attention_mask == 0, 0)


def _frame_counts(video_num_frames: Any) -> list[int]:
    counts = video_num_frames.tolist() if hasattr(video_num_frames, "tolist") else video_num_frames
    counts = [counts] if isinstance(counts, int) else list(counts)
    if any(isinstance(c, list) for c in counts) or any(int(c) < 1 for c in counts):
        raise ValueError(
            f"`video_num_frames` must be a flat list of positive frame counts, one per video, got {counts}."
        )
    return [int(c) for c in counts]


def _check_video_layout(video_tokens: torch.Tensor, tokens_per_video: list[int]) -> None:
    """Every video's tokens must exist and lie in one batch row."""
    found, expected = int(video_tokens.sum()), sum(tokens_per_video)
    if found != expected:
        raise ValueError(
            f"`mm_token_type_ids` marks {found} video-frame tokens but `video_num_frames` describes {expected} "
            f"({len(tokens_per_video)} videos); build inputs with the GroundVTS processor so both agree."
        )
    rows = video_tokens.nonzero()[:, 0]
    ends = torch.tensor(tokens_per_video, device=rows.device).cumsum(0)
    if bool((rows[ends - torch.tensor(tokens_per_video, device=rows.device)] != rows[ends - 1]).any()):
        raise ValueError(
            "`video_num_frames` splits the video-frame tokens across batch rows: list the frame counts of the "
            "videos in order of appearance, row by row."
        )


class GroundVTSInternVLModel(InternVLModel):
    config_class = GroundVTSInternVLConfig

    def __init__(self, config: GroundVTSInternVLConfig):
        super().__init__(config)
        # The projector maps every frame token to the LLM width, so VTS works at the LLM hidden size.
        self.vts = VisualTokenSampler(config, config.text_config.hidden_size)
        # Per-row offset between the pruned KV-cache length and the next dense position (like Qwen's
        # rope_deltas): lets decode steps without `position_ids` continue at the right position.
        self.position_deltas = None
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        pixel_values: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        past_key_values: Any = None,
        inputs_embeds: torch.Tensor | None = None,
        vision_feature_layer: int | list[int] | None = None,
        vision_feature_select_strategy: str | None = None,
        mm_token_type_ids: torch.Tensor | None = None,
        video_num_frames: torch.LongTensor | list[int] | None = None,
        query_mask: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        return_vts_selection: bool = False,
        mm_encoder_outputs: dict | None = None,
        prompt_mask: torch.Tensor | None = None,
        **kwargs,
    ) -> tuple | GroundVTSInternVLModelOutputWithPast:
        r"""
        mm_token_type_ids (`torch.Tensor` of shape `(batch_size, sequence_length)`, *optional*):
            0 text, 1 still-image tokens, 2 `<IMG_CONTEXT>` tokens of video frames (from the GroundVTS processor).
        video_num_frames (`torch.LongTensor` of shape `(num_videos,)`, *optional*):
            Frames per video, in order of appearance across the batch (row-major). Each frame has
            (image_size / patch_size)^2 * downsample_ratio^2 context tokens. VTS runs only when both this and
            `mm_token_type_ids` are given; without them the model is plain InternVL.
        query_mask (`torch.Tensor` of shape `(batch_size, sequence_length)`, *optional*):
            1 on the tokens of the user's question; their mean input embedding is the VTS query. Without it,
            every prompt token outside the vision tokens is used.
        labels (`torch.LongTensor`, *optional*):
            Only used to keep labelled tokens (the answer) out of the VTS query.
        return_vts_selection (`bool`, *optional*):
            Also return per-video keep masks and relevance scores.
        prompt_mask (`torch.Tensor` of shape `(batch_size, sequence_length)`, *optional*):
            1 on prompt tokens, 0 on tokens generated after the prompt; tokens marked 0 never join the VTS query,
            so the selection depends on the prompt only. `generate` maintains it; without it every token counts
            as prompt.

        `hidden_states` and `attentions` (when requested) are in the pruned layout; `last_hidden_state` is
        scattered back to the input length.
        """
        if (input_ids is None) ^ (inputs_embeds is not None):
            raise ValueError("You must specify exactly one of input_ids or inputs_embeds")
        if pixel_values is not None and mm_encoder_outputs:
            raise ValueError("You cannot specify both pixel_values and mm_encoder_outputs at the same time")

        if inputs_embeds is None:
            inputs_embeds = self.get_input_embeddings()(input_ids)
        text_embeds = inputs_embeds
        batch_size, length = inputs_embeds.shape[:2]
        past_length = past_key_values.get_seq_length() if past_key_values is not None else 0
        if past_length == 0:
            self.position_deltas = None

        image_features = image_mask = None
        if mm_encoder_outputs and mm_encoder_outputs.get("image") is not None:
            image_features = mm_encoder_outputs["image"].pooler_output
        elif pixel_values is not None:
            image_features = self.get_image_features(
                pixel_values=pixel_values,
                vision_feature_layer=vision_feature_layer,
                vision_feature_select_strategy=vision_feature_select_strategy,
                return_dict=True,
            ).pooler_output
        if image_features is not None:
            image_features = image_features.to(inputs_embeds.device, inputs_embeds.dtype)
            image_mask = self.get_placeholder_mask(input_ids, inputs_embeds=inputs_embeds, image_features=image_features)
            inputs_embeds = inputs_embeds.masked_scatter(image_mask, image_features)

        selections = token_keep = video_tokens = None
        if image_features is not None and self._vts_requested(mm_token_type_ids, video_num_frames):
            named = (("mm_token_type_ids", mm_token_type_ids), ("query_mask", query_mask), ("prompt_mask", prompt_mask))
            for name, value in named:
                if value is not None and tuple(value.shape) != (batch_size, length):
                    raise ValueError(f"`{name}` has shape {tuple(value.shape)} but the input is {(batch_size, length)}.")
            mm_token_type_ids = mm_token_type_ids.to(inputs_embeds.device)
            image_tokens = image_mask[..., 0]
            video_tokens = mm_token_type_ids == VIDEO_TOKEN_TYPE
            if bool((video_tokens & ~image_tokens).any()):
                raise ValueError(
                    "`mm_token_type_ids` marks tokens as video frames (2) that are not image context tokens "
                    f"(config.image_token_id = {self.config.image_token_id})."
                )
            frame_tokens = frame_token_count(self.config)
            if image_features.shape[1] != frame_tokens:
                raise ValueError(
                    f"The vision config implies {frame_tokens} tokens per frame but the projector returned "
                    f"{image_features.shape[1]}; check image_size, patch_size and downsample_ratio."
                )
            tokens_per_video = [n * frame_tokens for n in _frame_counts(video_num_frames)]
            _check_video_layout(video_tokens, tokens_per_video)
            if tokens_per_video:
                vision_tokens = image_tokens | (mm_token_type_ids != 0)
                query_tokens = query_token_mask(
                    vision_tokens, attention_mask, query_mask, labels, self.config.vts_query_pooling, prompt_mask
                )
                video_embeds = list(inputs_embeds[video_tokens].split(tokens_per_video))
                selections, token_keep = run_vts(
                    self.vts,
                    video_embeds,
                    video_tokens,
                    text_embeds,
                    query_tokens,
                    [frame_tokens] * len(video_embeds),
                    attention_mask,
                )
                kept_embeds = torch.cat([s.embeds for s in selections]).to(inputs_embeds.dtype)
                inputs_embeds = inputs_embeds.masked_scatter((video_tokens & token_keep).unsqueeze(-1), kept_embeds)

        layout = pruned_mask = pruned_positions = None
        if token_keep is not None and (not bool(token_keep.all()) or not self.config.vts_keep_positions):
            if past_length:
                raise ValueError("GroundVTS samples video tokens at prefill: pass video inputs with an empty cache.")
            if attention_mask is None:
                attention_mask = torch.ones(batch_size, length, dtype=torch.long, device=inputs_embeds.device)
            if position_ids is None:
                position_ids = mask_positions(attention_mask)
            position_ids = position_ids.to(inputs_embeds.device).expand(batch_size, length)
            layout = PrunedLayout.from_keep(token_keep, attention_mask)
            inputs_embeds = layout.gather(inputs_embeds, 1)
            pruned_mask = layout.attention_mask(attention_mask)
            pruned_positions = layout.gather(position_ids, 1)
            if not self.config.vts_keep_positions:
                pruned_positions = contiguous_positions(pruned_mask, video_tokens.any(1), pruned_positions)
            # Pruned positions have gaps, so never let the LM read them as packed sequences: always pass
            # an explicit mask.
            attention_mask, position_ids = pruned_mask, pruned_positions
            self.position_deltas = pruned_positions.amax(-1, keepdim=True) + 1 - pruned_mask.shape[1]
        elif position_ids is None and past_length and self.position_deltas is not None:
            if self.position_deltas.shape[0] == batch_size:
                steps = torch.arange(past_length, past_length + length, device=inputs_embeds.device)
                position_ids = steps[None] + self.position_deltas.to(inputs_embeds.device)

        outputs = self.language_model(
            attention_mask=attention_mask,
            position_ids=position_ids,
            past_key_values=past_key_values,
            inputs_embeds=inputs_embeds,
            return_dict=True,
            **kwargs,
        )
        return vts_model_output(
            GroundVTSInternVLModelOutputWithPast, outputs, layout, token_keep, pruned_mask, pruned_positions,
            selections if return_vts_selection else None, image_hidden_states=image_features,
        )

    @staticmethod
    def _vts_requested(mm_token_type_ids: torch.Tensor | None, video_num_frames: Any) -> bool:
        """VTS runs with both inputs; one without the other is a broken collator, not a plain-InternVL call."""
        if mm_token_type_ids is None and video_num_frames is None:
            return False
        if video_num_frames is None:
            if bool((mm_token_type_ids == VIDEO_TOKEN_TYPE).any()):
                raise ValueError(
                    "`mm_token_type_ids` marks video-frame tokens (2) but `video_num_frames` is missing; pass both "
                    "(the GroundVTS processor returns them) or neither for plain InternVL."
                )
            return False
        if mm_token_type_ids is None:
            raise ValueError(
                "`video_num_frames` is given without `mm_token_type_ids`; pass both (the GroundVTS processor "
                "returns them) or neither for plain InternVL."
            )
        return True


class GroundVTSInternVLForConditionalGeneration(
    GroundVTSForConditionalGenerationMixin, InternVLForConditionalGeneration
):
    config_class = GroundVTSInternVLConfig
    _vts_output_class = GroundVTSInternVLCausalLMOutputWithPast

    def __init__(self, config: GroundVTSInternVLConfig):
        # Skip the parent's __init__, which would build a throwaway stock inner model.
        InternVLPreTrainedModel.__init__(self, config)
        self.model = GroundVTSInternVLModel(config)
        self.lm_head = nn.Linear(config.text_config.hidden_size, config.text_config.vocab_size, bias=False)
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        pixel_values: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        past_key_values: Any = None,
        inputs_embeds: torch.Tensor | None = None,
        vision_feature_layer: int | list[int] | None = None,
        vision_feature_select_strategy: str | None = None,
        labels: torch.LongTensor | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        image_sizes: torch.Tensor | None = None,
        mm_token_type_ids: torch.Tensor | None = None,
        video_num_frames: torch.LongTensor | list[int] | None = None,
        query_mask: torch.Tensor | None = None,
        return_vts_selection: bool = False,
        mm_encoder_outputs: dict | None = None,
        prompt_mask: torch.Tensor | None = None,
        **kwargs,
    ) -> tuple | GroundVTSInternVLCausalLMOutputWithPast:
        r"""Same as InternVL's forward, plus `mm_token_type_ids`, `video_num_frames`, `query_mask`,
        `return_vts_selection` and `prompt_mask` (see the inner model). `return_dict=False` returns the output's
        `to_tuple()`, as in InternVL. Without `mm_token_type_ids` and `video_num_frames` no VTS
        runs (plain InternVL). `image_sizes` is accepted for compatibility and unused, as in InternVL."""
        outputs = self.model(
            input_ids=input_ids,
            pixel_values=pixel_values,
            attention_mask=attention_mask,
            position_ids=position_ids,
            past_key_values=past_key_values,
            inputs_embeds=inputs_embeds,
            vision_feature_layer=vision_feature_layer,
            vision_feature_select_strategy=vision_feature_select_strategy,
            mm_token_type_ids=mm_token_type_ids,
            video_num_frames=video_num_frames,
            query_mask=query_mask,
            labels=labels,
            return_vts_selection=return_vts_selection,
            mm_encoder_outputs=mm_encoder_outputs,
            prompt_mask=prompt_mask,
            return_dict=True,
            **kwargs,
        )
        return self._vts_causal_lm_output(outputs, labels, logits_to_keep, **kwargs)

    def _expand_inputs_for_generation(self, expand_size=1, is_encoder_decoder=False, input_ids=None, **model_kwargs):
        # Beam search / num_return_sequences repeat every input along dim 0. That is right for (batch, ...)
        # tensors, but `pixel_values` holds one row per image tile or frame and `video_num_frames` one entry per
        # video (generate only expands pixels correctly when it pre-encodes, which GroundVTS opts out of):
        # repeat each sample's whole block instead, in the order of the expanded rows.
        visual = {}
        if expand_size > 1 and input_ids is not None:
            frame_tokens = frame_token_count(self.config)
            if model_kwargs.get("pixel_values") is not None:
                tiles_per_row = ((input_ids == self.config.image_token_id).sum(1) // frame_tokens).tolist()
                pixel_values = model_kwargs.pop("pixel_values")
                items_per_row(tiles_per_row, [1] * pixel_values.shape[0], "pixel_values")  # validates the count
                visual["pixel_values"] = repeat_row_blocks(pixel_values, tiles_per_row, expand_size)
            types = model_kwargs.get("mm_token_type_ids")
            if model_kwargs.get("video_num_frames") is not None and types is not None:
                video_num_frames = model_kwargs.pop("video_num_frames")
                frames_per_row = ((types == VIDEO_TOKEN_TYPE).sum(1) // frame_tokens).tolist()
                frames = _frame_counts(video_num_frames)
                videos = items_per_row(frames_per_row, frames, "video_num_frames")
                if torch.is_tensor(video_num_frames):
                    video_num_frames = video_num_frames.reshape(-1)  # a 0-d count means one video
                visual["video_num_frames"] = repeat_row_blocks(video_num_frames, videos, expand_size)
        input_ids, model_kwargs = super()._expand_inputs_for_generation(
            expand_size=expand_size, is_encoder_decoder=is_encoder_decoder, input_ids=input_ids, **model_kwargs
        )
        model_kwargs.update(visual)
        return input_ids, model_kwargs


# transformers renames legacy checkpoint keys (`language_model.model.*`, `vision_tower.*`) only for classes it
# knows; register ours like the stock ones, or plain InternVL weights would load as a random model. The stock
# rules are anchored at `language_model` / `vision_tower` / `multi_modal_projector`, so `model.vts.*` and
# `vts.*` pass through untouched.
register_checkpoint_conversion_mapping(
    GroundVTSInternVLForConditionalGeneration.__name__,
    get_checkpoint_conversion_mapping("internvl"),
    overwrite=True,
)
register_checkpoint_conversion_mapping(
    GroundVTSInternVLModel.__name__,
    get_checkpoint_conversion_mapping("InternVLModel"),
    overwrite=True,
)

GroundVTSInternVLConfig.register_for_auto_class("AutoConfig")
GroundVTSInternVLModel.register_for_auto_class("AutoModel")
GroundVTSInternVLForConditionalGeneration.register_for_auto_class("AutoModelForImageTextToText")

__all__ = [
    "GroundVTSInternVLConfig",
    "GroundVTSInternVLModel",
    "GroundVTSInternVLForConditionalGeneration",
]
