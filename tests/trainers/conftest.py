import json

import pytest
import torch

from groundvts.processing.prompts import build_mr_conversation
from groundvts.processing.tiny import build_tiny_qwen2_5_vl_processor, write_test_video
from tiny_models import tiny_qwen_config_for

QUERIES = ("a man walks in", "the dog runs away", "a cat sleeps", "someone opens the door")


@pytest.fixture(scope="session")
def tiny_processor():
    return build_tiny_qwen2_5_vl_processor()


@pytest.fixture(scope="session")
def grounding_records(tmp_path_factory, tiny_processor):
    """Four Grounding-FT records on tiny encoded videos (2-4 s at 4 fps)."""
    root = tmp_path_factory.mktemp("videos")
    records = []
    for index, query in enumerate(QUERIES):
        video = write_test_video(root / f"v{index}.mp4", num_frames=8 + 4 * index, fps=4.0)
        records.append(build_mr_conversation(query, 0.5 * index, 0.5 * index + 1.0, str(video), template_index=index))
    return records


@pytest.fixture(scope="session")
def grounding_jsonl(tmp_path_factory, grounding_records):
    path = tmp_path_factory.mktemp("data") / "grounding_ft.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for record in grounding_records))
    return path


@pytest.fixture(scope="session")
def plain_qwen_dir(tmp_path_factory, tiny_processor):
    """A plain (stock Qwen2.5-VL, no VTS) tiny checkpoint with the tiny processor: where stage 1 starts."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    ours = tiny_qwen_config_for(tiny_processor)
    values = {k: v for k, v in ours.to_dict().items() if not k.startswith("vts_") and k not in ("model_type", "auto_map", "architectures")}
    config = Qwen2_5_VLConfig(**values)
    assert config.model_type == "qwen2_5_vl"
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("plain_qwen")
    Qwen2_5_VLForConditionalGeneration(config).save_pretrained(path)
    tiny_processor.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def llava_video_json(tmp_path_factory, grounding_records):
    """The same videos as LLaVA-Video-178K-style captioning/QA entries (paths relative to the video folder)."""
    path = tmp_path_factory.mktemp("llava") / "llava_video.json"
    entries = []
    for index, record in enumerate(grounding_records):
        video = record["videos"][0]
        entries.append({
            "id": f"clip{index}",
            "video": video.rsplit("/", 1)[1],
            "conversations": [
                {"from": "human", "value": "<image>\nDescribe what happens in the video."},
                {"from": "gpt", "value": f"A gray screen that gets brighter, clip {index}."},
            ],
            "data_source": "tiny",
        })
    path.write_text(json.dumps(entries))
    return path, str(grounding_records[0]["videos"][0]).rsplit("/", 1)[0]
