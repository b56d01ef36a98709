"""Build a Hugging Face Hub model repo folder from a GroundVTS checkpoint, and upload it (`groundvts release`).

The folder gets the weights (safetensors), the flat model and processor code with `auto_map` (loadable with
`trust_remote_code=True`, `AutoModel` included), the processor with the paper's video settings (or
`VideoOverrides`), a greedy `generation_config.json`, and a model card (README.md) whose `model-index` holds the
evaluation results (`ReleaseResults`).

    from groundvts.scripts.release.repo import ReleaseSettings, VideoOverrides, build_release, upload

    out_dir = build_release(ReleaseSettings("outputs/groundvts-q", repo_id="org/groundvts-q-7b"),
                            video=VideoOverrides(fps=1.0))
    upload(out_dir, "org/groundvts-q-7b")

Bad input raises `ReleaseError` (a ValueError); a failed upload raises `UploadError`.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError
from huggingface_hub.utils import validate_repo_id

from groundvts.hub_configs.backbones import BACKBONES, Backbone, read_config
from groundvts.scripts.output_paths import check_new_folder
from groundvts.scripts.release.hub import UploadError
from groundvts.trainers.model_card import read_card_metadata
from groundvts.scripts.release.model_card import CardInputs, ReleaseError, build_model_card, eval_results_from_files

# Paper video settings (field notes §3.2) and evaluation decoding (greedy; answers are short spans).
PAPER_QWEN_VIDEO = {"fps": 2.0, "max_frames": 128, "max_pixels": 16384}
PAPER_INTERNVL_VIDEO = {"num_frames": 16, "image_size": 448}  # 448 = InternVL3.5's vision input size
DEFAULT_MAX_NEW_TOKENS = 256
RELEASE_DTYPES = ("auto", "bfloat16", "float16", "float32")


@dataclass
class ReleaseSettings:
    """What to release and how: the checkpoint, the Hub repo id, the output folder and the card's metadata."""

    checkpoint_dir: Path = field(metadata={"positional": True, "help": "trained or converted GroundVTS checkpoint folder"})
    repo_id: str = field(metadata={"help": "Hub model repo, e.g. org/groundvts-q-7b"})
    out_dir: Path | None = field(
        default=None, metadata={"help": "where the repo folder is built (default: release/<repo name>)"}
    )
    all_metrics: bool = field(
        default=False,
        metadata={"help": "put every metric of the results in the card, not only each benchmark's standard ones"},
    )
    processor: Path | None = field(default=None, metadata={"help": "folder of the processor (default: CHECKPOINT_DIR)"})
    max_new_tokens: int = field(default=DEFAULT_MAX_NEW_TOKENS, metadata={"help": "generation length cap"})
    base_model: str | None = field(
        default=None,
        metadata={"help": "base_model of the card (default: the one the checkpoint's training run recorded in its "
                  "README; none if unknown)"},
    )
    training_datasets: list[str] | None = field(
        default=None,
        metadata={"nargs": "+", "metavar": "HUB_ID",
                  "help": "training datasets of the card (default: those the checkpoint's training run recorded)"},
    )
    license: str = field(default="apache-2.0", metadata={"help": "license of the card"})
    dtype: str = field(
        default="auto",
        metadata={"choices": RELEASE_DTYPES, "help": "weight dtype of the release (auto keeps the checkpoint's)"},
    )
    overwrite: bool = field(default=False, metadata={"help": "replace an existing, non-empty --out-dir"})

    def __post_init__(self) -> None:
        self.checkpoint_dir = Path(self.checkpoint_dir)
        # The default folder is named after the repo, so that releasing two repos never mixes their files.
        self.out_dir = Path(self.out_dir) if self.out_dir is not None else Path("release") / self.repo_id.split("/")[-1]
        self.processor = Path(self.processor) if self.processor is not None else None
        if self.dtype not in RELEASE_DTYPES:
            raise ValueError(f"dtype must be one of {RELEASE_DTYPES}, got {self.dtype!r}")


@dataclass
class VideoOverrides:
    """Video settings that replace the paper's; None keeps the paper's value. The first three are GroundVTS-Q and -Q3's,
    the last two GroundVTS-I's (the other backbone's are ignored)."""

    fps: float | None = field(default=None, metadata={"help": f"GroundVTS-Q / Q3 sampling fps (paper: {PAPER_QWEN_VIDEO['fps']})"})
    max_frames: int | None = field(
        default=None, metadata={"help": f"GroundVTS-Q / Q3 frame cap (paper: {PAPER_QWEN_VIDEO['max_frames']})"}
    )
    max_pixels: int | None = field(
        default=None, metadata={"help": f"GroundVTS-Q / Q3 pixels per frame (paper: {PAPER_QWEN_VIDEO['max_pixels']})"}
    )
    num_frames: int | None = field(
        default=None, metadata={"help": f"GroundVTS-I frames (paper: {PAPER_INTERNVL_VIDEO['num_frames']})"}
    )
    image_size: int | None = field(
        default=None, metadata={"help": "GroundVTS-I frame size; must equal the vision tower's (paper: 448)"}
    )
    paper_video_settings: bool = field(
        default=False,
        metadata={"help": "start from the paper's video settings instead of the checkpoint processor's own"},
    )


@dataclass
class ReleaseResults:
    """Results files for the card's model-index: each either the JSON `groundvts evaluate --output` writes for one
    benchmark, or a mapping benchmark -> {metric: value}. `dataset_ids` / `splits` override a benchmark's dataset id
    (a Hub id where one exists) and its split."""

    files: list[Path] = field(default_factory=list)
    dataset_ids: dict[str, str] = field(default_factory=dict)
    splits: dict[str, str] = field(default_factory=dict)


def read_backbone(checkpoint_dir: Path) -> Backbone:
    """The backbone of a GroundVTS checkpoint folder, or a ReleaseError saying why it is not one."""
    checkpoint_dir = Path(checkpoint_dir)
    if not checkpoint_dir.is_dir():  # checked here: `read_config` would look a missing folder's name up on the Hub
        raise ReleaseError(
            f"{checkpoint_dir / 'config.json'} not found: pass the folder of a trained or converted GroundVTS checkpoint."
        )
    try:
        model_type = read_config(checkpoint_dir).get("model_type")
    except (FileNotFoundError, ValueError) as error:  # no config.json, or not a JSON object
        raise ReleaseError(f"{error} Pass the folder of a trained or converted GroundVTS checkpoint.") from error
    if model_type not in BACKBONES:
        official = {backbone.official_model_type for backbone in BACKBONES.values() if backbone.official_model_type}
        hint = " Convert official checkpoints first with `groundvts convert`." if model_type in official else ""
        raise ReleaseError(
            f"{checkpoint_dir} is not a GroundVTS checkpoint: config.json has model_type {model_type!r}, expected one"
            f" of {sorted(BACKBONES)}.{hint}"
        )
    return BACKBONES[model_type]


def load_model(checkpoint_dir: Path, backbone: Backbone, dtype: str) -> Any:
    model_class = backbone.load_model_class()
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
    processor_class = backbone.load_processor_class()
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
    if backbone.fps_sampled:
        fps, max_frames, max_pixels = float(settings["fps"]), int(settings["max_frames"]), int(settings["max_pixels"])
        if fps <= 0 or max_frames < 2 or max_pixels < 1:
            raise ReleaseError(f"Need --fps > 0, --max-frames >= 2 and --max-pixels >= 1, got {fps}, {max_frames}, {max_pixels}.")
        min_pixels = min(int(video.size["shortest_edge"]), max_pixels)
        video.fps, video.max_frames = fps, max_frames
        video.min_frames = min(int(getattr(video, "min_frames", None) or 4), max_frames)
        longest = max_pixels
        if getattr(processor, "longest_edge_is_per_video", False):
            # Qwen3-VL: `longest_edge` is the whole video's budget and each frame is capped at `max_video_tokens`
            # patches of factor² px (`cap_pixels_per_frame`): bound the frame there, never the video.
            video.max_video_tokens = max(1, max_pixels // (video.patch_size * video.merge_size) ** 2)
            video.cap_pixels_per_frame, longest = True, max_pixels * max_frames
        video.size = {"shortest_edge": min_pixels, "longest_edge": longest}
        return {"fps": fps, "max_frames": max_frames, "max_pixels_per_frame": max_pixels}
    num_frames, image_size = int(settings["num_frames"]), int(settings["image_size"])
    if num_frames < 1:
        raise ReleaseError(f"Need --num-frames >= 1, got {num_frames}.")
    video.num_frames = num_frames
    video.size = {"height": image_size, "width": image_size}
    return {"num_frames": num_frames, "frame_size_px": image_size}


def processor_video_settings(processor: Any, backbone: Backbone) -> dict[str, Any]:
    """The video settings the checkpoint's processor was saved with (what its model was trained and tested on)."""
    video = processor.video_processor
    if not backbone.fps_sampled:
        return {"num_frames": video.num_frames}
    max_pixels = video.size["longest_edge"]
    if getattr(processor, "longest_edge_is_per_video", False):  # Qwen3-VL: per frame from the per-frame token cap
        factor = video.patch_size * video.merge_size
        per_frame = getattr(video, "max_video_tokens", None) if getattr(video, "cap_pixels_per_frame", False) else None
        max_pixels = per_frame * factor**2 if per_frame else max_pixels // max(int(video.max_frames), 1)
    return {"fps": video.fps, "max_frames": video.max_frames, "max_pixels": max_pixels}


def release_video_settings(
    video: VideoOverrides, backbone: Backbone, config: Any, saved: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The checkpoint processor's `saved` video settings (the paper's with `paper_video_settings`, or when none are
    given), overridden by `video`. GroundVTS-I frames must have the vision tower's input size (448 px for
    InternVL3.5): pixel shuffle and the tokens per frame depend on it."""
    paper = PAPER_QWEN_VIDEO if backbone.fps_sampled else PAPER_INTERNVL_VIDEO
    start = {**paper, **(saved or {})} if not video.paper_video_settings else dict(paper)
    if backbone.fps_sampled:
        return {k: getattr(video, k) if getattr(video, k) is not None else start[k] for k in PAPER_QWEN_VIDEO}
    size = config.vision_config.image_size
    tile = int(size[0] if isinstance(size, (list, tuple)) else size)
    if video.image_size is not None and video.image_size != tile:
        raise ReleaseError(f"--image-size {video.image_size} does not fit the vision tower, which takes {tile} px frames.")
    frames = video.num_frames if video.num_frames is not None else start["num_frames"]
    return {"num_frames": frames, "image_size": tile}


def check_token_ids(model: Any, processor: Any, backbone: Backbone) -> None:
    """The processor must write the placeholder ids the model looks for."""
    pairs = {"image_token_id": (model.config.image_token_id, processor.image_token_id)}
    if backbone.fps_sampled:  # the Qwen-VLs have their own video placeholder
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


def build_release(
    settings: ReleaseSettings, video: VideoOverrides | None = None, results: ReleaseResults | None = None
) -> Path:
    """Build the repo folder `settings.out_dir` (no network); returns it.

    Raises ReleaseError (or the Hub's HFValidationError for a bad repo id, both ValueErrors) for bad input; nothing
    is written before the checkpoint, the repo id, the output folder and the results files have been checked.
    """
    video = video if video is not None else VideoOverrides()
    checkpoint_dir, out_dir = settings.checkpoint_dir, settings.out_dir
    backbone = read_backbone(checkpoint_dir)
    validate_repo_id(settings.repo_id)
    if out_dir.resolve() == checkpoint_dir.resolve():
        raise ReleaseError("--out-dir must differ from CHECKPOINT_DIR: the release folder is built from scratch.")
    check_new_folder(out_dir, "--out-dir", overwrite=settings.overwrite)
    if out_dir.is_dir() and any(out_dir.iterdir()):  # --overwrite: the release folder is built from scratch
        shutil.rmtree(out_dir)
    eval_results = (
        eval_results_from_files(results.files, dict(results.dataset_ids), dict(results.splits),
                                all_metrics=settings.all_metrics)
        if results is not None and results.files else []
    )

    processor = load_processor(settings.processor or checkpoint_dir, backbone)
    model = load_model(checkpoint_dir, backbone, settings.dtype)
    check_token_ids(model, processor, backbone)
    saved = processor_video_settings(processor, backbone)
    video_settings = apply_video_settings(processor, backbone, release_video_settings(video, backbone, model.config, saved))
    model.generation_config = generation_config(model, processor, settings.max_new_tokens)

    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)  # weights, config.json with auto_map, flat model code
    processor.save_pretrained(out_dir)  # tokenizer, pre-processors, flat processor code
    recorded = read_card_metadata(checkpoint_dir)  # the lineage the training run wrote (stage / merge card)
    card = build_model_card(
        CardInputs(
            repo_id=settings.repo_id, backbone=backbone, base_model=settings.base_model or recorded.get("base_model"),
            datasets=list(settings.training_datasets or recorded.get("datasets") or []),
            license=settings.license, config=model.config, video_settings=video_settings,
            generation=model.generation_config, eval_results=eval_results,
        )
    )
    card.save(out_dir / "README.md")
    return out_dir


def upload(out_dir: Path, repo_id: str, *, private: bool = False, token: str | None = None) -> str:
    """Create the model repo if needed and upload the folder; returns the repo URL. Raises UploadError."""
    try:
        api = HfApi(token=token)
        url = api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        api.upload_folder(repo_id=repo_id, repo_type="model", folder_path=str(out_dir), commit_message="Release GroundVTS")
    except (HfHubHTTPError, OSError) as error:  # refused by the Hub, no network, or an unreadable file
        raise UploadError(f"upload to {repo_id} failed: {error}") from error
    return str(url)
