"""Tiny, offline stand-ins for the real processors, for tests and tiny models.

The tokenizers are byte-level BPE (`Qwen2Tokenizer`, the class both backbones use) over a few hundred ids, with
the real special-token strings in the real order and ChatML chat templates that lay text out exactly like the real
Qwen2.5-VL-Instruct and InternVL3.5-HF templates (plus `{% generation %}` markers around assistant turns for
assistant-only loss masks). Nothing is downloaded.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers
from transformers import (
    GotOcr2ImageProcessor,
    InternVLVideoProcessor,
    Qwen2VLImageProcessor,
    Qwen2VLVideoProcessor,
    Qwen3VLVideoProcessor,
)
from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX, Qwen2Tokenizer

from .processing_groundvts_internvl import GroundVTSInternVLProcessor
from .processing_groundvts_qwen2_5_vl import GroundVTSQwen2_5_VLProcessor
from .processing_groundvts_qwen3_vl import GroundVTSQwen3VLProcessor
from .prompts import GROUNDING_EVAL_PROMPT, HD_TEMPLATES, HIGHLIGHT_EVAL_PROMPT, MR_TEMPLATES


# Special tokens of Qwen2.5-VL in vocabulary order (151643... in the real model).
QWEN2_5_VL_SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
# InternVL3.5-HF adds these after the Qwen3 vocabulary (`<IMG_CONTEXT>` is 151671 in the real model).
INTERNVL_EXTRA_SPECIAL_TOKENS: tuple[str, ...] = (
    "<img>",
    "</img>",
    "<IMG_CONTEXT>",
    "<quad>",
    "</quad>",
    "<ref>",
    "</ref>",
    "<box>",
    "</box>",
    "<video>",
)
INTERNVL_NAMED_TOKENS = {
    "start_image_token": "<img>",
    "end_image_token": "</img>",
    "context_image_token": "<IMG_CONTEXT>",
    "video_token": "<video>",
}

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]

# Byte alphabet (256) + merges; the special tokens come after.
TINY_BPE_VOCAB_SIZE = 384

# Same layout as the Qwen2.5-VL-Instruct template: default system prompt, vision markers around the pads,
# optional "Picture N: "/"Video N: " labels.
QWEN2_5_VL_CHAT_TEMPLATE = (
    "{%- set image_count = namespace(value=0) -%}"
    "{%- set video_count = namespace(value=0) -%}"
    "{%- for message in messages -%}"
    "{%- if loop.first and message['role'] != 'system' -%}"
    "{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' -}}"
    "{%- endif -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' -}}"
    "{%- if message['role'] == 'assistant' -%}"
    "{%- generation -%}"
    "{%- if message['content'] is string -%}{{- message['content'] -}}"
    "{%- else -%}{%- for part in message['content'] -%}"
    "{%- if part['type'] == 'text' -%}{{- part['text'] -}}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{{- '<|im_end|>' -}}"
    "{%- endgeneration -%}"
    "{%- elif message['content'] is string -%}"
    "{{- message['content'] + '<|im_end|>' -}}"
    "{%- else -%}"
    "{%- for part in message['content'] -%}"
    "{%- if part['type'] == 'image' or 'image' in part or 'image_url' in part -%}"
    "{%- set image_count.value = image_count.value + 1 -%}"
    "{%- if add_vision_id -%}{{- 'Picture ' + image_count.value|string + ': ' -}}{%- endif -%}"
    "{{- '<|vision_start|><|image_pad|><|vision_end|>' -}}"
    "{%- elif part['type'] == 'video' or 'video' in part -%}"
    "{%- set video_count.value = video_count.value + 1 -%}"
    "{%- if add_vision_id -%}{{- 'Video ' + video_count.value|string + ': ' -}}{%- endif -%}"
    "{{- '<|vision_start|><|video_pad|><|vision_end|>' -}}"
    "{%- elif 'text' in part -%}{{- part['text'] -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{{- '<|im_end|>' -}}"
    "{%- endif -%}"
    "{{- '\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)

# Same layout as the InternVL3.5-HF template: no default system prompt, `<IMG_CONTEXT>\n` per image and
# `<video>\n` per video (the processor expands them).
INTERNVL_CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' -}}"
    "{%- if message['role'] == 'assistant' -%}"
    "{%- generation -%}"
    "{%- if message['content'] is string -%}{{- message['content'] -}}"
    "{%- else -%}{%- for part in message['content'] -%}"
    "{%- if part['type'] == 'text' -%}{{- part['text'] -}}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{{- '<|im_end|>' -}}"
    "{%- endgeneration -%}"
    "{%- elif message['content'] is string -%}"
    "{{- message['content'] + '<|im_end|>' -}}"
    "{%- else -%}"
    "{%- for part in message['content'] -%}"
    "{%- if part['type'] == 'image' -%}{{- '<IMG_CONTEXT>\\n' -}}"
    "{%- elif part['type'] == 'video' -%}{{- '<video>\\n' -}}"
    "{%- elif part['type'] == 'text' -%}{{- part['text'] -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{{- '<|im_end|>' -}}"
    "{%- endif -%}"
    "{{- '\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)


def _bpe_corpus(extra: tuple[str, ...] = ()) -> list[str]:
    """Text the tiny BPE learns its merges from: the prompts, answers and a few everyday words (+ `extra`)."""
    words = "person opens a door the man woman is playing with dog in kitchen walks runs sits holds cup"
    answers = [
        "from 20.8s to 30.0s",
        "0 to 5 seconds",
        "The highlights are: very important from 96.0s to 98.0s, 98.0s to 100.0s; important from 10.0s to 12.0s",
        "less important from 4.0s to 6.0s",
    ]
    return [*MR_TEMPLATES, *HD_TEMPLATES, GROUNDING_EVAL_PROMPT, HIGHLIGHT_EVAL_PROMPT, words, *answers, *extra] * 4


@functools.lru_cache(maxsize=4)
def _tiny_bpe(
    vocab_size: int = TINY_BPE_VOCAB_SIZE, extra_corpus: tuple[str, ...] = ()
) -> tuple[tuple[tuple[str, int], ...], tuple[tuple[str, str], ...]]:
    """(vocab items, merges) of a byte-level BPE with the Qwen pre-tokenizer, trained offline."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tokenizer.train_from_iterator(_bpe_corpus(extra_corpus), trainer)
    model = json.loads(tokenizer.to_str())["model"]
    merges = tuple(tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"])
    vocab = tuple(sorted(model["vocab"].items(), key=lambda item: item[1]))
    return vocab, merges


def build_tiny_tokenizer(
    backbone: str = "qwen2_5_vl", *, bpe_vocab_size: int = TINY_BPE_VOCAB_SIZE, extra_corpus: Sequence[str] = ()
) -> Qwen2Tokenizer:
    """Tiny byte-level tokenizer with the special tokens and chat template of `backbone`.

    `backbone`: "qwen2_5_vl" (GroundVTS-Q) or "internvl" (GroundVTS-I). `bpe_vocab_size` (bytes + merges) and
    `extra_corpus` (more text to learn merges from) give shorter sequences for a model trained on a known
    vocabulary, e.g. the synthetic benchmark's queries.
    """
    if backbone not in ("qwen2_5_vl", "internvl"):
        raise ValueError(f"`backbone` must be 'qwen2_5_vl' or 'internvl', got {backbone!r}.")
    vocab_items, merges = _tiny_bpe(bpe_vocab_size, tuple(extra_corpus))
    vocab = dict(vocab_items)
    specials = list(QWEN2_5_VL_SPECIAL_TOKENS)
    if backbone == "internvl":
        specials += INTERNVL_EXTRA_SPECIAL_TOKENS
    for token in specials:
        vocab[token] = len(vocab)
    named = INTERNVL_NAMED_TOKENS if backbone == "internvl" else {}
    tokenizer = Qwen2Tokenizer(
        vocab=vocab,
        merges=list(merges),
        unk_token=None,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        extra_special_tokens=named or None,
        model_max_length=32768,
    )
    # Every special string stays one token, with the id reserved for it above.
    tokenizer.add_special_tokens({"extra_special_tokens": specials}, replace_extra_special_tokens=False)
    tokenizer.chat_template = QWEN2_5_VL_CHAT_TEMPLATE if backbone == "qwen2_5_vl" else INTERNVL_CHAT_TEMPLATE
    return tokenizer


def build_tiny_qwen2_5_vl_processor(
    *,
    max_pixels: int = 56 * 56,
    min_pixels: int = 28 * 28,
    fps: float = 2.0,
    min_frames: int = 4,
    max_frames: int = 32,
    tokenizer: Qwen2Tokenizer | None = None,
) -> GroundVTSQwen2_5_VLProcessor:
    """GroundVTS-Q processor with the tiny tokenizer (or `tokenizer`) and small frames (at most 56x56 px: 4 tokens
    per 2 frames)."""
    size = {"shortest_edge": min_pixels, "longest_edge": max_pixels}
    image_processor = Qwen2VLImageProcessor(size=size, patch_size=14, temporal_patch_size=2, merge_size=2)
    video_processor = Qwen2VLVideoProcessor(
        size=size,
        patch_size=14,
        temporal_patch_size=2,
        merge_size=2,
        fps=fps,
        min_frames=min_frames,
        max_frames=max_frames,
        cap_pixels_per_frame=False,
    )
    return GroundVTSQwen2_5_VLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer or build_tiny_tokenizer("qwen2_5_vl"),
        video_processor=video_processor,
        chat_template=QWEN2_5_VL_CHAT_TEMPLATE,
    )


def build_tiny_qwen3_vl_processor(
    *, max_pixels: int = 64 * 64 * 32, min_pixels: int = 32 * 32, fps: float = 2.0, min_frames: int = 4,
    max_frames: int = 32, max_video_tokens: int = 768, tokenizer: Qwen2Tokenizer | None = None,
) -> GroundVTSQwen3VLProcessor:
    """GroundVTS-Q3 processor with the tiny tokenizer (or `tokenizer`; Qwen3-VL keeps Qwen2.5-VL's special tokens and
    ChatML layout) and patch 16 as Qwen3-VL; `max_pixels` is the per-video budget, capped per frame as the reference
    does (64x64 px, 4 tokens per temporal patch, for up to 32 frames), and at most `max_video_tokens` merged tokens
    per frame (Qwen3-VL's per-frame ceiling)."""
    size = {"shortest_edge": min_pixels, "longest_edge": max_pixels}
    image_processor = Qwen2VLImageProcessor(size=size, patch_size=16, temporal_patch_size=2, merge_size=2)
    video_processor = Qwen3VLVideoProcessor(
        size=size, patch_size=16, temporal_patch_size=2, merge_size=2, fps=fps, min_frames=min_frames,
        max_frames=max_frames, cap_pixels_per_frame=True, max_video_tokens=max_video_tokens,
    )
    return GroundVTSQwen3VLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer or build_tiny_tokenizer("qwen2_5_vl"),
        video_processor=video_processor,
        chat_template=QWEN2_5_VL_CHAT_TEMPLATE,
    )


def build_tiny_internvl_processor(
    *, image_size: int = 56, patch_size: int = 14, num_frames: int = 4
) -> GroundVTSInternVLProcessor:
    """GroundVTS-I processor with the tiny tokenizer and `image_size`-px tiles.

    `image_seq_length` follows the real formula (image_size / patch_size)² · 0.5² (4 tokens at 56 px).
    """
    if image_size % (2 * patch_size):
        raise ValueError(f"`image_size` must be a multiple of 2 * patch_size = {2 * patch_size}, got {image_size}.")
    size = {"height": image_size, "width": image_size}
    normalize = {"image_mean": IMAGENET_MEAN, "image_std": IMAGENET_STD}  # as InternVL's ViT was trained
    image_processor = GotOcr2ImageProcessor(size=size, crop_to_patches=True, min_patches=1, max_patches=2, **normalize)
    video_processor = InternVLVideoProcessor(size=size, num_frames=num_frames, **normalize)
    return GroundVTSInternVLProcessor(
        image_processor=image_processor,
        tokenizer=build_tiny_tokenizer("internvl"),
        video_processor=video_processor,
        image_seq_length=(image_size // patch_size) ** 2 // 4,
        chat_template=INTERNVL_CHAT_TEMPLATE,
    )


def special_token_ids(processor: Any) -> dict[str, int | None]:
    """Token ids a model config must agree on with `processor` (tiny or real, either backbone).

    Always: vocab_size (len of the tokenizer), pad/eos/bos_token_id, image_token_id. Qwen2.5-VL adds
    video_token_id, vision_start_token_id, vision_end_token_id; InternVL adds start_image_token_id,
    end_image_token_id (and video_token_id of `<video>`, which never reaches the model).
    """
    tokenizer = processor.tokenizer
    ids: dict[str, int | None] = {
        "vocab_size": len(tokenizer),
        "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "image_token_id": processor.image_token_id,
    }
    if hasattr(processor, "start_image_token_id"):
        ids.update(
            start_image_token_id=processor.start_image_token_id,
            end_image_token_id=processor.end_image_token_id,
            video_token_id=tokenizer.convert_tokens_to_ids(processor.video_token),
        )
    else:
        ids.update(
            video_token_id=processor.video_token_id,
            vision_start_token_id=tokenizer.convert_tokens_to_ids("<|vision_start|>"),
            vision_end_token_id=tokenizer.convert_tokens_to_ids("<|vision_end|>"),
        )
    return ids


def frame_gray_value(index: int) -> int:
    """Gray level of frame `index` in `write_test_video` videos (decoded values stay within ±3)."""
    return (16 + 8 * index) % 240


def write_test_video(
    path: str | Path,
    num_frames: int,
    fps: float,
    size: tuple[int, int] = (64, 48),
    *,
    frame_times: Sequence[float] | None = None,
    gray_levels: Sequence[int] | None = None,
) -> Path:
    """Encode a small mp4 (H.264, or MPEG-4 Part 2 without libx264) with PyAV.

    Frame k is a uniform gray of `frame_gray_value(k)` (or `gray_levels[k]`), so tests can tell which frames were
    sampled. `size` is (width, height), both even. `frame_times` (seconds, one per frame, increasing) sets each
    frame's presentation time on a 1-ms clock: a variable-frame-rate file whose nominal rate is `fps`.
    """
    import av

    width, height = size
    if num_frames < 0 or width % 2 or height % 2:
        raise ValueError(f"Need num_frames >= 0 and an even (width, height), got {num_frames} and {size}.")
    for name, values in (("frame_times", frame_times), ("gray_levels", gray_levels)):
        if values is not None and len(values) != num_frames:
            raise ValueError(f"`{name}` needs one entry per frame ({num_frames}), got {len(values)}.")
    path = Path(path)
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    clock = Fraction(1, 1000)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if frame_times is not None:
            stream.codec_context.time_base = clock
        if codec == "libx264":
            stream.options = {"crf": "0"}
        for index in range(num_frames):
            level = frame_gray_value(index) if gray_levels is None else gray_levels[index]
            frame = av.VideoFrame.from_ndarray(np.full((height, width, 3), level, dtype=np.uint8), format="rgb24")
            if frame_times is not None:
                frame.pts, frame.time_base = round(frame_times[index] / clock), clock
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        if num_frames == 0:
            container.start_encoding()  # write the header anyway: a valid file with no frames
    return path


# Frames of `write_gop_video` repeat with this period (a whole cycle of gray levels), so long videos reuse them.
GOP_VIDEO_PERIOD = 60


def write_gop_video(
    path: str | Path,
    num_frames: int,
    fps: float,
    size: tuple[int, int] = (64, 48),
    *,
    gop: int = 30,
    b_frames: int = 2,
    frame_times: Sequence[float] | None = None,
    preset: str = "ultrafast",
    crf: int = 20,
    open_gop: bool = False,
) -> Path:
    """Encode a lossy H.264 mp4 with a keyframe every `gop` frames and `b_frames` B-frames between references, for
    decoding tests and benchmarks.

    Frame k is `frame_gray_value(k)` plus a scrolling ±12 texture (mean ≈ the gray level, so the decoded frame
    tells its index modulo 30, while a frame decoded from the wrong reference differs in its pixels). Frames repeat
    every GOP_VIDEO_PERIOD, so hour-long videos cost only the encoding. `frame_times` (seconds, one per frame,
    increasing) makes it variable-rate on a 1-ms clock. `open_gop`: each keyframe after the first is an I-frame with
    a recovery point, not an IDR frame, and the B-frames shown just before it are decoded after it (from both GOPs).
    """
    import av

    width, height = size
    if num_frames < 1 or width % 2 or height % 2 or gop < 1:
        raise ValueError(f"Need num_frames >= 1, gop >= 1 and an even (width, height); got {num_frames}, {gop}, {size}")
    rng = np.random.default_rng(0)
    blocks = rng.integers(-12, 13, (-(-height // 8), -(-2 * width // 8)))
    texture = np.kron(blocks, np.ones((8, 8), dtype=np.int64))[:height]
    cycle = []
    for k in range(GOP_VIDEO_PERIOD):
        shifted = np.roll(texture, 2 * k, axis=1)[:, :width]
        rgb = np.clip(frame_gray_value(k) + shifted, 0, 255).astype(np.uint8)
        rgb_frame = av.VideoFrame.from_ndarray(np.repeat(rgb[:, :, None], 3, axis=2), format="rgb24")
        cycle.append(rgb_frame.reformat(format="yuv420p"))  # converted once, encoded many times
    path = Path(path)
    clock = Fraction(1, 1000)
    with av.open(str(path), mode="w") as container:
        rate = Fraction(fps).limit_denominator(1001)
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {
            "preset": preset, "crf": str(crf),
            "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes={b_frames}:b-adapt=0"
            + (":open-gop=1" if open_gop else ""),
        }
        if frame_times is not None:
            stream.codec_context.time_base = clock
        for index in range(num_frames):
            frame = cycle[index % GOP_VIDEO_PERIOD]
            if frame_times is not None:
                frame.pts, frame.time_base = round(frame_times[index] / clock), clock
            else:
                frame.pts, frame.time_base = index, 1 / rate
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
