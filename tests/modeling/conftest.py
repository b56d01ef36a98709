import pytest
import torch

from groundvts.modeling.modeling_groundvts_internvl import GroundVTSInternVLForConditionalGeneration
from groundvts.modeling.modeling_groundvts_qwen2_5_vl import GroundVTSQwen2_5_VLForConditionalGeneration
from groundvts.modeling.modeling_groundvts_qwen3_vl import GroundVTSQwen3VLForConditionalGeneration
from tiny_models import (
    collate,
    collate_internvl,
    collate_qwen3,
    internvl_sample,
    qwen3_video_sample,
    spread_vts_scores,
    tiny_internvl_config,
    tiny_qwen3_config,
    tiny_qwen_config,
    video_sample,
)


@pytest.fixture(scope="session")
def qwen_model():
    torch.manual_seed(0)
    model = GroundVTSQwen2_5_VLForConditionalGeneration(tiny_qwen_config()).eval()
    spread_vts_scores(model)
    return model


@pytest.fixture(scope="session")
def qwen3_model():
    torch.manual_seed(0)
    model = GroundVTSQwen3VLForConditionalGeneration(tiny_qwen3_config()).eval()
    spread_vts_scores(model)
    return model


@pytest.fixture(scope="session")
def internvl_model():
    torch.manual_seed(0)
    model = GroundVTSInternVLForConditionalGeneration(tiny_internvl_config()).eval()
    spread_vts_scores(model)
    return model


# Videos of different lengths, so that rows lose different numbers of tokens and need left padding; the third
# InternVL row also has a still image (never sampled).
QWEN_VIDEO_ROWS = [
    dict(prefix=3, grid=(2, 4, 4), question=4, seed=0),
    dict(prefix=5, grid=(3, 4, 6), question=3, seed=1),
    dict(prefix=2, grid=(1, 6, 4), question=5, seed=2),
]
QWEN3_VIDEO_ROWS = QWEN_VIDEO_ROWS  # same grids, laid out as Qwen3-VL's per-patch blocks
INTERNVL_VIDEO_ROWS = [
    dict(prefix=3, frames=3, question=4, seed=0),
    dict(prefix=5, frames=5, question=3, seed=1),
    dict(prefix=2, frames=1, question=5, seed=2, image=True),
]


@pytest.fixture(params=["qwen", "qwen3", "internvl"])
def video_backbone(request, qwen_model, qwen3_model, internvl_model):
    """(model, left-padded 3-row video batch with `query_mask`) of each backbone."""
    if request.param == "qwen":
        return qwen_model, collate([video_sample(**row) for row in QWEN_VIDEO_ROWS], "left")
    if request.param == "qwen3":
        return qwen3_model, collate_qwen3([qwen3_video_sample(**row) for row in QWEN3_VIDEO_ROWS], "left")
    return internvl_model, collate_internvl([internvl_sample(**row) for row in INTERNVL_VIDEO_ROWS], "left")
