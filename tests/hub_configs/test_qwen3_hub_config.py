"""The real-size GroundVTS-Q3 configs (Qwen3-VL 2B / 4B / 8B Instruct + VTS with D_r 512, rho 0.5): the backbone
numbers of the released Qwen3-VL config.json files and the VTS parameter count 2·D·D_r + 2(D² + D) at each size."""

import pytest
import torch

from groundvts.hub_configs import hub_config_path
from groundvts.modeling.configuration_groundvts_qwen3_vl import GroundVTSQwen3VLConfig
from groundvts.modeling.modeling_groundvts_qwen3_vl import GroundVTSQwen3VLForConditionalGeneration

# size: (LLM width, LLM layers, vision depth, DeepStack layers, tied embeddings, VTS params in M, backbone params in B)
SIZES = {
    "2b": (2048, 28, 24, [5, 11, 17], True, 10.5, 2.13),
    "4b": (2560, 36, 24, [5, 11, 17], True, 15.7, 4.44),
    "8b": (4096, 36, 27, [8, 16, 24], False, 37.8, 8.77),
}


def load(size: str) -> GroundVTSQwen3VLConfig:
    return GroundVTSQwen3VLConfig.from_json_file(str(hub_config_path(f"groundvts-q3-qwen3-vl-{size}")))


@pytest.mark.parametrize("size", sorted(SIZES))
def test_real_size_settings(size):
    config = load(size)
    width, layers, depth, deepstack, tied, _, _ = SIZES[size]
    assert config.model_type == "groundvts_qwen3_vl"
    assert (config.vts_reduction_dim, config.vts_keep_ratio, config.vts_min_tokens_per_frame) == (512, 0.5, 1)
    assert (config.text_config.hidden_size, config.text_config.num_hidden_layers) == (width, layers)
    assert config.vision_config.out_hidden_size == width and config.vision_config.depth == depth
    assert list(config.vision_config.deepstack_visual_indexes) == deepstack
    assert config.tie_word_embeddings is tied
    assert (config.video_token_id, config.vision_start_token_id, config.vision_end_token_id) == (151656, 151652, 151653)
    assert config.text_config.rope_parameters["mrope_section"] == [24, 20, 20]


@pytest.mark.parametrize("size", sorted(SIZES))
def test_vts_parameter_count(size):
    config = load(size)
    width, *_, vts_millions, backbone_billions = SIZES[size]
    with torch.device("meta"):
        model = GroundVTSQwen3VLForConditionalGeneration(config)
    vts = sum(p.numel() for p in model.model.vts.parameters())
    assert vts == 2 * width * 512 + 2 * (width * width + width)
    assert round(vts / 1e6, 1) == vts_millions
    backbone = sum(p.numel() for p in model.parameters()) - vts
    assert round(backbone / 1e9, 2) == backbone_billions  # 8B: 8.77B, the released Qwen3-VL-8B-Instruct's count
