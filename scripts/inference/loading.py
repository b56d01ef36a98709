"""Load a GroundVTS checkpoint (model and processor) and override its VTS settings.

`load_groundvts` goes through the Auto classes with `trust_remote_code=True`, so a folder saved by GroundVTS runs
the code saved with its weights. It refuses, with the fix, folders that are not GroundVTS models and folders whose
processor is not ours. `ModelSettings` names a model and its overrides; `groundvts ground` and `groundvts infer`
take their model flags from it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from groundvts.hub_configs import resolve_model_name
from groundvts.hub_configs.backbones import BACKBONES, GROUNDVTS_MODEL_TYPES, model_type_of
from groundvts.modeling.vts import VTS_STRATEGIES
from groundvts.processing.input_checks import check_keep_ratio

__all__ = [
    "NotGroundVTSModelError", "load_groundvts", "configure_vts", "ModelSettings", "Loader", "check_device",
    "model_fingerprint",
]

# What `ModelSettings.load` calls to get (model, processor); commands pass their own `load_groundvts` so that tests
# can replace it there.
Loader = Callable[..., tuple[Any, Any]]


class NotGroundVTSModelError(ValueError):
    """The model folder or id does not hold a usable GroundVTS model (another model type, or no GroundVTS processor)."""


def _config_model_type(model_path_or_id: str) -> str | None:
    try:
        return model_type_of(model_path_or_id)
    except (FileNotFoundError, ValueError) as error:
        if Path(model_path_or_id).is_dir():  # a folder, but no readable config.json: not a model folder
            raise NotGroundVTSModelError(str(error)) from error
        raise  # no such folder, or a Hub id that cannot be loaded: FileNotFoundError


def load_groundvts(
    model_path_or_id: str | Path, device: str | None = None, dtype: str | torch.dtype = "auto"
) -> tuple[Any, Any]:
    """(model, processor) of a GroundVTS checkpoint, through the Auto classes with `trust_remote_code=True`.

    Raises `NotGroundVTSModelError` (a ValueError) when the config's model_type is not a GroundVTS one, or when
    the folder has no GroundVTS processor (e.g. a stock Qwen2.5-VL one); both messages say how to convert it.
    `device` defaults to cuda when available; `dtype` is "auto", a torch dtype or its name.
    """
    from transformers import AutoModelForImageTextToText

    model_path_or_id = resolve_model_name(model_path_or_id)  # `groundvts-tiny`: the bundled model
    model_type = _config_model_type(model_path_or_id)
    if model_type not in GROUNDVTS_MODEL_TYPES:
        raise NotGroundVTSModelError(
            f"'{model_path_or_id}' is not a GroundVTS model: its config says model_type {model_type!r}, expected one "
            f"of {GROUNDVTS_MODEL_TYPES}. `groundvts convert {model_path_or_id} OUTPUT_DIR` turns official GroundVTS "
            "checkpoints and plain Qwen2.5-VL / Qwen3-VL / InternVL3.5-HF weights into one."
        )
    if isinstance(dtype, str) and dtype != "auto":
        if not isinstance(getattr(torch, dtype, None), torch.dtype):
            raise ValueError(f"Unknown dtype {dtype!r}; use auto, float32, bfloat16 or float16.")
        dtype = getattr(torch, dtype)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    # The processor first: it is cheap, and a wrong one must stop us before the weights load.
    processor = _load_groundvts_processor(model_path_or_id, model_type)
    model = AutoModelForImageTextToText.from_pretrained(model_path_or_id, trust_remote_code=True, dtype=dtype)
    return model.to(device).eval(), processor


WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
# What `model_fingerprint` reads of each weight file: this many evenly spaced samples of this many bytes. Enough to
# tell two trainings apart (a merged LoRA touches every LLM layer) while reading MBs, not the GBs of a 7B model.
FINGERPRINT_SAMPLES, FINGERPRINT_SAMPLE_BYTES = 64, 1 << 16


def _sampled_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    size = path.stat().st_size
    digest.update(f"{path.name}:{size}".encode())
    with path.open("rb") as handle:
        for index in range(FINGERPRINT_SAMPLES):
            handle.seek(index * max(size - FINGERPRINT_SAMPLE_BYTES, 0) // max(FINGERPRINT_SAMPLES - 1, 1))
            digest.update(handle.read(FINGERPRINT_SAMPLE_BYTES))
    return digest.hexdigest()


def model_fingerprint(model_path_or_id: str | Path, model: Any = None) -> str:
    """Which weights `model_path_or_id` holds: `sha256:<hex>` over the folder's weight files (names, sizes and 64
    evenly spaced 64 KiB samples of each), or `commit:<sha>` for a Hub id (the revision that was loaded).

    `groundvts infer` writes it in every row and refuses to resume a file made with other weights.
    """
    folder = Path(model_path_or_id)
    if folder.is_dir():
        files = sorted(p for p in folder.iterdir() if p.suffix in WEIGHT_SUFFIXES and p.is_file())
        digest = hashlib.sha256("".join(_sampled_sha256(p) for p in files).encode())
        return f"sha256:{digest.hexdigest()[:16]}"
    commit = getattr(getattr(model, "config", None), "_commit_hash", None)
    return f"commit:{commit}" if commit else "unknown"


def _load_groundvts_processor(model_path_or_id: str, model_type: str) -> Any:
    """The folder's processor, which must be ours: a stock Qwen2.5-VL processor would decode the video files with
    transformers' own decoder (or fail there) and time them with its 24 fps fallback (field notes 4.2)."""
    from transformers import AutoProcessor

    backbone = BACKBONES[model_type]

    def fix(processor_source: str) -> str:
        return (
            f"Fix the folder with `groundvts convert {model_path_or_id} OUTPUT_DIR{processor_source}` (same weights, "
            f"saved with {backbone.processor_class}) and use OUTPUT_DIR."
        )

    try:
        processor = AutoProcessor.from_pretrained(model_path_or_id, trust_remote_code=True)
    except (OSError, ValueError) as error:  # no processor files at all (e.g. only the model was saved)
        raise NotGroundVTSModelError(
            f"'{model_path_or_id}' has no loadable processor ({str(error).splitlines()[0]}); GroundVTS needs "
            f"{backbone.processor_class} saved next to the weights. {fix(f' --processor {backbone.base_model}')}"
        ) from error
    found = type(processor).__name__
    if found != backbone.processor_class:
        raise NotGroundVTSModelError(
            f"'{model_path_or_id}' has a {found} processor, but {backbone.name} needs {backbone.processor_class}: it "
            f"decodes and samples video files with their true timing (Qwen2.5-VL: second_per_grid_ts from the real "
            f"fps) and marks the question VTS pools. {fix('')}"
        )
    return processor


def check_device(device: str) -> str:
    """`device` names a torch device that exists here (a CUDA index below the GPU count)."""
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError) as error:
        raise ValueError(f"--device {device!r} is not a device name; use cpu, cuda or cuda:N.") from error
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"--device {device}: no CUDA GPU is available on this machine; use --device cpu.")
        if parsed.index is not None and parsed.index >= count:
            raise ValueError(f"--device {device}: this machine has {count} GPU(s), cuda:0 to cuda:{count - 1}.")
    elif parsed.type not in ("cpu", "mps", "xpu"):
        raise ValueError(f"--device {device!r}: GroundVTS runs on cpu or cuda.")
    elif parsed.type != "cpu" and not getattr(torch, parsed.type).is_available():
        raise ValueError(f"--device {device}: no {parsed.type} device is available on this machine; use --device cpu.")
    return device


def _check_strategy(strategy: str | None) -> None:
    if strategy is not None and strategy not in VTS_STRATEGIES:
        raise ValueError(f"Unknown VTS strategy {strategy!r}; choose one of {', '.join(VTS_STRATEGIES)}.")


def configure_vts(model: Any, keep_ratio: float | None = None, strategy: str | None = None) -> None:
    """Override ρ (`vts_keep_ratio`) and/or the selection strategy of a loaded model, with checks."""
    if keep_ratio is not None:
        model.config.vts_keep_ratio = check_keep_ratio(keep_ratio, "keep_ratio")
    if strategy is not None:
        _check_strategy(strategy)
        model.config.vts_strategy = strategy


@dataclass
class ModelSettings:
    """Which GroundVTS model to load, where, and the VTS overrides to apply to it."""

    model: str | None = field(
        default=None,
        metadata={
            "help": "GroundVTS model folder or Hub id (default: the bundled GroundVTS-tiny, which knows synthetic shapes)"
        },
    )
    device: str | None = field(
        default=None,
        metadata={"help": "cpu, cuda, cuda:1 ... (default: cuda if available; under accelerate, each process's own)"},
    )
    dtype: str = field(default="auto", metadata={"help": "auto, float32, bfloat16 or float16"})
    keep_ratio: float | None = field(
        default=None, metadata={"help": "override rho, the share of tokens kept (config vts_keep_ratio)"}
    )
    strategy: str | None = field(
        default=None, metadata={"choices": VTS_STRATEGIES, "help": "override the VTS strategy (config vts_strategy)"}
    )

    def __post_init__(self) -> None:
        # Checked before any weights load, so a typo costs nothing.
        if self.keep_ratio is not None:
            check_keep_ratio(self.keep_ratio, "keep_ratio")
        _check_strategy(self.strategy)
        if self.model is not None:
            self.model = resolve_model_name(self.model)  # `groundvts-tiny`: the bundled model
        if self.device is not None:
            check_device(self.device)

    def or_bundled(self, log: Callable[[str], None] | None = None) -> "ModelSettings":
        """These settings, naming the bundled GroundVTS-tiny when no model is given (with a note to `log`)."""
        if self.model is not None:
            return self
        from groundvts.hub_configs import tiny_model_dir

        if log is not None:
            log("model: the bundled GroundVTS-tiny (synthetic shapes only; name a real checkpoint with --model)")
        return replace(self, model=str(tiny_model_dir()))

    def load(self, loader: Loader = load_groundvts, *, default_device: str | None = None) -> tuple[Any, Any]:
        """(model, processor) from `loader` (default `load_groundvts`), with the VTS overrides applied.

        `default_device` is used when `device` is not set (e.g. the accelerate process's device)."""
        if self.model is None:
            raise ValueError("No model given: pass --model (a GroundVTS model folder or Hub id).")
        model, processor = loader(self.model, device=self.device or default_device, dtype=self.dtype)
        configure_vts(model, keep_ratio=self.keep_ratio, strategy=self.strategy)
        return model, processor
