import pytest
import torch

from groundvts.hub_configs import hub_config_path
from groundvts.modeling.configuration_groundvts_qwen2_5_vl import GroundVTSQwen2_5_VLConfig
from groundvts.modeling.modeling_groundvts_qwen2_5_vl import GroundVTSQwen2_5_VLForConditionalGeneration


@pytest.fixture(scope="module")
def config():
    return GroundVTSQwen2_5_VLConfig.from_json_file(str(hub_config_path("groundvts-q-qwen2_5-vl-7b")))


def test_real_size_settings(config):
    assert config.model_type == "groundvts_qwen2_5_vl"
    assert (config.vts_reduction_dim, config.vts_keep_ratio) == (512, 0.5)
    assert config.text_config.hidden_size == 3584 and config.vision_config.tokens_per_second == 2
    assert config.video_token_id == 151656


def test_vts_parameter_count_matches_paper_table_14(config):
    with torch.device("meta"):
        model = GroundVTSQwen2_5_VLForConditionalGeneration(config)
    vts = sum(p.numel() for p in model.model.vts.parameters())
    assert vts == 2 * 3584 * 512 + 2 * (3584 * 3584 + 3584)
    assert round(vts / 1e6, 1) == 29.4
    merger = sum(p.numel() for p in model.model.visual.merger.parameters())
    assert round(merger / 1e6, 1) == 44.6  # projector row of Table 14
    total = sum(p.numel() for p in model.parameters())
    assert round((total - vts) / 1e9, 2) == 8.29  # Qwen2.5-VL-7B-Instruct


def test_unknown_config_name_lists_the_available_ones():
    with pytest.raises(FileNotFoundError, match="groundvts-q-qwen2_5-vl-7b"):
        hub_config_path("qwen-7b")
