"""`GroundVTSGRPOTrainer`: TRL's `GRPOTrainer` for GroundVTS video prompts (stage 4, GRPO with grounding rewards).

TRL's GRPO data path handles images only: it renders prompts with the processor's chat template, passes no video to
`generate`, and scores completions with a fused LM head that pairs the inner model's hidden states with the token
ids itself. For a GroundVTS model that would drop the video, or pair the pruned hidden states with the unpruned
ids. What this subclass changes, and why:

- `_tokenize_prompts`: each prompt goes through our processor with its `videos` (true fps, `query_mask`), once per
  distinct prompt in the batch; the encodings travel with the rows (`video_rows`) through TRL's shuffling and
  splitting, so every later forward pass sees the same pixels and masks;
- `_generate_single_turn`: our model's own `generate` (the pruned cache), once per distinct prompt with
  `num_return_sequences` = its copies in the batch. VTS selects at prefill with its deterministic top K (see
  below), so every sampled answer of one prompt sees the same kept tokens;
- `_get_per_token_logps_and_entropies`: the full model's forward on prompt + completion with the rows' video
  inputs, log-probabilities of the completion tokens from its logits (the outer forward knows where the kept
  tokens are; TRL's fused head would not);
- VTS uses `vts_train_selection="topk"` while training: sampling, the old policy, the reference and the policy being
  optimised must score the same kept tokens; the Gumbel noise of stages 1-3 would draw another subset each pass;
- the stage-4 freeze spec through `StageCallback`, and the paper's LoRA unless a PEFT model or config is given;
- rewards default to the dataset's truth columns (`default_rewards`), and a reward function that raises is rerun
  row by row so the error names the row.
"""

from __future__ import annotations

import copy
import functools
import inspect
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback
from trl import GRPOTrainer
from trl.models import unwrap_model_for_generation
from trl.trainer.utils import entropy_from_logits, selective_log_softmax

from .collator import SEQUENCE_FILLS, GroundVTSVideoCollator
from .grpo_config import GroundVTSGRPOConfig
from .grpo_data import default_rewards
from .model_card import write_stage_card
from .stages import StageCallback, _inner, lora_config
from .trainer import _is_peft_model


logger = logging.getLogger(__name__)

# Per-token video inputs (besides input_ids / attention_mask, which TRL builds): left-padded like the prompt, zero
# over the completion.
PER_TOKEN_KEYS = tuple(key for key in SEQUENCE_FILLS if key not in ("attention_mask", "labels"))


class TopKSelectionCallback(TrainerCallback):
    """Deterministic VTS top K for the whole run (sampling and scoring must see the same kept tokens); the model's
    own setting is restored when training ends, so a saved or merged model keeps what it had."""

    def __init__(self) -> None:
        self.saved: str | None = None

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        config = _inner(model).config
        self.saved, config.vts_train_selection = config.vts_train_selection, "topk"

    def on_train_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if self.saved is not None:
            _inner(model).config.vts_train_selection = self.saved


def _row_label(row: Mapping[str, Any], index: int) -> str:
    """`row 3 (qid q7, source train.jsonl:4, video a.mp4)`: what a user can find the row by."""
    parts = [f"{key} {row[key]}" for key in ("qid", "source") if row.get(key)]
    if row.get("videos"):
        parts.append(f"video {row['videos'][0]}")
    return f"row {index} ({', '.join(parts) or 'no id'})"


def name_failing_rows(reward: Callable[..., Any]) -> Callable[..., Any]:
    """`reward`, rerun row by row when it raises, so that the error names the first row it fails on."""
    if inspect.iscoroutinefunction(reward) or isinstance(reward, (str, torch.nn.Module)):
        return reward

    @functools.wraps(reward)
    def wrapped(*args: Any, prompts: Sequence[Any], completions: Sequence[Any], **columns: Any) -> Any:
        try:
            return reward(*args, prompts=prompts, completions=completions, **columns)
        except Exception as error:
            per_row = {key: value for key, value in columns.items() if isinstance(value, list) and len(value) == len(completions)}
            for index in range(len(completions)):
                one = {key: value[index: index + 1] for key, value in per_row.items()}
                try:
                    reward(*args, prompts=prompts[index: index + 1], completions=completions[index: index + 1],
                           **{**columns, **one})
                except Exception as row_error:
                    row = {key: value[index] for key, value in per_row.items()}
                    name = getattr(reward, "__name__", type(reward).__name__)
                    raise ValueError(f"reward function `{name}` failed on {_row_label(row, index)}: {row_error}") from row_error
            raise

    return wrapped


class GroundVTSGRPOTrainer(GRPOTrainer):
    r"""
    Trainer for GroundVTS stage 4: GRPO on video grounding prompts with verifiable rewards.

    This class is a wrapper around TRL's [`~trl.GRPOTrainer`] and inherits all of its attributes and methods; what
    it changes for videos is listed in the module docstring.

    Parameters:
        > Parameters that control the model

        model ([`~transformers.PreTrainedModel`] or [`~peft.PeftModel`]):
            A GroundVTS-Q, -Q3 or -I model object, e.g. the merged stage-3 model from
            [`~groundvts.trainers.loading.load_model_and_processor`]. Without `peft_config`, the paper's LoRA is added
            (as in stages 2-3), and the KL reference is the model with the adapter disabled, i.e. the stage-3 model.
        peft_config ([`~peft.PeftConfig`], *optional*):
            PEFT configuration to wrap the model with; by default the one of
            [`~groundvts.trainers.lora_config`] from `args.lora_r`, `args.lora_alpha` and `args.lora_dropout`.

        > Parameters that control the data and the rewards

        train_dataset ([`~datasets.Dataset`]):
            Rows with a conversational `prompt` (a user turn with a `{"type": "video"}` block), `videos` (paths, one
            per video block) and the truth columns of the rewards (`window`, or `relevant_clip_ids` + `duration`);
            [`~groundvts.trainers.to_grpo_dataset`] makes them from Grounding-FT records. Rows whose video file is
            missing are logged and skipped.
        processing_class ([`~transformers.ProcessorMixin`]):
            The GroundVTS processor of the model's backbone; videos are sampled with `args.video_kwargs()`.
        reward_funcs (callable or list of callables, *optional*):
            TRL reward functions. Defaults to [`~groundvts.trainers.rewards.temporal_iou_reward`] and
            [`~groundvts.trainers.rewards.format_reward`] for a `window` column, plus
            [`~groundvts.trainers.rewards.highlight_reward`] for a `relevant_clip_ids` column.

        > Parameters that control the training

        args ([`GroundVTSGRPOConfig`]):
            Configuration: what trains (`freeze`), video sampling, LoRA and every [`~trl.GRPOConfig`] argument.
        callbacks (list of [`~transformers.TrainerCallback`], *optional*):
            Callbacks to add after the [`StageCallback`] (stage 4) and the top-K selection callback.
        dataset_name (`str`, *optional*):
            The training data, named in the model card the trainer writes.
        kwargs:
            Passed on to [`~trl.GRPOTrainer`] (`eval_dataset`, `reward_processing_classes`, ...).

    Example:

    ```python
    >>> from groundvts.trainers import GroundVTSGRPOConfig, GroundVTSGRPOTrainer, to_grpo_dataset
    >>> from groundvts.trainers.loading import load_model_and_processor

    >>> model, processor = load_model_and_processor("outputs/groundvts-q-stage3-merged")
    >>> dataset = to_grpo_dataset(load_from_disk("data/grounding_ft"))
    >>> args = GroundVTSGRPOConfig(output_dir="outputs/groundvts-q-stage4", num_generations=8, beta=0.04,
    ...                            video_fps=2.0, video_max_frames=128, video_max_pixels=16384)
    >>> GroundVTSGRPOTrainer(model=model, args=args, train_dataset=dataset, processing_class=processor).train()
    ```
    """

    def __init__(
        self,
        model: Any,
        args: GroundVTSGRPOConfig,
        train_dataset: Any,
        processing_class: Any,
        reward_funcs: Any = None,
        peft_config: Any = None,
        callbacks: list | None = None,
        dataset_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        if not isinstance(args, GroundVTSGRPOConfig):
            raise TypeError(f"`args` must be a GroundVTSGRPOConfig, got {type(args).__name__}.")
        if isinstance(model, (str, Path)):
            raise TypeError("Pass a loaded GroundVTS model (e.g. `load_model_and_processor(path)`), not a path: TRL "
                            "would load it with AutoModelForCausalLM, without its VTS.")
        _inner(model)  # a GroundVTS model, or a clear error
        self.dataset_name = dataset_name
        train_dataset = self._with_existing_videos(train_dataset)
        if peft_config is None and not _is_peft_model(model):
            peft_config = lora_config(model, args.lora_r, args.lora_alpha, args.lora_dropout)
        if reward_funcs is None:
            reward_funcs = default_rewards(train_dataset)
        reward_funcs = [name_failing_rows(f) for f in (reward_funcs if isinstance(reward_funcs, list) else [reward_funcs])]
        self.video_encoder = GroundVTSVideoCollator(processing_class, args.video_kwargs(), padding_side="left",
                                                    cache=args.video_cache)
        self._batch_videos: list[list[str]] = []
        self._active_rows: list[dict[str, torch.Tensor]] = []
        self._prompt_keys: list[str] = []
        super().__init__(
            model=model, reward_funcs=reward_funcs, args=args, train_dataset=train_dataset,
            processing_class=processing_class, peft_config=peft_config,
            callbacks=[StageCallback(4, args.freeze), TopKSelectionCallback(), *(callbacks or [])], **kwargs,
        )

    @staticmethod
    def _with_existing_videos(dataset: Any) -> Any:
        """The rows whose videos all exist; each skipped row is logged (like the data checks of stages 1-3)."""
        missing_columns = {"prompt", "videos"} - set(dataset.column_names)
        if missing_columns:
            raise ValueError(f"The GRPO dataset needs the columns {sorted(missing_columns)} (has {dataset.column_names});"
                             " build it from Grounding-FT records with `to_grpo_dataset`.")
        keep = []
        for index, videos in enumerate(dataset["videos"]):
            absent = [video for video in videos or [] if not Path(video).is_file()]
            if not videos or absent:
                logger.warning("skipped %s: %s", _row_label(dataset[index], index),
                               f"video file not found: {absent[0]}" if absent else "no video")
            else:
                keep.append(index)
        if not keep:
            raise ValueError(f"None of the {len(dataset)} GRPO prompts has its video on disk; check the `videos` paths.")
        if len(keep) < len(dataset):
            logger.warning("%d of %d GRPO prompts skipped (video missing); training on %d",
                           len(dataset) - len(keep), len(dataset), len(keep))
            dataset = dataset.select(keep)
        return dataset

    # --- Prompts and sampling -------------------------------------------------------------------------------------

    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        self._batch_videos = [list(row.get("videos") or []) for row in inputs]
        output = super()._generate_and_score_completions(inputs)
        # One entry per row, so TRL's shuffle and split keep each row's video inputs with it.
        output["video_rows"] = self._active_rows
        return output

    def _tokenize_prompts(self, prompts: list) -> tuple[list[list[int]], None, dict]:
        # Our processor instead of the chat template + image path: videos, true fps, query_mask.
        encoded: dict[str, dict[str, torch.Tensor]] = {}
        self._prompt_keys, rows = [], []
        for prompt, videos in zip(prompts, self._batch_videos, strict=True):
            key = json.dumps([prompt, videos], sort_keys=True, default=str)
            if key not in encoded:
                encoded[key] = self.video_encoder.encode_prompt(prompt, videos)
            self._prompt_keys.append(key)
            rows.append(encoded[key])
        self._active_rows = rows
        return [row["input_ids"][0].tolist() for row in rows], None, {}

    def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        # vLLM and continuous batching are refused by GroundVTSGRPOConfig: this is the only sampling path.
        copies: dict[str, list[int]] = {}  # each distinct prompt -> its rows, in order
        for index, key in enumerate(self._prompt_keys):
            copies.setdefault(key, []).append(index)
        by_count: dict[int, list[list[int]]] = {}
        for rows in copies.values():
            by_count.setdefault(len(rows), []).append(rows)
        completion_ids: list[list[int]] = [[] for _ in prompt_ids]
        with (
            unwrap_model_for_generation(
                self.model_wrapped, self.accelerator, gather_deepspeed3_params=self.args.ds3_gather_for_generation,
                generation_kwargs=self.generation_kwargs,
                gradient_checkpointing_kwargs=self.args.gradient_checkpointing_kwargs,
            ) as unwrapped_model,
            torch.no_grad(),
            self._dist.summon_full_params(self.model_wrapped, recurse=False),
        ):
            for count, groups in by_count.items():
                batch = self.video_encoder.pad_rows([self._active_rows[rows[0]] for rows in groups])
                batch = {key: value.to(self.accelerator.device) for key, value in batch.items()}
                config = copy.deepcopy(self.generation_config)
                config.num_return_sequences = count
                generated = unwrapped_model.generate(**batch, generation_config=config)[:, batch["input_ids"].shape[1]:]
                samples = iter(generated.cpu())
                for rows in groups:  # generate returns each prompt's `count` samples together, in prompt order
                    for row in rows:
                        completion_ids[row] = self._until_eos(next(samples).tolist())
        return completion_ids, None

    def _until_eos(self, ids: list[int]) -> list[int]:
        """The sampled ids through the first end-of-sequence token (what TRL keeps)."""
        for index, token in enumerate(ids):
            if token in self.eos_token_ids:
                return ids[: index + 1]
        return ids

    # --- Scoring ----------------------------------------------------------------------------------------------------

    def _compute_loss(self, model, inputs):
        self._active_rows = inputs["video_rows"]
        return super()._compute_loss(model, inputs)

    def _video_inputs(self, rows: Sequence[Mapping[str, torch.Tensor]], prompt_width: int, completion_width: int
                      ) -> dict[str, torch.Tensor]:
        """The rows' video inputs for a forward pass over TRL's layout: per-token fields left-padded to
        `prompt_width` (TRL's padded prompt) and zero over the completion; the rest concatenated in row order."""
        device = self.accelerator.device
        inputs: dict[str, torch.Tensor] = {}
        for key in rows[0]:
            if key in ("input_ids", "attention_mask"):
                continue
            if key in PER_TOKEN_KEYS:
                full = torch.zeros(len(rows), prompt_width + completion_width, dtype=rows[0][key].dtype)
                for index, row in enumerate(rows):
                    length = row[key].shape[1]
                    full[index, prompt_width - length: prompt_width] = row[key][0]
                inputs[key] = full.to(device)
            else:
                inputs[key] = torch.cat([row[key] for row in rows]).to(device)
        return inputs

    def _get_per_token_logps_and_entropies(
        self, model, input_ids, attention_mask, logits_to_keep, batch_size=None, compute_entropy=False,
        compute_aux_loss=False, **image_inputs,
    ):
        # TRL's image inputs are empty here: the rows' video inputs come from `_active_rows` (see the module docstring).
        batch_size = batch_size or input_ids.size(0)
        prompt_width = input_ids.size(1) - logits_to_keep
        all_logps, all_entropies = [], []
        for start in range(0, input_ids.size(0), batch_size):
            end = min(start + batch_size, input_ids.size(0))
            ids = input_ids[start:end]
            video = self._video_inputs(self._active_rows[start:end], prompt_width, logits_to_keep)
            with self.accelerator.autocast():
                outputs = model(input_ids=ids, attention_mask=attention_mask[start:end], use_cache=False,
                                logits_to_keep=logits_to_keep + 1, **video)
            logits = outputs.logits[:, :-1, :] / self.temperature  # position t predicts token t + 1
            all_logps.append(selective_log_softmax(logits, ids[:, -logits_to_keep:]))
            if compute_entropy:
                # Differentiable only when the loss has an entropy bonus (`entropy_coef`); else a metric and a mask.
                with torch.set_grad_enabled(torch.is_grad_enabled() and self._entropy_bonus_enabled):
                    all_entropies.append(entropy_from_logits(logits))
        entropies = torch.cat(all_entropies) if compute_entropy else None
        return torch.cat(all_logps), entropies, None

    # --- Output -----------------------------------------------------------------------------------------------------

    def create_model_card(self, model_name: str | None = None, dataset_name: str | None = None, tags: Any = None) -> None:
        # TRL's card knows nothing of the stage, the rewards or the video settings: write GroundVTS's instead.
        if self.is_world_process_zero():
            write_stage_card(self, self._card_settings, model_name, dataset_name)

    def _card_settings(self, adapter: bool, config: Any) -> dict[str, Any]:
        args = self.args
        return {
            "stage": 4, "learning_rate": args.learning_rate, "max_steps": args.max_steps if args.max_steps > 0 else None,
            "num_generations": args.num_generations, "temperature": args.temperature, "beta (KL)": args.beta,
            "epsilon": args.epsilon, "loss_type": args.loss_type, "max_completion_length": args.max_completion_length,
            "rewards": ", ".join(self.reward_func_names), "frozen": ", ".join(args.freeze) or None,
            "lora_r / lora_alpha / lora_dropout": f"{args.lora_r} / {args.lora_alpha} / {args.lora_dropout}" if adapter else None,
            "vts_keep_ratio": getattr(config, "vts_keep_ratio", None), "video sampling": args.video_kwargs() or None,
        }
