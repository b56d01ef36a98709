"""Assemble a Hugging Face Hub model repo from a GroundVTS checkpoint folder, and upload it.

The folder gets the weights (safetensors), the flat model and processor code with `auto_map` (loadable with
`trust_remote_code=True`, `AutoModel` included), the processor with the paper's video settings, a greedy
`generation_config.json`, and a model card (README.md) whose `model-index` holds the evaluation results.

    groundvts release CHECKPOINT_DIR --repo-id org/groundvts-q-7b --results results.json --dry-run
    groundvts release CHECKPOINT_DIR --repo-id org/groundvts-q-7b --results results.json \\
        --dataset charades_sta=org/charades-sta --split activitynet_captions=val_2

CHECKPOINT_DIR is a trained or converted GroundVTS checkpoint (config model_type `groundvts_qwen2_5_vl` or
`groundvts_internvl`); its processor files are used unless `--processor` names another folder. A `--results` file
(repeatable) is either the JSON `groundvts evaluate --output` writes for one benchmark, or a mapping from benchmarks
(charades_sta, activitynet_captions, qvhighlights, nextgqa) to their metrics, e.g.
`{"charades_sta": {"R1@0.3": 70.5, "R1@0.5": 58.2, "R1@0.7": 35.1, "mIoU": 50.1}}`. The card's model-index gets each
benchmark's standard metrics (`--all-metrics`: all but counts) on the split `groundvts evaluate` recorded, else
the benchmark's standard split (`--split` overrides both). Video settings default to the paper's: GroundVTS-Q samples 2 fps, at
most 128 frames, at most 16384 pixels per frame; GroundVTS-I takes 16 frames at the vision tower's input
size (448 px for InternVL3.5).
Without `--dry-run` the folder is uploaded with `HfApi().create_repo` + `upload_folder`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from huggingface_hub import HfApi
from huggingface_hub.errors import HFValidationError, HfHubHTTPError
from huggingface_hub.utils import validate_repo_id

from groundvts.scripts.release.model_card import CardInputs, ReleaseError, build_model_card, eval_results_from_files


@dataclass(frozen=True)
class Backbone:
    """What differs between GroundVTS-Q and GroundVTS-I for a release."""

    name: str
    base_model: str
    model_module: str
    model_class: str
    processor_module: str
    processor_class: str


BACKBONES: dict[str, Backbone] = {
    "groundvts_qwen2_5_vl": Backbone(
        "GroundVTS-Q", "Qwen/Qwen2.5-VL-7B-Instruct",
        "groundvts.modeling.modeling_groundvts_qwen2_5_vl", "GroundVTSQwen2_5_VLForConditionalGeneration",
        "groundvts.processing.processing_groundvts_qwen2_5_vl", "GroundVTSQwen2_5_VLProcessor",
    ),
    "groundvts_internvl": Backbone(
        "GroundVTS-I", "OpenGVLab/InternVL3_5-8B-HF",
        "groundvts.modeling.modeling_groundvts_internvl", "GroundVTSInternVLForConditionalGeneration",
        "groundvts.processing.processing_groundvts_internvl", "GroundVTSInternVLProcessor",
    ),
}

# Paper video settings (field notes §3.2) and evaluation decoding (greedy; answers are short spans).
PAPER_QWEN_VIDEO = {"fps": 2.0, "max_frames": 128, "max_pixels": 16384}
PAPER_INTERNVL_VIDEO = {"num_frames": 16, "image_size": 448}  # 448 = InternVL3.5's vision input size
DEFAULT_MAX_NEW_TOKENS = 256


def _import(module: str, name: str) -> Any:
    import importlib

    return getattr(importlib.import_module(module), name)


def read_backbone(checkpoint_dir: Path) -> Backbone:
    """The backbone of a GroundVTS checkpoint folder, or a ReleaseError saying why it is not one."""
    config_file = checkpoint_dir / "config.json"
    if not config_file.is_file():
        raise ReleaseError(f"{config_file} not found: pass the folder of a trained or converted GroundVTS checkpoint.")
    try:
        model_type = json.loads(config_file.read_text()).get("model_type")
    except (json.JSONDecodeError, AttributeError) as error:
        raise ReleaseError(f"{config_file} is not a JSON config object: {error}") from error
    if model_type not in BACKBONES:
        hint = " Convert official checkpoints first with `groundvts convert`." if str(model_type).startswith("vts_") else ""
        raise ReleaseError(
            f"{checkpoint_dir} is not a GroundVTS checkpoint: config.json has model_type {model_type!r}, expected one"
            f" of {sorted(BACKBONES)}.{hint}"
        )
    return BACKBONES[model_type]


def load_model(checkpoint_dir: Path, backbone: Backbone, dtype: str) -> Any:
    model_class = _import(backbone.model_module, backbone.model_class)
    try:
        model, info = model_class.from_pretrained(checkpoint_dir, dtype=dtype, output_loading_info=True)
    except (OSError, RuntimeError) as error:  # no weights file, or weights of other shapes
        raise ReleaseError(f"Could not load {backbone.model_class} from {checkpoint_dir}: {error}") from error
    missing = sorted(info.get("missing_keys") or [])
    if missing:
        raise ReleaseError(f"{checkpoint_dir} is incomplete: weights missing for {missing[:5]} ({len(missing)} in all).")
    return model.eval()


def load_processor(processor_dir: Path, backbone: Backbone) -> Any:
    """Our processor class from the processor files of `processor_dir`.

    Only the processor files are read: next to a `config.json` with `auto_map`, the tokenizer would consult the
    model config and ask to run the folder's remote code."""
    processor_class = _import(backbone.processor_module, backbone.processor_class)
    if not processor_dir.is_dir():
        raise ReleaseError(f"Processor folder {processor_dir} not found.")
    try:
        with tempfile.TemporaryDirectory() as staging:
            for path in processor_dir.iterdir():
                if path.is_file() and not _is_model_file(path.name):
                    shutil.copy2(path, Path(staging) / path.name)
            return processor_class.from_pretrained(staging)
    except Exception as error:  # tokenizer / preprocessor files missing or unreadable
        raise ReleaseError(
            f"Could not load a {backbone.processor_class} from {processor_dir} ({type(error).__name__}: {error}); "
            "save the processor next to the checkpoint or pass --processor FOLDER."
        ) from error


def _is_model_file(name: str) -> bool:
    """Weights, model config and code: not part of a processor."""
    return (
        name in ("config.json", "generation_config.json", "README.md")
        or name.endswith((".safetensors", ".bin", ".pt", ".pth", ".py"))
        or name.startswith("model.safetensors")
    )


def apply_video_settings(processor: Any, backbone: Backbone, settings: dict[str, Any]) -> dict[str, Any]:
    """Write the release's video settings into the processor's saved defaults; returns them for the card."""
    video = processor.video_processor
    if backbone.name == "GroundVTS-Q":
        fps, max_frames, max_pixels = float(settings["fps"]), int(settings["max_frames"]), int(settings["max_pixels"])
        if fps <= 0 or max_frames < 2 or max_pixels < 1:
            raise ReleaseError(f"Need --fps > 0, --max-frames >= 2 and --max-pixels >= 1, got {fps}, {max_frames}, {max_pixels}.")
        min_pixels = min(int(video.size["shortest_edge"]), max_pixels)
        video.fps, video.max_frames = fps, max_frames
        video.min_frames = min(int(getattr(video, "min_frames", None) or 4), max_frames)
        video.size = {"shortest_edge": min_pixels, "longest_edge": max_pixels}
        return {"fps": fps, "max_frames": max_frames, "max_pixels_per_frame": max_pixels}
    num_frames, image_size = int(settings["num_frames"]), int(settings["image_size"])
    if num_frames < 1:
        raise ReleaseError(f"Need --num-frames >= 1, got {num_frames}.")
    video.num_frames = num_frames
    video.size = {"height": image_size, "width": image_size}
    return {"num_frames": num_frames, "frame_size_px": image_size}


def release_video_settings(args: argparse.Namespace, backbone: Backbone, config: Any) -> dict[str, Any]:
    """The paper's video settings, overridden by the flags. GroundVTS-I frames must have the vision tower's input
    size (448 px for InternVL3.5): pixel shuffle and the tokens per frame depend on it."""
    if backbone.name == "GroundVTS-Q":
        return {k: getattr(args, k) if getattr(args, k) is not None else v for k, v in PAPER_QWEN_VIDEO.items()}
    size = config.vision_config.image_size
    tile = int(size[0] if isinstance(size, (list, tuple)) else size)
    if args.image_size is not None and args.image_size != tile:
        raise ReleaseError(f"--image-size {args.image_size} does not fit the vision tower, which takes {tile} px frames.")
    frames = args.num_frames if args.num_frames is not None else PAPER_INTERNVL_VIDEO["num_frames"]
    return {"num_frames": frames, "image_size": tile}


def check_token_ids(model: Any, processor: Any, backbone: Backbone) -> None:
    """The processor must write the placeholder ids the model looks for."""
    pairs = {"image_token_id": (model.config.image_token_id, processor.image_token_id)}
    if backbone.name == "GroundVTS-Q":
        pairs["video_token_id"] = (model.config.video_token_id, processor.video_token_id)
    wrong = {name: ids for name, ids in pairs.items() if ids[0] != ids[1]}
    if wrong:
        raise ReleaseError(
            "The processor does not match the model (config id vs processor id): "
            + ", ".join(f"{name} {ours} vs {theirs}" for name, (ours, theirs) in wrong.items())
            + "; pass the processor the model was trained with (--processor)."
        )


def generation_config(model: Any, processor: Any, max_new_tokens: int) -> Any:
    """Greedy decoding, as in the paper's evaluation; stops at every end token the model or tokenizer knows."""
    from transformers import GenerationConfig

    if max_new_tokens < 1:
        raise ReleaseError(f"--max-new-tokens must be >= 1, got {max_new_tokens}.")
    eos: list[int] = []
    for value in (processor.tokenizer.eos_token_id, model.generation_config.eos_token_id,
                  model.config.text_config.eos_token_id):
        for token in value if isinstance(value, (list, tuple)) else [value]:
            if token is not None and int(token) not in eos:
                eos.append(int(token))
    pad = processor.tokenizer.pad_token_id
    return GenerationConfig(
        do_sample=False, num_beams=1, max_new_tokens=max_new_tokens,
        eos_token_id=eos[0] if len(eos) == 1 else eos, pad_token_id=pad if pad is not None else (eos or [None])[0],
        bos_token_id=model.config.text_config.bos_token_id,
    )


def build_release(args: argparse.Namespace) -> Path:
    """Build the repo folder; returns it."""
    checkpoint_dir, out_dir = Path(args.checkpoint_dir), Path(args.out_dir)
    backbone = read_backbone(checkpoint_dir)
    validate_repo_id(args.repo_id)
    if out_dir.resolve() == checkpoint_dir.resolve():
        raise ReleaseError("--out-dir must differ from CHECKPOINT_DIR: the release folder is built from scratch.")
    if out_dir.exists() and any(out_dir.iterdir()):
        if not args.overwrite:
            raise ReleaseError(f"{out_dir} exists and is not empty; pass --overwrite to replace it.")
        shutil.rmtree(out_dir)
    eval_results = (
        eval_results_from_files(args.results, dict(args.dataset), dict(args.split), all_metrics=args.all_metrics)
        if args.results else []
    )

    processor = load_processor(Path(args.processor or checkpoint_dir), backbone)
    model = load_model(checkpoint_dir, backbone, args.dtype)
    check_token_ids(model, processor, backbone)
    video_settings = apply_video_settings(processor, backbone, release_video_settings(args, backbone, model.config))
    model.generation_config = generation_config(model, processor, args.max_new_tokens)

    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)  # weights, config.json with auto_map, flat model code
    processor.save_pretrained(out_dir)  # tokenizer, pre-processors, flat processor code
    card = build_model_card(
        CardInputs(
            repo_id=args.repo_id, backbone=backbone.name, base_model=args.base_model or backbone.base_model,
            license=args.license, config=model.config, video_settings=video_settings,
            generation=model.generation_config, eval_results=eval_results,
        )
    )
    card.save(out_dir / "README.md")
    return out_dir


def upload(out_dir: Path, repo_id: str, *, private: bool, token: str | None) -> str:
    """Create the model repo if needed and upload the folder; returns the repo URL."""
    api = HfApi(token=token)
    url = api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    api.upload_folder(repo_id=repo_id, repo_type="model", folder_path=str(out_dir), commit_message="Release GroundVTS")
    return str(url)


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key or not value:
        raise argparse.ArgumentTypeError(f"expected BENCHMARK=VALUE, got {text!r}")
    return key, value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="groundvts release", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("checkpoint_dir", help="trained or converted GroundVTS checkpoint folder")
    parser.add_argument("--repo-id", required=True, help="Hub model repo, e.g. org/groundvts-q-7b")
    parser.add_argument("--out-dir", help="where the repo folder is built (default: release/<repo name>)")
    parser.add_argument("--results", action="append", default=[], metavar="JSON",
                        help="results file (repeatable): benchmark -> {metric: value}, or a `groundvts evaluate "
                             "--output` file")
    parser.add_argument("--all-metrics", action="store_true",
                        help="put every metric of the results in the card, not only each benchmark's standard ones")
    parser.add_argument("--dataset", type=_key_value, action="append", default=[], metavar="BENCHMARK=HUB_ID",
                        help="Hub dataset id of a benchmark for the model-index (repeatable)")
    parser.add_argument("--split", type=_key_value, action="append", default=[], metavar="BENCHMARK=SPLIT",
                        help="evaluated split of a benchmark (repeatable; defaults: the standard test splits)")
    parser.add_argument("--processor", help="folder of the processor (default: CHECKPOINT_DIR)")
    parser.add_argument("--fps", type=float, help=f"GroundVTS-Q sampling fps (paper: {PAPER_QWEN_VIDEO['fps']})")
    parser.add_argument("--max-frames", type=int, help=f"GroundVTS-Q frame cap (paper: {PAPER_QWEN_VIDEO['max_frames']})")
    parser.add_argument("--max-pixels", type=int, help=f"GroundVTS-Q pixels per frame (paper: {PAPER_QWEN_VIDEO['max_pixels']})")
    parser.add_argument("--num-frames", type=int, help=f"GroundVTS-I frames (paper: {PAPER_INTERNVL_VIDEO['num_frames']})")
    parser.add_argument("--image-size", type=int,
                        help="GroundVTS-I frame size; must equal the vision tower's (paper: 448)")
    parser.add_argument("--max-new-tokens", type=int, default=DEFAULT_MAX_NEW_TOKENS, help="generation length cap")
    parser.add_argument("--base-model", help="base_model of the card (default: the backbone's Hub id)")
    parser.add_argument("--license", default="apache-2.0", help="license of the card")
    parser.add_argument("--dtype", default="auto", choices=["auto", "bfloat16", "float16", "float32"], help="weight dtype of the release (auto keeps the checkpoint's)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing, non-empty --out-dir")
    parser.add_argument("--dry-run", action="store_true", help="build the folder only; no upload")
    parser.add_argument("--private", action="store_true", help="create the repo as private")
    parser.add_argument("--token", help="Hub token (default: HF_TOKEN / the saved login)")
    args = parser.parse_args(argv)
    if args.out_dir is None:
        args.out_dir = str(Path("release") / args.repo_id.split("/")[-1])
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        out_dir = build_release(args)
    except (ReleaseError, HFValidationError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"built {out_dir}")
    if args.dry_run:
        return 0
    try:
        url = upload(out_dir, args.repo_id, private=args.private, token=args.token)
    except (HfHubHTTPError, OSError) as error:
        print(f"error: upload to {args.repo_id} failed: {error}", file=sys.stderr)
        return 1
    print(f"uploaded to {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
