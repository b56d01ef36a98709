"""Shared fixtures: tiny processors (built offline) and tiny mp4 files encoded with PyAV."""

from pathlib import Path

import pytest

from processing_test_utils import build_rope_model

from groundvts.processing.tiny import (
    build_tiny_internvl_processor,
    build_tiny_qwen2_5_vl_processor,
    build_tiny_qwen3_vl_processor,
    write_test_video,
)


@pytest.fixture(scope="session")
def qwen_processor():
    return build_tiny_qwen2_5_vl_processor()


@pytest.fixture(scope="session")
def rope_model(qwen_processor):
    """Stock Qwen2.5-VL model (tiny), only for `get_rope_index`: the M-RoPE positions the model would use."""
    return build_rope_model(qwen_processor)


@pytest.fixture(scope="session")
def qwen3_processor():
    return build_tiny_qwen3_vl_processor()


@pytest.fixture(scope="session")
def internvl_processor():
    return build_tiny_internvl_processor()


@pytest.fixture(scope="session")
def videos(tmp_path_factory) -> dict[str, Path]:
    """Named test videos: '2fps' (16 frames, 8 s), '1fps' (8 frames, 8 s), '4fps' (24 frames, 6 s)."""
    folder = tmp_path_factory.mktemp("videos")
    return {
        "2fps": write_test_video(folder / "two_fps.mp4", num_frames=16, fps=2.0),
        "1fps": write_test_video(folder / "one_fps.mp4", num_frames=8, fps=1.0),
        "4fps": write_test_video(folder / "four_fps.mp4", num_frames=24, fps=4.0),
    }

