"""Real-size configurations of the GroundVTS releases (JSON, loadable with `AutoConfig`-style classes)."""

from pathlib import Path

HUB_CONFIG_DIR = Path(__file__).parent


def hub_config_path(name: str) -> Path:
    """Path of a bundled config, e.g. `hub_config_path("groundvts-q-qwen2_5-vl-7b")`."""
    path = HUB_CONFIG_DIR / f"{name}.json"
    if not path.is_file():
        available = sorted(p.stem for p in HUB_CONFIG_DIR.glob("*.json"))
        raise FileNotFoundError(f"No bundled config {name!r}; available: {available}")
    return path
