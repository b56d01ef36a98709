"""Load the model and processor a training stage starts from.

Stage 1 may start from plain backbone weights (Qwen2.5-VL or InternVL3.5-HF): they load into the GroundVTS class
with only the VTS weights new, built from the recipe's VTS settings. Later stages start from a GroundVTS checkpoint,
optionally with a LoRA adapter to continue (stage 3 continues stage 2's).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from groundvts.hub_configs import resolve_model_name
from groundvts.hub_configs.backbones import BACKBONES, GROUNDVTS_MODEL_TYPES
from groundvts.hub_configs.backbones import model_type_of as model_type_of  # re-exported: scripts import it here
from groundvts.modeling.vts import validate_vts_config


logger = logging.getLogger(__name__)

# Settings that change weight shapes: fixed by a GroundVTS checkpoint, free on plain backbone weights.
STRUCTURAL_VTS_SETTINGS = ("vts_reduction_dim",)
# model_type in config.json -> (GroundVTS config, model, processor) classes: the registry's GroundVTS and plain
# model_types (plain backbones load into their GroundVTS class). Official checkpoints need `groundvts convert` first.
MODEL_TYPES: dict[str, tuple[type, type, type]] = {
    model_type: backbone.classes()
    for backbone in BACKBONES.values()
    for model_type in (backbone.model_type, backbone.plain_model_type)
}


def classes_for(path: str | Path) -> tuple[str, tuple[type, type, type]]:
    """(model_type, (GroundVTS config, model, processor class)) of a GroundVTS checkpoint or plain backbone weights."""
    model_type = model_type_of(path)
    if model_type not in MODEL_TYPES:
        raise ValueError(
            f"{path} has model_type {model_type!r}; training starts from one of {sorted(MODEL_TYPES)}"
            " (a GroundVTS checkpoint, or plain Qwen2.5-VL / Qwen3-VL / InternVL3.5-HF weights)."
        )
    return model_type, MODEL_TYPES[model_type]


def load_model(path: str | Path, vts_settings: dict[str, Any] | None = None, dtype: Any = "auto") -> Any:
    """GroundVTS model from `path`: a GroundVTS checkpoint, or plain backbone weights with a new, randomly
    initialised VTS (every other weight exactly as stored).

    `vts_settings` (`vts_keep_ratio`, `vts_reduction_dim`, ...) override the checkpoint's config; on plain backbone
    weights they define the new VTS. They are validated before any weight is read.
    """
    model_type, (config_class, model_class, _) = classes_for(path)
    config = config_class.from_pretrained(str(path))
    for key, value in (vts_settings or {}).items():
        if not hasattr(config, key) or not key.startswith("vts_"):
            raise ValueError(f"Unknown VTS setting {key!r}; GroundVTS configs have vts_* fields such as vts_keep_ratio.")
        if key in STRUCTURAL_VTS_SETTINGS and model_type in GROUNDVTS_MODEL_TYPES:
            if getattr(config, key) != value:
                logger.warning("%s: keeping its trained %s=%s (the recipe's %s applies to plain backbone weights only).",
                               path, key, getattr(config, key), value)
            continue
        setattr(config, key, value)
    try:
        # setattr skips the config's own checks; a bad value would train, save, and then refuse to load.
        validate_vts_config(config)
    except (TypeError, ValueError) as error:
        raise ValueError(f"VTS settings (recipe `vts`, --set vts.KEY=VALUE): {error}") from None
    model, info = model_class.from_pretrained(str(path), config=config, dtype=dtype, output_loading_info=True)
    missing = [key for key in info["missing_keys"] if ".vts." not in f".{key}"]
    unexpected = sorted(info.get("unexpected_keys") or [])  # stored weights no module took: they would be lost
    if missing or unexpected or info.get("mismatched_keys") or (info["missing_keys"] and model_type in GROUNDVTS_MODEL_TYPES):
        problems = sorted(info["missing_keys"]) + unexpected + sorted(str(k) for k in info.get("mismatched_keys") or [])
        raise ValueError(f"{path}: weights missing from, left over in or not matching the checkpoint: {problems[:10]}")
    if info["missing_keys"]:
        logger.warning("%s: plain backbone weights; VTS starts from random initialisation.", path)
    return model


def load_model_and_processor(
    path: str | Path,
    vts_settings: dict[str, Any] | None = None,
    dtype: Any = "auto",
    adapter: str | Path | None = None,
) -> tuple[Any, Any]:
    """GroundVTS model (see `load_model`; PEFT-wrapped and trainable when `adapter` is given) and our processor,
    built from the processor files of `path` (stock Qwen2.5-VL / InternVL ones included)."""
    path = resolve_model_name(path)  # `groundvts-tiny`: the bundled model
    model_type, (_, _, processor_class) = classes_for(path)
    model = load_model(path, vts_settings, dtype)
    # The tokenizer reads config.json through AutoConfig, which needs the checkpoint's own config code.
    processor = processor_class.from_pretrained(str(path), trust_remote_code=model_type in GROUNDVTS_MODEL_TYPES)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter), is_trainable=True)
    return model, processor
