"""Turn official GroundVTS, plain Qwen2.5-VL or plain InternVL3.5-HF weights into a GroundVTS checkpoint.

    groundvts convert OFFICIAL_DIR OUTPUT_DIR                  # official GroundVTS release -> trained GroundVTS
    groundvts convert Qwen/Qwen2.5-VL-7B-Instruct groundvts-q  # plain backbone -> untrained GroundVTS-Q (stage 1 next)
    groundvts convert OpenGVLab/InternVL3_5-8B-HF groundvts-i  # plain backbone -> untrained GroundVTS-I
    groundvts convert GROUNDVTS_DIR OUTPUT_DIR --processor Qwen/Qwen2.5-VL-7B-Instruct   # give a folder our processor

SOURCE is a folder (or, for plain weights, a Hub id) whose config.json says one of:

- `vts_qwen2_5_vl` / `vts_internvl_3` (the official release): VTS is stored as `vts_module.{Wf,Wq,post_mlp}`
  (Qwen, outer model) or `model.vts_module.*` (InternVL, custom inner model) with `VTS_*` config fields. Both become
  `model.vts.{wv,wq,mlp}` of the GroundVTS-Q / GroundVTS-I class, using the official query pooling (every prompt
  token) and deterministic top-K so that the converted weights behave as trained.
- `qwen2_5_vl` / `internvl` (plain backbone weights): the GroundVTS-Q / GroundVTS-I class with every backbone weight
  unchanged and a new, randomly initialised VTS with the family's defaults (D_r 512 for Q, 128 for I; rho 0.5).
  The VTS is untrained: run stage 1 on the output (`groundvts train groundvts-q-stage1 --set model=OUTPUT_DIR`).
- `groundvts_qwen2_5_vl` / `groundvts_internvl`: the weights are kept; use this to give a folder our processor.

The output loads with `from_pretrained(OUTPUT_DIR, trust_remote_code=True)` and carries our processor
(GroundVTSQwen2_5_VLProcessor / GroundVTSInternVLProcessor, with its code), built from the processor files of
SOURCE or of `--processor FOLDER_OR_HUB_ID`, so that `groundvts ground --model OUTPUT_DIR` runs (an official
checkpoint without processor files is still converted; the printed note says how to add the processor). The command
prints what it did.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from safetensors.torch import load_file, save_file

from groundvts.scripts.release.repo import BACKBONES, Backbone, load_processor
from groundvts.scripts.release.model_card import ReleaseError

# Tokenizer and processor files travel unchanged when no processor of ours can be built from them.
SIDE_FILES = (
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt",
    "added_tokens.json", "chat_template.json", "chat_template.jinja", "preprocessor_config.json",
    "video_preprocessor_config.json", "processor_config.json", "generation_config.json",
)
OFFICIAL_CONFIG_FIELDS = ("VTS_hidden_size", "VTS_token_ratio", "VTS_temp", "model_type", "architectures", "auto_map")
VTS_LAYER_NAMES = {"Wf.": "wv.", "Wq.": "wq.", "post_mlp.": "mlp."}


@dataclass
class Conversion:
    """What `convert` wrote, and one line per thing it did (printed by the command)."""

    output_dir: Path
    notes: list[str]


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


def convert_checkpoint(
    official_dir: str | Path, output_dir: str | Path, dtype: str = "auto", processor_source: str | Path | None = None
) -> Path:
    """Convert the official checkpoint `official_dir` into a GroundVTS checkpoint in `output_dir`; returns it."""
    return _convert_official(Path(official_dir), Path(output_dir), dtype, processor_source).output_dir


def _convert_official(
    official_dir: Path, output_dir: Path, dtype: str, processor_source: str | Path | None
) -> Conversion:
    config_file = official_dir / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"{config_file} not found: pass the folder of an official GroundVTS checkpoint.")
    _check_output_dir(official_dir, output_dir)
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
    backbone = BACKBONES[model.config.model_type]
    notes = [
        f"official GroundVTS checkpoint ({official.get('model_type')}) -> {backbone.name} ({model_class.__name__})",
        f"VTS weights: trained, renamed {layout.official_prefix}{{Wf,Wq,post_mlp}} -> {OUR_VTS_PREFIX}{{wv,wq,mlp}} "
        "(official query pooling `prompt` and top-K selection)",
    ]
    try:
        processor = _our_processor(backbone, processor_source or official_dir)
    except ReleaseError as error:
        if processor_source is not None:  # asked for explicitly: its failure is an error
            raise
        # Official weights without processor files are still worth converting; say what is missing and how to add it.
        processor = None
        notes.append(
            f"processor: none ({error}). Tokenizer and processor files, if any, were copied unchanged; "
            f"`groundvts ground` needs ours: `groundvts convert {output_dir} NEW_DIR --processor FOLDER_OR_HUB_ID` "
            f"(e.g. {backbone.base_model}) adds it."
        )
    model.save_pretrained(output_dir)
    side_files = SIDE_FILES if processor is None else ("generation_config.json",)
    for name in side_files:
        if (official_dir / name).is_file():
            shutil.copy2(official_dir / name, output_dir / name)
    if processor is not None:
        notes.append(_save_processor(processor, output_dir, processor_source or official_dir))
    return Conversion(output_dir, notes)


def convert(
    source: str | Path, output_dir: str | Path, dtype: str = "auto", processor_source: str | Path | None = None
) -> Conversion:
    """Write a GroundVTS checkpoint with our processor into `output_dir`, from an official GroundVTS checkpoint, plain
    Qwen2.5-VL / InternVL3.5-HF weights (a new, untrained VTS) or a GroundVTS checkpoint (weights kept).

    The processor is built from the processor files of `processor_source` (default: `source`).
    """
    source, output_dir = str(source), Path(output_dir)
    model_type = _source_model_type(source)
    if model_type in OFFICIAL_LAYOUTS:
        return _convert_official(Path(source), output_dir, dtype, processor_source)
    from groundvts.trainers.loading import MODEL_TYPES, load_model

    if model_type not in MODEL_TYPES:
        raise ValueError(
            f"{source}: config.json has model_type {model_type!r}; convert takes an official GroundVTS checkpoint "
            f"({', '.join(sorted(OFFICIAL_LAYOUTS))}), plain weights ({_plain_types(MODEL_TYPES)}) or a GroundVTS "
            f"checkpoint ({', '.join(sorted(BACKBONES))})."
        )
    _check_output_dir(Path(source), output_dir)
    backbone = BACKBONES[MODEL_TYPES[model_type][0].model_type]
    processor = _our_processor(backbone, processor_source or source)  # first: cheap, and fails before the weights load
    model = load_model(source, dtype=dtype)  # raises unless every stored tensor is taken; only VTS may be new
    model.save_pretrained(output_dir)
    if model_type in BACKBONES:
        notes = [
            f"GroundVTS checkpoint ({model_type}) -> {backbone.name} ({type(model).__name__})",
            "weights: unchanged",
        ]
    else:
        config = model.config
        notes = [
            f"plain {model_type} weights -> {backbone.name} ({type(model).__name__})",
            "backbone weights: unchanged",
            f"VTS weights initialised, untrained (vts_reduction_dim {config.vts_reduction_dim}, vts_keep_ratio "
            f"{config.vts_keep_ratio:g}): run stage 1 before use, e.g. `groundvts train "
            f"{backbone.name.lower()}-stage1 --set model={output_dir}`",
        ]
    notes.append(_save_processor(processor, output_dir, processor_source or source))
    return Conversion(output_dir, notes)


def _source_model_type(source: str) -> str:
    folder = Path(source)
    if folder.is_dir() and not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder / 'config.json'} not found: SOURCE must be a model folder or a Hub id.")
    from groundvts.trainers.loading import model_type_of  # a folder's or a Hub id's (cached or downloaded) config

    return model_type_of(source)


def _plain_types(model_types: dict[str, Any]) -> str:
    return ", ".join(sorted(t for t in model_types if t not in BACKBONES))


def _check_output_dir(source: Path, output_dir: Path) -> None:
    if source.exists() and output_dir.resolve() == source.resolve():
        raise ValueError(f"OUTPUT_DIR must differ from SOURCE ({source}): the conversion would overwrite its input.")
    if output_dir.exists() and (not output_dir.is_dir() or any(output_dir.iterdir())):
        raise ValueError(f"OUTPUT_DIR {output_dir} exists and is not an empty folder; name a new folder.")


def _our_processor(backbone: Backbone, source: str | Path) -> Any:
    """Our processor class from the processor files (stock ones included) of a folder or Hub id."""
    if Path(source).exists() or str(source).startswith((".", "/")):  # a path: never looked up on the Hub
        return load_processor(Path(source), backbone)
    from importlib import import_module

    processor_class = getattr(import_module(backbone.processor_module), backbone.processor_class)
    try:
        return processor_class.from_pretrained(str(source))
    except Exception as error:  # no such repo offline, or tokenizer / pre-processor files missing
        raise ReleaseError(
            f"Could not load a {backbone.processor_class} from {source!r} ({type(error).__name__}: {error}); "
            "pass a folder or Hub id with the backbone's processor files (--processor)."
        ) from error


def _save_processor(processor: Any, output_dir: Path, source: str | Path) -> str:
    # save_pretrained writes the processor code and its auto_map: AutoProcessor then loads ours, not the stock one.
    processor.save_pretrained(output_dir)
    return f"processor: {type(processor).__name__}, from the processor files of {source}"


def _layout_for(model_type: str | None) -> OfficialLayout:
    if model_type not in OFFICIAL_LAYOUTS:
        raise ValueError(
            f"config.json has model_type {model_type!r}; official GroundVTS checkpoints use one of {sorted(OFFICIAL_LAYOUTS)}."
        )
    return OFFICIAL_LAYOUTS[model_type]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="groundvts convert", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "source", help="official GroundVTS checkpoint folder, plain Qwen2.5-VL / InternVL3.5-HF weights (folder or "
        "Hub id), or a GroundVTS checkpoint folder"
    )
    parser.add_argument("output_dir", help="where to write the GroundVTS checkpoint (a new or empty folder)")
    parser.add_argument("--processor", default=None, metavar="FOLDER_OR_HUB_ID",
                        help="take the processor files from here instead of SOURCE")
    parser.add_argument("--dtype", default="auto", help="weight dtype of the output (auto keeps the checkpoint's)")
    args = parser.parse_args(argv)
    try:
        conversion = convert(args.source, args.output_dir, dtype=args.dtype, processor_source=args.processor)
    except (OSError, ValueError) as error:  # missing files or Hub access; ReleaseError is a ValueError
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"Converted {args.source} -> {conversion.output_dir}")
    for note in conversion.notes:
        print(f"  {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
