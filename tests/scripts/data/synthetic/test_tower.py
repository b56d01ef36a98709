"""The synthetic base model's vision pre-task: labels from the manifest, and a trainer that moves only the tower."""

import pytest
import torch

from groundvts.modeling.modeling_groundvts_qwen2_5_vl import GroundVTSQwen2_5_VLForConditionalGeneration
from groundvts.scripts.data.synthetic.videos import make_synthetic_benchmark
from groundvts.scripts.data.synthetic.benchmark import (
    SyntheticSettings,
    synthetic_model_config,
    synthetic_processor,
    video_collator,
)
from groundvts.scripts.data.synthetic.tower import tower_records, train_tower, visible_cell_labels


def test_labels_mark_the_target_cell_while_visible():
    target = {"event": "appear", "window": [2.0, 5.0], "center": [40.0, 10.0]}
    # 56 x 56 frames, a 4 x 4 patch grid -> 2 x 2 merged cells; 1 s per temporal patch, 8 patches.
    midpoints = [k + 0.5 for k in range(8)]
    labels = visible_cell_labels(target, (56, 56), [8, 4, 4], midpoints).view(8, 4)
    visible = [2 <= k + 0.5 <= 5 for k in range(8)]  # patch midpoints 2.5, 3.5, 4.5
    assert labels[:, 1].tolist() == [int(v) for v in visible]  # top-right cell holds (40, 10)
    assert labels[:, [0, 2, 3]].sum() == 0
    gone = visible_cell_labels({**target, "event": "disappear"}, (56, 56), [8, 4, 4], midpoints).view(8, 4)
    assert gone[:, 1].tolist() == [1 - int(v) for v in visible]


def test_moving_targets_are_refused_with_the_option_to_use():
    with pytest.raises(ValueError, match="--event-types appear disappear"):
        visible_cell_labels({"event": "move", "window": [1, 2], "center": [5, 5]}, (56, 56), [2, 4, 4], [0.5, 1.5])


def test_one_time_per_temporal_patch_is_required():
    with pytest.raises(ValueError, match="3 temporal patches but 2 patch times"):
        visible_cell_labels({"event": "appear", "window": [1, 2], "center": [5, 5]}, (56, 56), [3, 4, 4], [0.5, 1.5])


def test_pre_task_trains_the_tower_only_and_learns_its_labels(tmp_path):
    data = tmp_path / "data"
    make_synthetic_benchmark(data, seed=0, num_train=12, num_val=0, num_test=4, width=56, height=56, min_duration=8,
                             max_duration=9, event_types=("appear", "disappear"), min_distractors=0,
                             max_distractors=0, shape_size=17)
    settings = SyntheticSettings(hidden=64, layers=1)
    processor = synthetic_processor(settings, 2.0)
    torch.manual_seed(0)
    model = GroundVTSQwen2_5_VLForConditionalGeneration(synthetic_model_config(processor, settings))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    collator = video_collator(processor, 2.0)
    train = tower_records(data, "train")
    accuracy = train_tower(model, collator, train, tower_records(data, "test"), tmp_path / "run", steps=30, lr=3e-3,
                           batch_size=4, seed=0)
    moved = {k for k, v in model.state_dict().items() if not torch.equal(before[k], v)}
    assert moved and all(k.startswith("model.visual.") for k in moved)
    assert any(k.startswith("model.visual.merger.") for k in moved)
    # Most tokens are "no target here": after 30 steps the tower at least gets those right.
    assert accuracy["token_accuracy"] > 80.0
    assert 0.0 <= accuracy["target_token_accuracy"] <= 100.0
