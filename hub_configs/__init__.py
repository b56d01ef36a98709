"""What the package knows about its models: the real-size configurations of the GroundVTS releases (JSON), the
backbone registry and the one config.json reader (`backbones.py`), and the bundled GroundVTS-tiny with its examples."""

import json
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

HUB_CONFIG_DIR = Path(str(files("groundvts.hub_configs")))  # package data, wherever the package is installed


def hub_config_path(name: str) -> Path:
    """Path of a bundled config, e.g. `hub_config_path("groundvts-q-qwen2_5-vl-7b")`."""
    path = HUB_CONFIG_DIR / f"{name}.json"
    if not path.is_file():
        available = sorted(p.stem for p in HUB_CONFIG_DIR.glob("*.json"))
        raise FileNotFoundError(f"No bundled config {name!r}; available: {available}")
    return path


# The embedded default model: GroundVTS-tiny, trained from scratch on the synthetic shapes benchmark
# (`groundvts synthetic-benchmark`), with a few held-out synthetic videos to try it on.
TINY_MODEL_DIR = HUB_CONFIG_DIR / "groundvts-tiny"
TINY_EXAMPLES_FILE = TINY_MODEL_DIR / "examples" / "examples.json"


@dataclass(frozen=True)
class DemoExample:
    """A bundled synthetic video, the sentence to ground in it and the true span (seconds)."""

    video: Path
    query: str
    truth: tuple[float, float]


def tiny_model_dir() -> Path:
    """Folder of the bundled GroundVTS-tiny model (a Hub-style repo: weights, flat code, processor, card)."""
    if not (TINY_MODEL_DIR / "model.safetensors").is_file():
        raise FileNotFoundError(
            f"The bundled GroundVTS-tiny model is missing from {TINY_MODEL_DIR}; reinstall groundvts, or name a"
            " model with --model."
        )
    return TINY_MODEL_DIR


# The name that stands for the bundled model wherever a model folder or Hub id is expected (`--model`, recipes).
TINY_MODEL_NAME = "groundvts-tiny"


def resolve_model_name(path_or_id: str | Path) -> str:
    """`groundvts-tiny` -> the bundled model's folder (unless a folder of that name exists here); else unchanged."""
    if str(path_or_id) == TINY_MODEL_NAME and not Path(TINY_MODEL_NAME).exists():
        return str(tiny_model_dir())
    return str(path_or_id)


def demo_examples() -> list[DemoExample]:
    """The bundled held-out synthetic videos (examples/examples.json), in file order."""
    rows = json.loads(TINY_EXAMPLES_FILE.read_text())
    return [DemoExample(TINY_EXAMPLES_FILE.parent / r["video"], r["query"], (r["start"], r["end"])) for r in rows]
