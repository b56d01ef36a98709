"""Convert a checkpoint in the official GroundVTS release layout into a GroundVTS Hub checkpoint.

The official release stores VTS as `vts_module.{Wf,Wq,post_mlp}` (Qwen, outer model; model_type
`vts_qwen2_5_vl`) or `model.vts_module.*` (InternVL, custom inner model; model_type `vts_internvl_3`), with
`VTS_*` config fields. Both become `model.vts.{wv,wq,mlp}` of the GroundVTS-Q / GroundVTS-I class. The output is a
folder that loads with `from_pretrained(folder, trust_remote_code=True)`, using the official query
pooling (every prompt token) and deterministic top-K so that the converted weights behave as trained.

    python -m groundvts.scripts.convert_official_checkpoint OFFICIAL_DIR OUTPUT_DIR
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from safetensors.torch import load_file, save_file

# Tokenizer and processor files travel unchanged.
SIDE_FILES = (
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt",
    "added_tokens.json", "chat_template.json", "chat_template.jinja", "preprocessor_config.json",
    "video_preprocessor_config.json", "processor_config.json", "generation_config.json",
)
OFFICIAL_CONFIG_FIELDS = ("VTS_hidden_size", "VTS_token_ratio", "VTS_temp", "model_type", "architectures", "auto_map")
VTS_LAYER_NAMES = {"Wf.": "wv.", "Wq.": "wq.", "post_mlp.": "mlp."}


@dataclass(frozen=True)
class OfficialLayout:
    """How one official model_type maps onto a GroundVTS class."""

    load_model_class: Callable[[], type]
    official_prefix: str  # where the official VTS weights live
    official_hidden_size_default: int = 256  # the official config default for VTS_hidden_size


def _qwen_class():
    from groundvts.modeling.modeling_groundvts_qwen2_5_vl import GroundVTSQwen2_5_VLForConditionalGeneration

    return GroundVTSQwen2_5_VLForConditionalGeneration


def _internvl_class():
    from groundvts.modeling.modeling_groundvts_internvl import GroundVTSInternVLForConditionalGeneration

    return GroundVTSInternVLForConditionalGeneration


OFFICIAL_LAYOUTS: dict[str, OfficialLayout] = {
    "vts_qwen2_5_vl": OfficialLayout(load_model_class=_qwen_class, official_prefix="vts_module."),
    # InternVL's VTS sits in the inner model. Its width is the LLM hidden size (the official code builds it with
    # max(vision, LLM) width and feeds projector outputs), which is what GroundVTS-I uses.
    "vts_internvl_3": OfficialLayout(load_model_class=_internvl_class, official_prefix="model.vts_module."),
}
OUR_VTS_PREFIX = "model.vts."


def convert_config(official: dict) -> dict:
    """Official config dict -> GroundVTS config kwargs (VTS_* fields renamed, official behaviour selected)."""
    layout = _layout_for(official.get("model_type"))
    converted = {k: v for k, v in official.items() if k not in OFFICIAL_CONFIG_FIELDS}
    temperature = float(official.get("VTS_temp", 1.0))
    converted.update(
        vts_reduction_dim=int(official.get("VTS_hidden_size", layout.official_hidden_size_default)),
        vts_keep_ratio=float(official.get("VTS_token_ratio", 0.5)),
        vts_temperature=temperature,
        vts_weight_temperature=temperature,  # the official code uses one temperature for tau and tau'
        vts_query_pooling="prompt",
        vts_train_selection="topk",
    )
    return converted


def rename_official_key(key: str, official_prefix: str) -> str:
    """`vts_module.Wf.weight` (Qwen) or `model.vts_module.Wf.weight` (InternVL) -> `model.vts.wv.weight`;
    other keys are unchanged."""
    if not key.startswith(official_prefix):
        return key
    rest = key[len(official_prefix) :]
    for old, new in VTS_LAYER_NAMES.items():
        if rest.startswith(old):
            return OUR_VTS_PREFIX + new + rest[len(old) :]
    raise ValueError(f"Unknown official VTS weight {key!r}: expected {official_prefix}{{Wf,Wq,post_mlp}}.*")


def convert_checkpoint(official_dir: str | Path, output_dir: str | Path, dtype: str = "auto") -> Path:
    """Convert `official_dir` into a GroundVTS checkpoint in `output_dir`; returns `output_dir`."""
    official_dir, output_dir = Path(official_dir), Path(output_dir)
    config_file = official_dir / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"{config_file} not found: pass the folder of an official GroundVTS checkpoint.")
    if output_dir.resolve() == official_dir.resolve():
        raise ValueError(f"OUTPUT_DIR must differ from OFFICIAL_DIR ({official_dir}): the conversion would overwrite its input.")
    official = json.loads(config_file.read_text())
    layout = _layout_for(official.get("model_type"))
    shards = sorted(official_dir.glob("*.safetensors"))
    if not shards:
        raise FileNotFoundError(f"No *.safetensors weights in {official_dir}; convert .bin weights to safetensors first.")

    model_class = layout.load_model_class()
    with tempfile.TemporaryDirectory() as staging:
        staging = Path(staging)
        (staging / "config.json").write_text(json.dumps(convert_config(official)))
        renamed = 0
        for shard in shards:
            tensors = load_file(shard)
            new = {rename_official_key(k, layout.official_prefix): v for k, v in tensors.items()}
            renamed += sum(k.startswith(OUR_VTS_PREFIX) for k in new)
            save_file(new, staging / shard.name, metadata={"format": "pt"})
        index = official_dir / "model.safetensors.index.json"
        if index.is_file():
            data = json.loads(index.read_text())
            data["weight_map"] = {rename_official_key(k, layout.official_prefix): v for k, v in data["weight_map"].items()}
            (staging / index.name).write_text(json.dumps(data))
        if renamed == 0:
            raise ValueError(f"No VTS weights ({layout.official_prefix}*) found in {official_dir}.")

        try:
            model, info = model_class.from_pretrained(staging, dtype=dtype, output_loading_info=True)
        except RuntimeError as error:  # transformers raises on shape mismatches (e.g. a VTS width we do not build)
            raise ValueError(f"Converted weights do not fit {model_class.__name__}: {error}") from error
        problems = {
            k: sorted(map(str, v)) for k, v in info.items()
            if k in ("missing_keys", "unexpected_keys", "mismatched_keys") and v
        }
        if problems:
            raise ValueError(f"Converted weights do not match {model_class.__name__}: {problems}")
    model.save_pretrained(output_dir)
    for name in SIDE_FILES:
        if (official_dir / name).is_file():
            shutil.copy2(official_dir / name, output_dir / name)
    return output_dir


def _layout_for(model_type: str | None) -> OfficialLayout:
    if model_type not in OFFICIAL_LAYOUTS:
        raise ValueError(
            f"config.json has model_type {model_type!r}; official GroundVTS checkpoints use one of {sorted(OFFICIAL_LAYOUTS)}."
        )
    return OFFICIAL_LAYOUTS[model_type]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("official_dir", help="folder of the official checkpoint (config.json + *.safetensors)")
    parser.add_argument("output_dir", help="where to write the GroundVTS checkpoint")
    parser.add_argument("--dtype", default="auto", help="weight dtype of the output (auto keeps the checkpoint's)")
    args = parser.parse_args(argv)
    try:
        out = convert_checkpoint(args.official_dir, args.output_dir, dtype=args.dtype)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"Converted {args.official_dir} -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
