import pytest
import torch

from groundvts.modeling.modeling_groundvts_qwen2_5_vl import GroundVTSQwen2_5_VLForConditionalGeneration
from tiny_models import spread_vts_scores, tiny_qwen_config


@pytest.fixture(scope="session")
def qwen_model():
    torch.manual_seed(0)
    model = GroundVTSQwen2_5_VLForConditionalGeneration(tiny_qwen_config()).eval()
    spread_vts_scores(model)
    return model
