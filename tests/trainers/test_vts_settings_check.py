"""`groundvts train --set vts.*`: VTS settings are validated with the config's own message before any training, so a
bad value can no longer train and save a model that then refuses to load."""

import pytest

from groundvts.modeling.configuration_groundvts_qwen2_5_vl import GroundVTSQwen2_5_VLConfig
from groundvts.scripts.cli import train
from groundvts.trainers.loading import load_model, load_model_and_processor


def stage1_argv(model, data, out, *extra):
    sets = [
        f"model={model}", "data.format=grounding_ft", f"data.path={data}", f"training.output_dir={out}",
        "training.max_steps=1", "training.bf16=false", "training.use_cpu=true", "training.save_strategy=no",
        "training.dataloader_num_workers=0", *extra,
    ]
    return ["groundvts-q-stage1", *[arg for item in sets for arg in ("--set", item)]]


@pytest.fixture(scope="module")
def groundvts_dir(tmp_path_factory, plain_qwen_dir):
    """A GroundVTS checkpoint (plain weights + a new VTS): settings override its saved config."""
    folder = tmp_path_factory.mktemp("groundvts")
    model, processor = load_model_and_processor(plain_qwen_dir, {"vts_reduction_dim": 8})
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@pytest.mark.parametrize("start", ["plain", "groundvts"])
@pytest.mark.parametrize(
    "key, value", [("vts_keep_ratio", 1.5), ("vts_keep_ratio", 0), ("vts_strategy", "sparse"), ("vts_temperature", -1)]
)
def test_bad_vts_settings_stop_before_training(
    start, key, value, tmp_path, plain_qwen_dir, groundvts_dir, grounding_jsonl, capsys, monkeypatch
):
    with pytest.raises(ValueError) as refused:  # what loading the saved model would say
        GroundVTSQwen2_5_VLConfig(**{key: value})
    message = str(refused.value)

    def no_training(*args, **kwargs):
        raise AssertionError("training started despite invalid VTS settings")

    monkeypatch.setattr(train, "run", no_training)
    model = plain_qwen_dir if start == "plain" else groundvts_dir
    out = tmp_path / "run"
    assert train.main(stage1_argv(model, grounding_jsonl, out, f"vts.{key}={value}")) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    [line] = [line for line in err.splitlines() if line.startswith("error:")]
    assert message in line and "vts" in line
    assert not out.exists()


def test_valid_vts_settings_reach_the_model(plain_qwen_dir):
    model = load_model(plain_qwen_dir, {"vts_keep_ratio": 0.25, "vts_strategy": "frame", "vts_reduction_dim": 8})
    assert (model.config.vts_keep_ratio, model.config.vts_strategy, model.config.vts_reduction_dim) == (0.25, "frame", 8)
