"""What GroundVTS adds to a stock vision-language `...ForConditionalGeneration`, whatever the backbone
(Hub-facing, flat, relative imports only).

Both outer classes inherit [`GroundVTSForConditionalGenerationMixin`] first, so its methods come before the stock
ones in the MRO and reach them through `super()`:

- `save_pretrained` also maps `AutoModel` to the inner GroundVTS model in `auto_map`;
- `_supports_mm_encoder_outputs` is off: VTS needs the query and the video features in one pass;
- `_validate_model_kwargs` refuses right-padded prompts in `generate` (stock only warns; the answer would be wrong);
- `_vts_loss`: a removed video token has no hidden state, so the label after it is ignored;
- `_vts_causal_lm_output`: the outer forward's output (`_vts_output_class`) from the inner one: logits, loss, and
  the inner output's fields;
- `_update_model_kwargs_for_generation`: after a pruned prefill, decoding continues from the layout the language
  model saw (its KV cache), and generated tokens never join the VTS query.

Backbone differences are two small hooks: `_joint_position_rows` (how many trailing position rows share one
maximum when generated tokens are appended: 3 for Qwen's M-RoPE t, h, w) and `_pruned_decode_positions` (which
rows of the pruned positions `generate` carries on with).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from transformers.modeling_utils import slice_logits_to_keep

from .token_pruning import append_generated_positions, grow_generation_masks


def mask_labels_after_removed_tokens(labels: torch.Tensor, token_keep: torch.Tensor | None) -> torch.Tensor:
    """Set to -100 every label whose preceding token was removed before the language model.

    The logit at position i predicts the label at i + 1; a removed token has no hidden state (zeros after the
    scatter back), so the label it would predict must not count. Returns a copy; `labels` is left as it is.
    """
    if token_keep is None:
        return labels
    removed = ~token_keep
    labels = labels.clone()
    labels[:, 1:][removed[:, :-1]] = -100
    return labels


def vts_model_output(
    output_class: type,
    lm_outputs: Any,
    layout: Any,
    token_keep: torch.Tensor | None,
    pruned_attention_mask: torch.Tensor | None,
    pruned_position_ids: torch.Tensor | None,
    selections: Any,
    **fields: Any,
) -> Any:
    """An inner GroundVTS model's output (`output_class`) from its language model's: the hidden states back at their
    dense slots (`layout`, a `PrunedLayout`; None when nothing was removed), the keep mask and pruned layout for the
    outer model, the per-video keep masks and scores when `selections` is given, and the backbone's own `fields`."""
    hidden = lm_outputs.last_hidden_state
    return output_class(
        last_hidden_state=layout.scatter_back(hidden) if layout is not None else hidden,
        past_key_values=lm_outputs.past_key_values,
        hidden_states=lm_outputs.hidden_states,
        attentions=lm_outputs.attentions,
        token_keep=token_keep,
        pruned_attention_mask=pruned_attention_mask,
        pruned_position_ids=pruned_position_ids,
        video_keep=tuple(s.keep for s in selections) if selections else None,
        video_scores=tuple(s.scores for s in selections) if selections else None,
        **fields,
    )


class GroundVTSForConditionalGenerationMixin:
    """GroundVTS-level overrides shared by GroundVTS-Q and GroundVTS-I; list it before the stock class."""

    # Trailing position rows that share one maximum when generated tokens are appended (see
    # `append_generated_positions`); 0 means every row continues on its own, as 1-D positions do.
    _joint_position_rows: int = 0
    # The outer forward's output class: the stock causal-LM output plus the VTS fields of the inner output.
    _vts_output_class: type

    def save_pretrained(self, save_directory, *args, **kwargs):
        # transformers writes `auto_map` only for the class being saved; map the inner model too.
        inner = type(self.model)
        auto_map = dict(getattr(self.config, "auto_map", None) or {})
        auto_map["AutoModel"] = f"{inner.__module__.rsplit('.', 1)[-1]}.{inner.__name__}"
        self.config.auto_map = auto_map
        return super().save_pretrained(save_directory, *args, **kwargs)

    def _supports_mm_encoder_outputs(self) -> bool:
        # VTS needs the query and the video features in one pass; no pre-encoding in generate.
        return False

    def _validate_model_kwargs(self, model_kwargs: dict) -> None:
        # A right-padded row would predict its first new token from a pad and grow after its pads: stock generate
        # only warns, and the answer is silently wrong. Refuse it with the fix instead.
        mask = model_kwargs.get("attention_mask")
        if torch.is_tensor(mask) and mask.dim() == 2 and bool((mask[:, -1] == 0).any()):
            raise ValueError(
                "generate got a right-padded batch (attention_mask ends in 0 for some rows), so those rows would "
                "continue after their padding: pad prompts on the left for generation "
                "(processor(..., padding_side='left') or processor.tokenizer.padding_side = 'left')."
            )
        super()._validate_model_kwargs(model_kwargs)

    def _vts_loss(self, logits: torch.Tensor, labels: torch.Tensor, token_keep: torch.Tensor | None, **kwargs):
        """The stock causal-LM loss, after ignoring the labels that follow a removed token."""
        labels = mask_labels_after_removed_tokens(labels, token_keep)
        return self.loss_function(logits=logits, labels=labels, vocab_size=self.config.text_config.vocab_size, **kwargs)

    def _vts_causal_lm_output(self, outputs, labels, logits_to_keep: int | torch.Tensor = 0, **kwargs):
        """The outer forward's result from the inner output: the logits of the last `logits_to_keep` positions (0:
        all), the loss, which ignores labels after a removed token, and every other field of `_vts_output_class`
        (the VTS fields included), passed through."""
        logits = self.lm_head(slice_logits_to_keep(outputs.last_hidden_state, logits_to_keep))
        loss = self._vts_loss(logits, labels, outputs.token_keep, **kwargs) if labels is not None else None
        names = [field.name for field in dataclasses.fields(self._vts_output_class) if field.name not in ("loss", "logits")]
        return self._vts_output_class(loss=loss, logits=logits, **{name: getattr(outputs, name) for name in names})

    def _pruned_decode_positions(self, outputs, model_kwargs: dict) -> torch.Tensor:
        """The position ids `generate` continues from after a pruned prefill (the backbone's layout)."""
        return outputs.pruned_position_ids

    def _update_model_kwargs_for_generation(self, outputs, model_kwargs, is_encoder_decoder=False, num_new_tokens=1):
        # After a pruned prefill the KV cache is shorter than the prompt: continue from the layout the language
        # model actually saw, so decode masks and positions match the cache. Without a cache every step re-runs
        # the full prompt, so the original layout stays.
        if getattr(outputs, "pruned_attention_mask", None) is not None and outputs.past_key_values is not None:
            model_kwargs["attention_mask"] = outputs.pruned_attention_mask
            model_kwargs["position_ids"] = self._pruned_decode_positions(outputs, model_kwargs)
        # Generated tokens never join the VTS query (matters without a cache, where every step re-runs VTS).
        grow_generation_masks(model_kwargs, outputs, num_new_tokens)
        position_ids = model_kwargs.pop("position_ids", None)
        model_kwargs = super()._update_model_kwargs_for_generation(
            outputs, model_kwargs, is_encoder_decoder=is_encoder_decoder, num_new_tokens=num_new_tokens
        )
        if position_ids is not None:
            model_kwargs["position_ids"] = append_generated_positions(
                position_ids, num_new_tokens, joint_rows=self._joint_position_rows
            )
        return model_kwargs
