"""VTS settings changed at run time (`model.config.vts_keep_ratio = 0.25`) are validated when the model runs, with
the config's own messages; valid changes take effect."""

import math

import pytest
import torch

import groundvts.modeling.vts as vts_module
from tiny_models import vts_settings

INVALID = [
    ("vts_keep_ratio", 0),
    ("vts_keep_ratio", -1),
    ("vts_keep_ratio", 1.5),
    ("vts_keep_ratio", float("nan")),
    ("vts_keep_ratio", "dense"),  # "dense" is a strategy, not a keep ratio
    ("vts_strategy", "foo"),
    ("vts_train_selection", "soft"),
    ("vts_query_pooling", "all"),
    ("vts_temperature", 0.0),
    ("vts_weight_temperature", float("nan")),
    ("vts_keep_positions", "false"),
]


def video_keep_counts(model, batch: dict) -> list[int]:
    with torch.no_grad():
        return [int(keep.sum()) for keep in model(**batch, return_vts_selection=True).video_keep]


@pytest.mark.parametrize("field, value", INVALID)
def test_invalid_runtime_value_raises_naming_field_and_value(video_backbone, field, value):
    model, batch = video_backbone
    before = video_keep_counts(model, batch)  # validated with the valid settings first
    with vts_settings(model, **{field: value}):
        with pytest.raises(ValueError) as error:
            video_keep_counts(model, batch)
    assert field in str(error.value) and str(value) in str(error.value)
    assert video_keep_counts(model, batch) == before  # restoring the value makes the model usable again


def test_valid_runtime_changes_take_effect(video_backbone):
    model, batch = video_backbone
    sizes = [keep.numel() for keep in model(**batch, return_vts_selection=True).video_keep]
    with vts_settings(model, vts_keep_ratio=0.25):
        assert video_keep_counts(model, batch) == [math.ceil(0.25 * n) for n in sizes]
    with vts_settings(model, vts_strategy="dense"):
        assert video_keep_counts(model, batch) == sizes
    with vts_settings(model, vts_strategy="random"):
        assert video_keep_counts(model, batch) == [math.ceil(0.5 * n) for n in sizes]


def test_settings_are_validated_only_when_they_change(video_backbone, monkeypatch):
    model, batch = video_backbone
    calls = []
    real = vts_module.validate_vts_config
    monkeypatch.setattr(vts_module, "validate_vts_config", lambda config: calls.append(1) or real(config))
    with vts_settings(model, vts_keep_ratio=0.3):
        video_keep_counts(model, batch)
        video_keep_counts(model, batch)
    assert len(calls) == 1
