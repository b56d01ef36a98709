"""Tiny GroundVTS model folders (model + processor, loadable with trust_remote_code) and tiny videos for the
inference, evaluation and plotting tests. Built once per process."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import torch

from groundvts.modeling.modeling_groundvts_internvl import GroundVTSInternVLForConditionalGeneration
from groundvts.modeling.modeling_groundvts_qwen2_5_vl import GroundVTSQwen2_5_VLForConditionalGeneration
from groundvts.processing.tiny import (
    build_tiny_internvl_processor,
    build_tiny_qwen2_5_vl_processor,
    special_token_ids,
    write_test_video,
)
from tiny_models import spread_vts_scores, tiny_internvl_config, tiny_qwen_config


def _temporary_folder(prefix: str) -> Path:
    folder = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return Path(folder)


def tiny_qwen_with_processor_config(processor, **overrides):
    """A tiny GroundVTS-Q config whose token ids and patch size match the tiny processor."""
    ids = special_token_ids(processor)
    text = dict(
        vocab_size=ids["vocab_size"], hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, pad_token_id=ids["pad_token_id"], bos_token_id=ids["bos_token_id"],
        eos_token_id=ids["eos_token_id"], rope_parameters={"rope_type": "default", "mrope_section": [2, 1, 1], "rope_theta": 1e4},
    )
    vision = dict(
        depth=1, hidden_size=16, intermediate_size=32, num_heads=2, out_hidden_size=32, patch_size=14,
        spatial_merge_size=2, temporal_patch_size=2, tokens_per_second=2, window_size=56, fullatt_block_indexes=[0],
    )
    return tiny_qwen_config(
        text_config=text, vision_config=vision, image_token_id=ids["image_token_id"], video_token_id=ids["video_token_id"],
        vision_start_token_id=ids["vision_start_token_id"], vision_end_token_id=ids["vision_end_token_id"], **overrides,
    )


@functools.lru_cache(maxsize=None)
def tiny_model_folder(keep_ratio: float = 0.5) -> Path:
    """A saved tiny GroundVTS-Q (random weights, spread VTS scores) with its tiny processor."""
    folder = _temporary_folder("groundvts-tiny-") / "model"
    processor = build_tiny_qwen2_5_vl_processor()
    torch.manual_seed(0)
    model = GroundVTSQwen2_5_VLForConditionalGeneration(
        tiny_qwen_with_processor_config(processor, vts_keep_ratio=keep_ratio)
    ).eval()
    spread_vts_scores(model)
    with torch.no_grad():  # larger LM weights: answers then differ between inputs (batching tests can fail)
        for parameter in [*model.model.language_model.parameters(), model.lm_head.weight]:
            if parameter.dim() > 1:
                parameter.normal_(0.0, 0.2)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@functools.lru_cache(maxsize=None)
def tiny_internvl_folder() -> Path:
    """A saved tiny GroundVTS-I (4 frames of 4 tokens) with its tiny processor."""
    folder = _temporary_folder("groundvts-tiny-i-") / "model"
    processor = build_tiny_internvl_processor(image_size=56, patch_size=14, num_frames=4)
    ids = special_token_ids(processor)
    config = tiny_internvl_config(
        text_config=dict(model_type="qwen3", vocab_size=ids["vocab_size"], hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=8,
                         pad_token_id=ids["pad_token_id"], eos_token_id=ids["eos_token_id"]),
        vision_config=dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                           image_size=56, patch_size=14),
        image_token_id=ids["image_token_id"], image_seq_length=processor.image_seq_length,
    )
    torch.manual_seed(0)
    model = GroundVTSInternVLForConditionalGeneration(config).eval()
    spread_vts_scores(model)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@functools.lru_cache(maxsize=None)
def tiny_videos() -> dict[str, Path]:
    """Tiny mp4 files: 'a' 8 s at 4 fps, 'b' 6 s at 2 fps, 'c' 10 s at 3 fps, 'd' 4 s at 5 fps."""
    folder = _temporary_folder("groundvts-videos-")
    specs = {"a": (32, 4.0), "b": (12, 2.0), "c": (30, 3.0), "d": (20, 5.0)}
    return {name: write_test_video(folder / f"{name}.mp4", num_frames=n, fps=fps) for name, (n, fps) in specs.items()}


def script_answers(model, processor, answer_for):
    """Make `model.generate` answer `answer_for(prompt_text)` (the real generate still runs, so VTS selects
    as usual); for tests of parsing, merging and scoring that need known answers from a random model."""
    real_generate = model.generate
    tokenizer = processor.tokenizer

    def generate(*args, **kwargs):
        real_generate(*args, **kwargs)  # VTS runs as usual (the selection hook sees it); its tokens are replaced
        prompt_ids = kwargs["input_ids"]
        texts = tokenizer.batch_decode(prompt_ids, skip_special_tokens=True)
        answers = [tokenizer(answer_for(text), add_special_tokens=False)["input_ids"] for text in texts]
        width = max(len(a) for a in answers) + 1
        rows = [a + [tokenizer.eos_token_id] + [tokenizer.pad_token_id] * (width - len(a) - 1) for a in answers]
        return torch.cat([prompt_ids, torch.tensor(rows, dtype=prompt_ids.dtype)], dim=1)

    model.generate = generate
    return model


def default_script(text: str) -> str:
    """A fixed answer per prompt kind: highlight prompt, multiple choice, else grounding."""
    if "highlight the most important parts" in text:
        return "The highlights are: very important from 2.0s to 4.0s; less important from 6.0s to 8.0s"
    if "Please only give the best option" in text:
        return "(B) the second option"
    return "from 1.0s to 3.0s"
