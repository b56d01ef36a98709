"""The GroundVTS backbones, and the one reader of a model's config.json.

A checkpoint says which backbone it is through the `model_type` of its config.json, in one of three spellings: ours
(`groundvts_qwen2_5_vl`, `groundvts_qwen3_vl`, `groundvts_internvl`), the plain backbone's (`qwen2_5_vl`,
`qwen3_vl`, `internvl`: weights without a VTS yet) or the official GroundVTS release's (`vts_qwen2_5_vl`,
`vts_internvl_3`; GroundVTS-Q3 has no official release). `backbone_for` maps any of them
to the `Backbone` that knows the classes, the Hub base model and where the official release stores its VTS.

Only the standard library is imported here: classes are named by module and class strings and imported on demand,
so that reading the registry (e.g. for `--help` or an error message) does not load torch or transformers.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Backbone:
    """What differs between GroundVTS-Q (Qwen2.5-VL), GroundVTS-Q3 (Qwen3-VL) and GroundVTS-I (InternVL3.5-HF)."""

    name: str  # "GroundVTS-Q": the model card title; lower-cased, the prefix of the bundled recipes
    model_type: str  # ours, in a GroundVTS checkpoint's config.json
    plain_model_type: str  # the backbone's own: plain weights that `groundvts convert` gives a new VTS
    official_model_type: str | None  # the official GroundVTS release's (None: no official release)
    official_vts_prefix: str | None  # where the official release stores the VTS weights (`{prefix}{Wf,Wq,post_mlp}.*`)
    base_model: str  # Hub id of the backbone weights GroundVTS starts from
    config_module: str
    config_class: str
    model_module: str
    model_class: str
    processor_module: str
    processor_class: str
    official_hidden_size_default: int = 256  # the official config's default `VTS_hidden_size`
    # Videos sampled at an fps within a frame cap (Qwen-VLs), else a fixed number of frames per video (InternVL).
    fps_sampled: bool = True

    @property
    def tag(self) -> str:
        """Short backbone tag (model card tags, speed-benchmark `--backbone`): the plain model_type."""
        return self.plain_model_type

    @property
    def model_types(self) -> tuple[str, ...]:
        """Every model_type that names this backbone: ours, plain, official (where there is an official release)."""
        names = (self.model_type, self.plain_model_type, self.official_model_type)
        return tuple(name for name in names if name is not None)

    def load_config_class(self) -> type:
        return _import(self.config_module, self.config_class)

    def load_model_class(self) -> type:
        return _import(self.model_module, self.model_class)

    def load_processor_class(self) -> type:
        return _import(self.processor_module, self.processor_class)

    def classes(self) -> tuple[type, type, type]:
        """(config, model, processor) classes."""
        return self.load_config_class(), self.load_model_class(), self.load_processor_class()


def _import(module: str, name: str) -> type:
    return getattr(importlib.import_module(module), name)


BACKBONES: dict[str, Backbone] = {
    "groundvts_qwen2_5_vl": Backbone(
        name="GroundVTS-Q",
        model_type="groundvts_qwen2_5_vl",
        plain_model_type="qwen2_5_vl",
        official_model_type="vts_qwen2_5_vl",
        official_vts_prefix="vts_module.",  # on the outer model
        base_model="Qwen/Qwen2.5-VL-7B-Instruct",
        config_module="groundvts.modeling.configuration_groundvts_qwen2_5_vl",
        config_class="GroundVTSQwen2_5_VLConfig",
        model_module="groundvts.modeling.modeling_groundvts_qwen2_5_vl",
        model_class="GroundVTSQwen2_5_VLForConditionalGeneration",
        processor_module="groundvts.processing.processing_groundvts_qwen2_5_vl",
        processor_class="GroundVTSQwen2_5_VLProcessor",
    ),
    "groundvts_qwen3_vl": Backbone(
        name="GroundVTS-Q3",
        model_type="groundvts_qwen3_vl",
        plain_model_type="qwen3_vl",
        official_model_type=None,  # no official GroundVTS release on Qwen3-VL: start from Qwen3-VL weights
        official_vts_prefix=None,
        base_model="Qwen/Qwen3-VL-8B-Instruct",
        config_module="groundvts.modeling.configuration_groundvts_qwen3_vl",
        config_class="GroundVTSQwen3VLConfig",
        model_module="groundvts.modeling.modeling_groundvts_qwen3_vl",
        model_class="GroundVTSQwen3VLForConditionalGeneration",
        processor_module="groundvts.processing.processing_groundvts_qwen3_vl",
        processor_class="GroundVTSQwen3VLProcessor",
    ),
    "groundvts_internvl": Backbone(
        name="GroundVTS-I",
        model_type="groundvts_internvl",
        plain_model_type="internvl",
        official_model_type="vts_internvl_3",
        # In the official code InternVL's VTS sits in the (custom) inner model.
        official_vts_prefix="model.vts_module.",
        base_model="OpenGVLab/InternVL3_5-8B-HF",
        config_module="groundvts.modeling.configuration_groundvts_internvl",
        config_class="GroundVTSInternVLConfig",
        model_module="groundvts.modeling.modeling_groundvts_internvl",
        model_class="GroundVTSInternVLForConditionalGeneration",
        processor_module="groundvts.processing.processing_groundvts_internvl",
        processor_class="GroundVTSInternVLProcessor",
        fps_sampled=False,
    ),
}
GROUNDVTS_MODEL_TYPES: tuple[str, ...] = tuple(BACKBONES)
_BY_MODEL_TYPE = {model_type: b for b in BACKBONES.values() for model_type in b.model_types}


def backbone_for(model_type: str | None) -> Backbone:
    """The backbone named by a GroundVTS, plain or official model_type; ValueError listing them otherwise."""
    if model_type in _BY_MODEL_TYPE:
        return _BY_MODEL_TYPE[model_type]
    plain = [b.plain_model_type for b in BACKBONES.values()]
    official = [b.official_model_type for b in BACKBONES.values() if b.official_model_type]
    raise ValueError(
        f"Unknown model_type {model_type!r}: expected a GroundVTS one ({', '.join(GROUNDVTS_MODEL_TYPES)}), a plain "
        f"backbone one ({', '.join(plain)}) or an official GroundVTS one ({', '.join(official)})."
    )


def _looks_like_path(path_or_id: str) -> bool:
    # A Hub id is `name` or `org/name`; anything else is meant as a local path and must not go to the Hub.
    return Path(path_or_id).exists() or path_or_id.startswith((".", "/")) or path_or_id.count("/") > 1


def read_config(path_or_id: str | Path) -> dict[str, Any]:
    """The config.json of a local model folder or of a Hub id (cached or downloadable), as a dict.

    Raises FileNotFoundError when the folder or its config.json is missing (or the Hub id cannot be loaded), and
    ValueError when config.json is not a JSON object.
    """
    path_or_id = str(path_or_id)
    if _looks_like_path(path_or_id):
        return _read_local_config(Path(path_or_id))
    from transformers import PretrainedConfig  # only for Hub ids: it resolves the cache, revision and token

    try:
        config, _ = PretrainedConfig.get_config_dict(path_or_id)
    except OSError as error:
        raise FileNotFoundError(
            f"Could not load the config of '{path_or_id}' (not a local folder; a Hub id needs network access and a "
            f"cached or downloadable repo with config.json): {error}"
        ) from error
    return config


def _read_local_config(folder: Path) -> dict[str, Any]:
    config_file = folder / "config.json"
    # The messages keep the wording each command printed before this reader was shared ("config.json not found",
    # "no config.json", "Model folder not found"): scripts and tests match on them.
    if not folder.exists():
        raise FileNotFoundError(f"Model folder not found: '{folder}' does not exist (config.json not found).")
    if not folder.is_dir():
        raise FileNotFoundError(f"Model folder not found: '{folder}' is a file, not a folder with config.json.")
    if not config_file.is_file():
        raise FileNotFoundError(
            f"'{folder}' has no config.json, so it is not a model folder ({config_file} not found)."
        )
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"'{config_file}' is not valid JSON: {error}") from error
    if not isinstance(config, dict):
        raise ValueError(f"'{config_file}' is not a JSON config object (found a {type(config).__name__}).")
    return config


def model_type_of(path_or_id: str | Path) -> str | None:
    """`model_type` in the config.json of a local folder or Hub id (None when it has none); see `read_config`."""
    return read_config(path_or_id).get("model_type")
