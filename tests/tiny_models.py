"""Tiny random-weight GroundVTS models and hand-built inputs for CPU tests."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from groundvts.modeling.configuration_groundvts_qwen2_5_vl import GroundVTSQwen2_5_VLConfig

VOCAB, PAD, BOS, EOS = 128, 0, 1, 2
IMAGE_ID, VIDEO_ID, VISION_START, VISION_END = 100, 101, 102, 103
PATCH_DIM = 3 * 2 * 2 * 2  # channels x temporal_patch x patch x patch


def tiny_qwen_config(**overrides) -> GroundVTSQwen2_5_VLConfig:
    text = dict(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=1024, pad_token_id=PAD, bos_token_id=BOS, eos_token_id=EOS,
        rope_parameters={"rope_type": "default", "mrope_section": [2, 1, 1], "rope_theta": 10000.0},
    )
    vision = dict(
        depth=1, hidden_size=16, intermediate_size=32, num_heads=2, out_hidden_size=32, patch_size=2,
        spatial_merge_size=2, temporal_patch_size=2, tokens_per_second=2, window_size=8, fullatt_block_indexes=[0],
    )
    settings = dict(
        text_config=text, vision_config=vision, image_token_id=IMAGE_ID, video_token_id=VIDEO_ID,
        vision_start_token_id=VISION_START, vision_end_token_id=VISION_END, vts_reduction_dim=8,
    )
    settings.update(overrides)
    return GroundVTSQwen2_5_VLConfig(**settings)


def stock_qwen_config(config: GroundVTSQwen2_5_VLConfig):
    """The plain `Qwen2_5_VLConfig` (model_type "qwen2_5_vl") of a GroundVTS-Q config: no VTS fields, and the stock
    model_type, which selects the stock weight-name conversions on save and load."""
    from transformers import Qwen2_5_VLConfig

    drop = ("model_type", "auto_map", "architectures")
    values = {k: v for k, v in config.to_dict().items() if not k.startswith("vts_") and k not in drop}
    stock = Qwen2_5_VLConfig(**values)
    assert type(stock) is Qwen2_5_VLConfig and stock.model_type == "qwen2_5_vl"
    return stock


def video_sample(prefix: int, grid: tuple[int, int, int], question: int, seed: int, answer: int = 0) -> dict:
    """One sample `text <vs> video tokens <ve> question answer`; grid = (t, h, w) in patches.

    The question tokens are marked in `query_mask`; answer tokens get labels, everything else -100.
    """
    g = torch.Generator().manual_seed(seed)
    t, h, w = grid
    n_video = t * h * w // 4
    pixels = torch.randn(t * h * w, PATCH_DIM, generator=g)  # drawn first: answer length must not change it
    text = lambda n: torch.randint(3, 90, (n,), generator=g).tolist()
    ids = text(prefix) + [VISION_START] + [VIDEO_ID] * n_video + [VISION_END]
    query = [0] * len(ids) + [1] * question + [0] * answer
    ids = ids + text(question) + text(answer)
    labels = [-100] * (len(ids) - answer) + ids[len(ids) - answer :]
    return {
        "input_ids": ids,
        "query_mask": query,
        "labels": labels,
        "pixel_values_videos": pixels,
        "video_grid_thw": list(grid),
        "second_per_grid_ts": 1.0,
    }


def collate(samples: list[dict], padding_side: str = "left", with_labels: bool = False) -> dict:
    """Pad a list of `video_sample`s into model inputs."""
    length = max(len(s["input_ids"]) for s in samples)

    def pad(values, fill):
        tensor = torch.tensor(values)
        gap = length - tensor.shape[0]
        return F.pad(tensor, (gap, 0) if padding_side == "left" else (0, gap), value=fill)

    ids = torch.stack([pad(s["input_ids"], PAD) for s in samples])
    batch = {
        "input_ids": ids,
        "attention_mask": torch.stack([pad([1] * len(s["input_ids"]), 0) for s in samples]),
        "query_mask": torch.stack([pad(s["query_mask"], 0) for s in samples]),
        "mm_token_type_ids": (ids == VIDEO_ID).long() * 2,
        "pixel_values_videos": torch.cat([s["pixel_values_videos"] for s in samples]),
        "video_grid_thw": torch.tensor([s["video_grid_thw"] for s in samples]),
        "second_per_grid_ts": torch.tensor([s["second_per_grid_ts"] for s in samples]),
    }
    if with_labels:
        batch["labels"] = torch.stack([pad(s["labels"], -100) for s in samples])
    return batch


def video_token_count(batch: dict) -> list[int]:
    return (batch["video_grid_thw"].prod(-1) // 4).tolist()


class vts_settings:
    """Temporarily change VTS config fields of a (session-shared) model."""

    def __init__(self, model, **values):
        self.config, self.values, self.saved = model.config, values, {}

    def __enter__(self):
        for name, value in self.values.items():
            self.saved[name] = getattr(self.config, name)
            setattr(self.config, name, value)

    def __exit__(self, *exc):
        for name, value in self.saved.items():
            setattr(self.config, name, value)


def spread_vts_scores(model) -> None:
    """Random init gives near-uniform relevance (tiny logits); widen it so selection depends on the
    query and tests can tell right from wrong."""
    with torch.no_grad():
        for weight in (model.model.vts.wv.weight, model.model.vts.wq.weight, model.get_input_embeddings().weight):
            weight.normal_(0.0, 1.0)


SAMPLES_FOR_HUB = [
    dict(prefix=3, grid=(2, 4, 4), question=4, seed=10),
    dict(prefix=1, grid=(3, 4, 4), question=2, seed=11),
]


# --- GroundVTS-I (InternVL) ------------------------------------------------------------------------------------

from groundvts.modeling.configuration_groundvts_internvl import GroundVTSInternVLConfig  # noqa: E402

# Not InternVL's class default (151667) nor 3.5-HF's 151671: the model must read the id from its config.
IMG_CONTEXT_ID, IMG_START_ID, IMG_END_ID, FRAME_LABEL_ID = 110, 111, 112, 113
INTERNVL_IMAGE_SIZE = 8  # px; patch 2 -> 4 x 4 patches -> pixel shuffle 0.5 -> 2 x 2 = 4 tokens per frame
INTERNVL_FRAME_TOKENS = 4


def tiny_internvl_config(**overrides) -> GroundVTSInternVLConfig:
    text = dict(
        model_type="qwen3", vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=1024,
        pad_token_id=PAD, bos_token_id=BOS, eos_token_id=EOS,
    )
    vision = dict(
        hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        image_size=INTERNVL_IMAGE_SIZE, patch_size=2, attention_bias=True,
    )
    settings = dict(
        text_config=text, vision_config=vision, image_token_id=IMG_CONTEXT_ID,
        image_seq_length=INTERNVL_FRAME_TOKENS, vts_reduction_dim=8,
    )
    settings.update(overrides)
    return GroundVTSInternVLConfig(**settings)


def internvl_sample(prefix: int, frames: int, question: int, seed: int, answer: int = 0, image: bool = False) -> dict:
    """One InternVL sample: `text [<img> image </img>] (FrameN: <img> frame </img>)* question answer`.

    Like the GroundVTS-I processor: frame context tokens have mm_token_type_ids 2, still-image tokens
    (including their <img>/</img>) 1, everything else 0. pixel_values holds the image then the frames.
    """
    g = torch.Generator().manual_seed(seed)
    size = INTERNVL_IMAGE_SIZE
    pixels = torch.randn(frames + int(image), 3, size, size, generator=g)  # drawn first: text must not change it
    text = lambda n: torch.randint(3, 90, (n,), generator=g).tolist()
    ids, types = [], []

    def add(tokens, token_type):
        ids.extend(tokens)
        types.extend([token_type] * len(tokens))

    add(text(prefix), 0)
    if image:
        add([IMG_START_ID] + [IMG_CONTEXT_ID] * INTERNVL_FRAME_TOKENS + [IMG_END_ID], 1)
    for _ in range(frames):
        add([FRAME_LABEL_ID, IMG_START_ID], 0)
        add([IMG_CONTEXT_ID] * INTERNVL_FRAME_TOKENS, 2)
        add([IMG_END_ID], 0)
    query = [0] * len(ids) + [1] * question + [0] * answer
    add(text(question) + text(answer), 0)
    labels = [-100] * (len(ids) - answer) + ids[len(ids) - answer :]
    return {
        "input_ids": ids,
        "mm_token_type_ids": types,
        "query_mask": query,
        "labels": labels,
        "pixel_values": pixels,
        "video_num_frames": [frames] if frames else [],
    }


def collate_internvl(samples: list[dict], padding_side: str = "left", with_labels: bool = False) -> dict:
    """Pad a list of `internvl_sample`s into model inputs (the processor's output layout)."""
    length = max(len(s["input_ids"]) for s in samples)

    def pad(values, fill):
        tensor = torch.tensor(values)
        gap = length - tensor.shape[0]
        return F.pad(tensor, (gap, 0) if padding_side == "left" else (0, gap), value=fill)

    batch = {
        "input_ids": torch.stack([pad(s["input_ids"], PAD) for s in samples]),
        "attention_mask": torch.stack([pad([1] * len(s["input_ids"]), 0) for s in samples]),
        "query_mask": torch.stack([pad(s["query_mask"], 0) for s in samples]),
        "mm_token_type_ids": torch.stack([pad(s["mm_token_type_ids"], 0) for s in samples]),
        "pixel_values": torch.cat([s["pixel_values"] for s in samples]),
        "video_num_frames": torch.tensor([n for s in samples for n in s["video_num_frames"]], dtype=torch.long),
    }
    if with_labels:
        batch["labels"] = torch.stack([pad(s["labels"], -100) for s in samples])
    return batch


INTERNVL_SAMPLES_FOR_HUB = [
    dict(prefix=3, frames=2, question=4, seed=10),
    dict(prefix=1, frames=3, question=2, seed=11),
]


def stock_internvl_config(config: GroundVTSInternVLConfig):
    """The plain `InternVLConfig` (model_type "internvl") of a GroundVTS-I config: no VTS fields, and the stock
    model_type, which selects the stock weight-name conversions on save and load."""
    from transformers import InternVLConfig

    drop = ("model_type", "auto_map", "architectures")
    values = {k: v for k, v in config.to_dict().items() if not k.startswith("vts_") and k not in drop}
    stock = InternVLConfig(**values)
    assert stock.model_type == "internvl"
    return stock


def tiny_qwen_config_for(processor, **overrides) -> GroundVTSQwen2_5_VLConfig:
    """A tiny GroundVTS-Q config whose token ids and patch size match a tiny processor (processing/tiny.py)."""
    from groundvts.processing.tiny import special_token_ids

    ids = special_token_ids(processor)
    settings = dict(
        text_config=dict(vocab_size=ids["vocab_size"], hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, pad_token_id=ids["pad_token_id"],
                         bos_token_id=ids["bos_token_id"], eos_token_id=ids["eos_token_id"],
                         rope_parameters={"rope_type": "default", "mrope_section": [2, 1, 1], "rope_theta": 1e4}),
        vision_config=dict(depth=1, hidden_size=16, intermediate_size=32, num_heads=2, out_hidden_size=32,
                           patch_size=14, spatial_merge_size=2, temporal_patch_size=2, tokens_per_second=2,
                           window_size=56, fullatt_block_indexes=[0]),
        image_token_id=ids["image_token_id"], video_token_id=ids["video_token_id"],
        vision_start_token_id=ids["vision_start_token_id"], vision_end_token_id=ids["vision_end_token_id"],
    )
    settings.update(overrides)
    return tiny_qwen_config(**settings)


def tiny_internvl_config_for(processor, num_hidden_layers: int = 2, **overrides) -> GroundVTSInternVLConfig:
    """A tiny GroundVTS-I config whose token ids and tile size match a tiny processor (56 px, patch 14);
    `num_hidden_layers` is the language model's depth."""
    from groundvts.processing.tiny import special_token_ids

    ids = special_token_ids(processor)
    settings = dict(
        text_config=dict(model_type="qwen3", vocab_size=ids["vocab_size"], hidden_size=32, intermediate_size=64,
                         num_hidden_layers=num_hidden_layers, num_attention_heads=4, num_key_value_heads=2, head_dim=8,
                         pad_token_id=ids["pad_token_id"], eos_token_id=ids["eos_token_id"]),
        vision_config=dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                           image_size=56, patch_size=14),
        image_token_id=ids["image_token_id"],
        image_seq_length=processor.image_seq_length,
    )
    settings.update(overrides)
    return tiny_internvl_config(**settings)


# --- GroundVTS-Q3 (Qwen3-VL) -------------------------------------------------------------------------------------

from groundvts.modeling.configuration_groundvts_qwen3_vl import GroundVTSQwen3VLConfig  # noqa: E402

TIMESTAMP_TOKENS = 2  # stand-in for the tokenised "<t seconds>" text before every temporal patch


def tiny_qwen3_config(**overrides) -> GroundVTSQwen3VLConfig:
    text = dict(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4,
        num_key_value_heads=2, head_dim=8, max_position_embeddings=1024, pad_token_id=PAD, bos_token_id=BOS,
        eos_token_id=EOS,
        rope_parameters={"rope_type": "default", "mrope_section": [2, 1, 1], "mrope_interleaved": True,
                         "rope_theta": 10000.0},
    )
    # Two DeepStack layers (the real model has three), so that features reach two decoder layers.
    vision = dict(
        depth=2, hidden_size=16, intermediate_size=32, num_heads=2, out_hidden_size=32, patch_size=2,
        spatial_merge_size=2, temporal_patch_size=2, num_position_embeddings=16, deepstack_visual_indexes=[0, 1],
    )
    settings = dict(
        text_config=text, vision_config=vision, image_token_id=IMAGE_ID, video_token_id=VIDEO_ID,
        vision_start_token_id=VISION_START, vision_end_token_id=VISION_END, vts_reduction_dim=8,
    )
    settings.update(overrides)
    return GroundVTSQwen3VLConfig(**settings)


def stock_qwen3_config(config: GroundVTSQwen3VLConfig):
    """The plain `Qwen3VLConfig` (model_type "qwen3_vl") of a GroundVTS-Q3 config: no VTS fields."""
    from transformers import Qwen3VLConfig

    drop = ("model_type", "auto_map", "architectures")
    values = {k: v for k, v in config.to_dict().items() if not k.startswith("vts_") and k not in drop}
    stock = Qwen3VLConfig(**values)
    assert type(stock) is Qwen3VLConfig and stock.model_type == "qwen3_vl"
    return stock


def qwen3_video_sample(prefix: int, grid: tuple[int, int, int], question: int, seed: int, answer: int = 0) -> dict:
    """One Qwen3-VL sample: `text (<t> <vs> patch tokens <ve>)* question answer`, one block per temporal patch
    like the Qwen3-VL processor writes it; grid = (temporal patches, h, w) in patches. The timestamp tokens are
    plain text (mm_token_type_ids 0), the pads video (2)."""
    g = torch.Generator().manual_seed(seed)
    t, h, w = grid
    pixels = torch.randn(t * h * w, PATCH_DIM, generator=g)  # drawn first: answer length must not change it
    text = lambda n: torch.randint(3, 90, (n,), generator=g).tolist()
    ids = text(prefix)
    for _ in range(t):
        ids += text(TIMESTAMP_TOKENS) + [VISION_START] + [VIDEO_ID] * (h * w // 4) + [VISION_END]
    query = [0] * len(ids) + [1] * question + [0] * answer
    ids = ids + text(question) + text(answer)
    labels = [-100] * (len(ids) - answer) + ids[len(ids) - answer :]
    return {
        "input_ids": ids,
        "query_mask": query,
        "labels": labels,
        "pixel_values_videos": pixels,
        "video_grid_thw": list(grid),
    }


def collate_qwen3(samples: list[dict], padding_side: str = "left", with_labels: bool = False) -> dict:
    """Pad a list of `qwen3_video_sample`s into model inputs (no `second_per_grid_ts`: time is text in Qwen3-VL)."""
    batch = collate([dict(s, second_per_grid_ts=0.0) for s in samples], padding_side, with_labels)
    batch.pop("second_per_grid_ts")
    return batch


def tiny_qwen3_config_for(processor, **overrides) -> GroundVTSQwen3VLConfig:
    """A tiny GroundVTS-Q3 config whose token ids and patch size (16) match a tiny Qwen3-VL processor."""
    from groundvts.processing.tiny import special_token_ids

    ids = special_token_ids(processor)
    text = dict(
        vocab_size=ids["vocab_size"], hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=8, pad_token_id=ids["pad_token_id"], bos_token_id=ids["bos_token_id"],
        eos_token_id=ids["eos_token_id"],
        rope_parameters={"rope_type": "default", "mrope_section": [2, 1, 1], "mrope_interleaved": True, "rope_theta": 1e4},
    )
    vision = dict(
        depth=2, hidden_size=16, intermediate_size=32, num_heads=2, out_hidden_size=32, patch_size=16,
        spatial_merge_size=2, temporal_patch_size=2, num_position_embeddings=16, deepstack_visual_indexes=[0, 1],
    )
    settings = dict(
        text_config=text, vision_config=vision, image_token_id=ids["image_token_id"],
        video_token_id=ids["video_token_id"], vision_start_token_id=ids["vision_start_token_id"],
        vision_end_token_id=ids["vision_end_token_id"],
    )
    settings.update(overrides)
    return tiny_qwen3_config(**settings)
