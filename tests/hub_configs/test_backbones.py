"""The backbone registry agrees with the classes it names, and the config.json reader fails clearly (no network)."""

import json
import subprocess
import sys
from importlib.resources import files

import pytest
import yaml

from groundvts.hub_configs import HUB_CONFIG_DIR
from groundvts.hub_configs.backbones import (
    BACKBONES,
    GROUNDVTS_MODEL_TYPES,
    Backbone,
    backbone_for,
    model_type_of,
    read_config,
)


@pytest.mark.parametrize("key", sorted(BACKBONES))
def test_classes_import_and_match_the_model_type(key):
    backbone = BACKBONES[key]
    assert backbone.model_type == key
    config_class, model_class, processor_class = backbone.classes()
    assert (config_class.__name__, model_class.__name__, processor_class.__name__) == (
        backbone.config_class, backbone.model_class, backbone.processor_class
    )
    assert config_class.model_type == key and model_class.config_class is config_class
    # The plain model_type is the stock backbone config our config extends.
    assert config_class.__mro__[1].model_type == backbone.plain_model_type == backbone.tag
    assert backbone.load_model_class() is model_class


def test_registry_matches_the_bundled_configs_and_recipes():
    assert GROUNDVTS_MODEL_TYPES == ("groundvts_qwen2_5_vl", "groundvts_qwen3_vl", "groundvts_internvl")
    bundled = {json.loads(path.read_text())["model_type"] for path in HUB_CONFIG_DIR.glob("groundvts-*.json")}
    assert bundled == set(GROUNDVTS_MODEL_TYPES)
    for backbone in BACKBONES.values():
        recipe = files("groundvts.trainers") / "recipes" / f"{backbone.name.lower()}-stage1.yaml"
        settings = yaml.safe_load(recipe.read_text())
        assert (settings["backbone"], settings["model"]) == (backbone.tag, backbone.base_model)


def test_training_loads_groundvts_and_plain_model_types():
    from groundvts.trainers.loading import MODEL_TYPES, model_type_of as loading_model_type_of

    assert list(MODEL_TYPES) == [
        "groundvts_qwen2_5_vl", "qwen2_5_vl", "groundvts_qwen3_vl", "qwen3_vl", "groundvts_internvl", "internvl"
    ]
    for model_type, classes in MODEL_TYPES.items():
        assert classes == backbone_for(model_type).classes()
    assert loading_model_type_of is model_type_of


@pytest.mark.parametrize(("model_type", "name"), [
    ("groundvts_qwen2_5_vl", "GroundVTS-Q"), ("qwen2_5_vl", "GroundVTS-Q"), ("vts_qwen2_5_vl", "GroundVTS-Q"),
    ("groundvts_qwen3_vl", "GroundVTS-Q3"), ("qwen3_vl", "GroundVTS-Q3"),
    ("groundvts_internvl", "GroundVTS-I"), ("internvl", "GroundVTS-I"), ("vts_internvl_3", "GroundVTS-I"),
])
def test_backbone_for_any_spelling(model_type, name):
    backbone = backbone_for(model_type)
    assert isinstance(backbone, Backbone) and backbone.name == name and model_type in backbone.model_types


def test_official_layouts():
    assert backbone_for("vts_qwen2_5_vl").official_vts_prefix == "vts_module."
    assert backbone_for("vts_internvl_3").official_vts_prefix == "model.vts_module."
    # No official GroundVTS release on Qwen3-VL: it has only our and the plain model_type.
    q3 = backbone_for("qwen3_vl")
    assert q3.official_model_type is None and q3.model_types == ("groundvts_qwen3_vl", "qwen3_vl")
    assert {b.official_hidden_size_default for b in BACKBONES.values()} == {256}


@pytest.mark.parametrize("model_type", ["llava", None, "groundvts"])
def test_unknown_model_type_lists_the_accepted_ones(model_type):
    with pytest.raises(ValueError, match="Unknown model_type") as caught:
        backbone_for(model_type)
    for accepted in ("groundvts_qwen2_5_vl", "groundvts_qwen3_vl", "groundvts_internvl", "qwen2_5_vl", "qwen3_vl",
                     "internvl", "vts_internvl_3"):
        assert accepted in str(caught.value)


def test_importing_the_registry_loads_neither_torch_nor_transformers():
    code = (
        "import sys, groundvts.hub_configs.backbones as b; b.backbone_for('internvl');"
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


def test_read_config_of_a_folder(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "groundvts_internvl", "vts_keep_ratio": 0.5}))
    assert read_config(tmp_path) == {"model_type": "groundvts_internvl", "vts_keep_ratio": 0.5}
    assert model_type_of(str(tmp_path)) == "groundvts_internvl"
    (tmp_path / "config.json").write_text("{}")
    assert model_type_of(tmp_path) is None


def test_read_config_of_a_relative_folder(tmp_path, monkeypatch):
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "config.json").write_text('{"model_type": "qwen2_5_vl"}')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("transformers.PretrainedConfig.get_config_dict", _no_hub)
    assert model_type_of("ckpt") == "qwen2_5_vl"  # an existing folder, never a Hub id


def _no_hub(*args, **kwargs):
    raise AssertionError(f"looked up on the Hub: {args}")


def test_missing_config_errors_keep_the_wording_scripts_match(tmp_path, monkeypatch):
    monkeypatch.setattr("transformers.PretrainedConfig.get_config_dict", _no_hub)
    # Messages that `groundvts ground/infer` ("no config.json", "not found"), `release` ("config.json not found")
    # and `convert` ("config.json") have always printed.
    with pytest.raises(FileNotFoundError, match="config.json not found") as missing:
        read_config(tmp_path / "missing")
    assert "Model folder not found" in str(missing.value) and "missing" in str(missing.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no config.json") as empty:
        read_config(tmp_path / "empty")
    assert "config.json not found" in str(empty.value) and "empty" in str(empty.value)
    (tmp_path / "file").write_text("{}")
    with pytest.raises(FileNotFoundError, match="not a folder"):
        read_config(tmp_path / "file")
    for path_like in ("./nowhere", "runs/a/checkpoint"):  # not an `org/name` id: never sent to the Hub
        with pytest.raises(FileNotFoundError, match="not found"):
            read_config(path_like)


@pytest.mark.parametrize(("text", "message"), [
    ("{not json", "is not valid JSON"),
    ("[1, 2]", "not a JSON config object"),
    (b"\xff\xfe{}", "is not valid JSON"),
])
def test_bad_config_json_is_a_value_error(tmp_path, text, message):
    config = tmp_path / "config.json"
    config.write_bytes(text) if isinstance(text, bytes) else config.write_text(text)
    with pytest.raises(ValueError, match=message) as caught:
        read_config(tmp_path)
    assert str(config) in str(caught.value)


def test_hub_ids_go_through_transformers(monkeypatch):
    calls = []

    def fake_get_config_dict(path_or_id, **kwargs):
        calls.append(path_or_id)
        return {"model_type": "internvl", "architectures": ["InternVLForConditionalGeneration"]}, kwargs

    monkeypatch.setattr("transformers.PretrainedConfig.get_config_dict", fake_get_config_dict)
    assert model_type_of("OpenGVLab/InternVL3_5-8B-HF") == "internvl"
    assert read_config("some-model")["architectures"] == ["InternVLForConditionalGeneration"]
    assert calls == ["OpenGVLab/InternVL3_5-8B-HF", "some-model"]


def test_unreachable_hub_id_is_file_not_found(monkeypatch):
    def offline(path_or_id, **kwargs):
        raise OSError("We couldn't connect to 'https://huggingface.co' to load the files")

    monkeypatch.setattr("transformers.PretrainedConfig.get_config_dict", offline)
    with pytest.raises(FileNotFoundError, match="org/missing-model") as caught:
        read_config("org/missing-model")
    assert "couldn't connect" in str(caught.value) and isinstance(caught.value.__cause__, OSError)
