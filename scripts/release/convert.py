"""Turn official GroundVTS, plain Qwen2.5-VL or plain InternVL3.5-HF weights into a GroundVTS checkpoint
(`groundvts convert`).

    from groundvts.scripts.release.convert import convert

    conversion = convert("Qwen/Qwen2.5-VL-7B-Instruct", "groundvts-q")   # plain weights -> untrained GroundVTS-Q
    print("\n".join(conversion.notes))

The source's config.json `model_type` picks the path (`hub_configs.backbones.backbone_for`): the official release's
(`vts_qwen2_5_vl`, `vts_internvl_3`) has its VTS weights renamed and its official behaviour selected; plain backbone
weights get a new, untrained VTS; a GroundVTS checkpoint keeps its weights. Every output carries our processor.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file

from groundvts.hub_configs.backbones import BACKBONES, Backbone, backbone_for, model_type_of, read_config
from groundvts.scripts.release.repo import load_processor
from groundvts.scripts.release.model_card import ReleaseError

# Tokenizer and processor files travel unchanged when no processor of ours can be built from them.
SIDE_FILES = (
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt",
    "added_tokens.json", "chat_template.json", "chat_template.jinja", "preprocessor_config.json",
    "video_preprocessor_config.json", "processor_config.json", "generation_config.json",
)
OFFICIAL_CONFIG_FIELDS = ("VTS_hidden_size", "VTS_token_ratio", "VTS_temp", "model_type", "architectures", "auto_map")
VTS_LAYER_NAMES = {"Wf.": "wv.", "Wq.": "wq.", "post_mlp.": "mlp."}
OUR_VTS_PREFIX = "model.vts."


@dataclass
class Conversion:
    """What `convert` wrote, and one line per thing it did (printed by the command)."""

    output_dir: Path
    notes: list[str]


@dataclass
class ConvertSettings:
    """The inputs of `convert`: where the weights come from, where they go, the processor files and the dtype."""

    source: str = field(metadata={
        "positional": True,
        "help": "official GroundVTS checkpoint folder, plain Qwen2.5-VL / Qwen3-VL / InternVL3.5-HF weights (folder or Hub id), "
                "or a GroundVTS checkpoint folder",
    })
    output_dir: Path = field(
        metadata={"positional": True, "help": "where to write the GroundVTS checkpoint (a new or empty folder)"}
    )
    processor: str | None = field(default=None, metadata={
        "metavar": "FOLDER_OR_HUB_ID", "help": "take the processor files from here instead of SOURCE",
    })
    dtype: str = field(default="auto", metadata={"help": "weight dtype of the output (auto keeps the checkpoint's)"})


def convert_config(official: dict) -> dict:
    """Official config dict -> GroundVTS config kwargs (VTS_* fields renamed, official behaviour selected)."""
    backbone = _official_backbone(official.get("model_type"))
    converted = {k: v for k, v in official.items() if k not in OFFICIAL_CONFIG_FIELDS}
    temperature = float(official.get("VTS_temp", 1.0))
    converted.update(
        vts_reduction_dim=int(official.get("VTS_hidden_size", backbone.official_hidden_size_default)),
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
    if not (official_dir / "config.json").is_file():  # a local folder only: official weights are not on the Hub
        raise FileNotFoundError(
            f"{official_dir / 'config.json'} not found: pass the folder of an official GroundVTS checkpoint."
        )
    _check_output_dir(official_dir, output_dir)
    official = read_config(official_dir)
    backbone = _official_backbone(official.get("model_type"))
    shards = sorted(official_dir.glob("*.safetensors"))
    if not shards:
        raise FileNotFoundError(f"No *.safetensors weights in {official_dir}; convert .bin weights to safetensors first.")

    model_class = backbone.load_model_class()
    with tempfile.TemporaryDirectory() as staging:
        staging = Path(staging)
        (staging / "config.json").write_text(json.dumps(convert_config(official)))
        renamed = 0
        for shard in shards:
            tensors = load_file(shard)
            new = {rename_official_key(k, backbone.official_vts_prefix): v for k, v in tensors.items()}
            renamed += sum(k.startswith(OUR_VTS_PREFIX) for k in new)
            save_file(new, staging / shard.name, metadata={"format": "pt"})
        index = official_dir / "model.safetensors.index.json"
        if index.is_file():
            data = json.loads(index.read_text())
            data["weight_map"] = {rename_official_key(k, backbone.official_vts_prefix): v for k, v in data["weight_map"].items()}
            (staging / index.name).write_text(json.dumps(data))
        if renamed == 0:
            raise ValueError(f"No VTS weights ({backbone.official_vts_prefix}*) found in {official_dir}.")

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
    notes = [
        f"official GroundVTS checkpoint ({official.get('model_type')}) -> {backbone.name} ({model_class.__name__})",
        f"VTS weights: trained, renamed {backbone.official_vts_prefix}{{Wf,Wq,post_mlp}} -> {OUR_VTS_PREFIX}{{wv,wq,mlp}} "
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
    try:
        backbone = backbone_for(model_type)
    except ValueError:
        raise ValueError(
            f"{source}: config.json has model_type {model_type!r}; convert takes an official GroundVTS checkpoint "
            f"({_types('official_model_type')}), plain weights ({_types('plain_model_type')}) or a GroundVTS "
            f"checkpoint ({_types('model_type')})."
        ) from None
    if model_type == backbone.official_model_type:
        return _convert_official(Path(source), output_dir, dtype, processor_source)
    from groundvts.trainers.loading import load_model

    _check_output_dir(Path(source), output_dir)
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
    return model_type_of(source)  # a folder's or a Hub id's (cached or downloaded) config


def _types(kind: str) -> str:
    """The registry's model_types of one kind (`model_type`, `plain_model_type`, `official_model_type`), listed."""
    return ", ".join(sorted(name for backbone in BACKBONES.values() if (name := getattr(backbone, kind))))


def _check_output_dir(source: Path, output_dir: Path) -> None:
    if source.exists() and output_dir.resolve() == source.resolve():
        raise ValueError(f"OUTPUT_DIR must differ from SOURCE ({source}): the conversion would overwrite its input.")
    if output_dir.exists() and (not output_dir.is_dir() or any(output_dir.iterdir())):
        raise ValueError(f"OUTPUT_DIR {output_dir} exists and is not an empty folder; name a new folder.")


def _our_processor(backbone: Backbone, source: str | Path) -> Any:
    """Our processor class from the processor files (stock ones included) of a folder or Hub id."""
    if Path(source).exists() or str(source).startswith((".", "/")):  # a path: never looked up on the Hub
        return load_processor(Path(source), backbone)
    processor_class = backbone.load_processor_class()
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


def _official_backbone(model_type: str | None) -> Backbone:
    """The backbone whose official release uses `model_type`, or a ValueError listing the official types."""
    official = {b.official_model_type: b for b in BACKBONES.values() if b.official_model_type}
    if model_type not in official:
        raise ValueError(
            f"config.json has model_type {model_type!r}; official GroundVTS checkpoints use one of {sorted(official)}."
        )
    return official[model_type]
