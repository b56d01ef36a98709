"""The synthetic benchmark on either backbone: Qwen3-VL (GroundVTS-Q3) builds the same tokens per temporal patch as
Qwen2.5-VL, its tower labels line up with its tokens (and DeepStack streams), and a micro run goes end to end."""

import json
import math

import pytest
import torch

from groundvts.scripts.cli import synthetic_benchmark as synthetic_benchmark_cli
from groundvts.scripts.data.synthetic.backbones import (
    SYNTHETIC_BACKBONES,
    backbone_for_processor,
    qwen3_vl_frame_side,
    synthetic_backbone,
)
from groundvts.scripts.data.synthetic.benchmark import (
    SyntheticSettings,
    synthetic_model_config,
    synthetic_processor,
    video_collator,
)
from groundvts.scripts.data.synthetic.tower import TowerCollator, tower_records, video_token_streams
from groundvts.scripts.data.synthetic.videos import make_synthetic_benchmark

SIDE = 56
SMALL = dict(hidden=64, layers=2, vision_hidden=32)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("q3data")
    make_synthetic_benchmark(out, seed=3, num_train=0, num_val=0, num_test=8, width=SIDE, height=SIDE,
                             min_duration=8, max_duration=10, event_types=("appear", "disappear"), min_distractors=0,
                             max_distractors=0, shape_size=12)
    return out


def test_unknown_backbone_is_refused_naming_the_choices():
    with pytest.raises(ValueError, match=r"'qwen3'.*\['qwen2_5_vl', 'qwen3_vl'\]"):
        SyntheticSettings(backbone="qwen3")


def test_qwen3_vl_frames_round_to_the_merged_token_grid():
    assert [qwen3_vl_frame_side(side) for side in (20, 56, 64, 112)] == [32, 64, 64, 128]


@pytest.mark.parametrize("tag", sorted(SYNTHETIC_BACKBONES))
def test_each_backbone_builds_its_own_processor_and_model(tag):
    settings = SyntheticSettings(backbone=tag, **SMALL)
    processor = synthetic_processor(settings, 2.0)
    assert backbone_for_processor(processor) is synthetic_backbone(tag)
    config = synthetic_model_config(processor, settings)
    assert config.model_type == f"groundvts_{tag}"
    assert synthetic_backbone(tag).model_class().config_class is type(config)
    assert config.video_token_id == processor.video_token_id


def test_qwen3_vl_writes_a_timestamp_per_patch_and_keeps_four_tokens_per_patch(data):
    settings = SyntheticSettings(backbone="qwen3_vl", **SMALL)
    processor = synthetic_processor(settings, 2.0)
    collator = video_collator(processor, 2.0)
    records = tower_records(data, "test")
    batch = collator(records[:1])
    t, h, w = batch["video_grid_thw"][0].tolist()
    assert (h, w) == (4, 4)  # 56 px -> 64 px at patch 16: 2 x 2 merged tokens, as GroundVTS-Q's 56 px at patch 14
    text = processor.tokenizer.decode(batch["input_ids"][0])
    assert text.count(" seconds>") == t
    assert int((batch["input_ids"][0] == processor.video_token_id).sum()) == t * 4


def test_qwen3_vl_tower_labels_line_up_with_its_tokens_and_deepstack(data):
    settings = SyntheticSettings(backbone="qwen3_vl", **SMALL)
    processor = synthetic_processor(settings, 2.0)
    torch.manual_seed(0)
    model = synthetic_backbone("qwen3_vl").model_class()(synthetic_model_config(processor, settings))
    collator = TowerCollator(video_collator(processor, 2.0))
    records = tower_records(data, "test")
    batch = collator(records)
    video_tokens = int((collator.video_collator(records)["input_ids"] == processor.video_token_id).sum())
    streams = video_token_streams(model, batch["pixel_values_videos"], batch["video_grid_thw"])
    assert len(streams) == 1 + len(model.config.vision_config.deepstack_visual_indexes) == 2  # main + DeepStack
    assert all(stream.shape == (video_tokens, settings.hidden) for stream in streams)
    assert batch["cell_labels"].shape == (video_tokens,)
    assert 0 < int(batch["cell_labels"].sum()) < video_tokens


def _token_contrast(pixels: torch.Tensor) -> torch.Tensor:
    """Per merged token: the spread of its pixels within each channel (0 on a flat background)."""
    patches = pixels.view(-1, 4, 3, 2 * 16 * 16)  # (tokens, 2 x 2 patches, channels, frames x 16 x 16)
    return patches.permute(0, 2, 1, 3).flatten(2).std(dim=2).sum(dim=1)


def test_qwen3_vl_labels_mark_the_tokens_whose_pixels_show_the_target(data):
    """Token order: the labelled token is the merged cell whose pixels hold the shape (raster order per patch)."""
    processor = synthetic_processor(SyntheticSettings(backbone="qwen3_vl", **SMALL), 2.0)
    collator = TowerCollator(video_collator(processor, 2.0))
    checked = 0
    for record in tower_records(data, "test"):
        target = json.loads(record["target"])
        left, top, right, bottom = target["footprint"]
        cell = SIDE / 2  # 2 x 2 merged cells per frame
        if math.floor(left / cell) != math.floor(right / cell) or math.floor(top / cell) != math.floor(bottom / cell):
            continue  # the shape spills into a second cell
        batch = collator([record])
        labels, contrast = batch["cell_labels"], _token_contrast(batch["pixel_values_videos"])
        shows = contrast > 0.5 * contrast.max()
        assert shows[labels == 1].all()  # every labelled token shows the shape
        cells = torch.arange(labels.numel()) % 4
        target_cell = int(cells[labels == 1][0])
        assert (cells[shows] == target_cell).all()  # and only the target's cell ever shows it
        assert int(shows.sum()) - int(labels.sum()) <= 2  # patches straddling the event's start or end
        checked += 1
    assert checked >= 2


def test_qwen3_vl_micro_run_end_to_end(tmp_path):
    out = tmp_path / "q3"
    argv = ["--out", str(out), "--backbone", "qwen3_vl", "--num-train", "6", "--num-test", "3", "--tower-steps", "2",
            "--base-steps", "2", "--selection-steps", "1", "--joint-steps", "0", "--finetune-steps", "1",
            "--batch-size", "3", "--variants", "token", "--size", "56", "56", "--shape-size", "12", "--duration", "8",
            "9", "--hidden", "64", "--layers", "2"]
    assert synthetic_benchmark_cli.main(argv) == 0
    report = json.loads((out / "results.json").read_text())
    assert report["settings"]["backbone"] == "qwen3_vl"
    assert list(report["results"]) == ["mean_window", "base_2fps_dense", "token"]
    assert all(0.0 <= report["results"]["token"][key] <= 100.0 for key in ("R1@0.5", "mIoU", "target_tokens_kept"))
    config = json.loads((out / "token" / "config.json").read_text())
    assert (config["model_type"], config["vts_strategy"], config["vts_min_tokens_per_frame"]) == (
        "groundvts_qwen3_vl", "token", 1)
    rows = [json.loads(line) for line in (out / "token.test.jsonl").read_text().splitlines()]
    assert len(rows) == 3
    assert all(row["num_kept_tokens"] == math.ceil(0.5 * row["num_video_tokens"]) for row in rows)
