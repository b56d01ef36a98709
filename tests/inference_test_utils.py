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
from groundvts.modeling.modeling_groundvts_qwen3_vl import GroundVTSQwen3VLForConditionalGeneration
from groundvts.processing.tiny import (
    build_tiny_internvl_processor,
    build_tiny_qwen2_5_vl_processor,
    build_tiny_qwen3_vl_processor,
    write_test_video,
)
from tiny_models import spread_vts_scores, tiny_internvl_config_for, tiny_qwen3_config_for, tiny_qwen_config_for


def _temporary_folder(prefix: str) -> Path:
    folder = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return Path(folder)


@functools.lru_cache(maxsize=None)
def tiny_model_folder(keep_ratio: float = 0.5) -> Path:
    """A saved tiny GroundVTS-Q (random weights, spread VTS scores) with its tiny processor."""
    folder = _temporary_folder("groundvts-tiny-") / "model"
    processor = build_tiny_qwen2_5_vl_processor()
    torch.manual_seed(0)
    config = tiny_qwen_config_for(processor, vts_keep_ratio=keep_ratio)
    model = GroundVTSQwen2_5_VLForConditionalGeneration(config).eval()
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
    config = tiny_internvl_config_for(processor)
    torch.manual_seed(0)
    model = GroundVTSInternVLForConditionalGeneration(config).eval()
    spread_vts_scores(model)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@functools.lru_cache(maxsize=None)
def tiny_qwen3_folder() -> Path:
    """A saved tiny GroundVTS-Q3 (random weights, spread VTS scores) with its tiny processor."""
    folder = _temporary_folder("groundvts-tiny-q3-") / "model"
    processor = build_tiny_qwen3_vl_processor()
    torch.manual_seed(0)
    model = GroundVTSQwen3VLForConditionalGeneration(tiny_qwen3_config_for(processor)).eval()
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
