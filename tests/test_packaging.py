"""The wheel follows the tree: every folder with Python files under a package root is a listed package (so it is in
the wheel), research code is not, and package data is found through the installed package."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Folders shipped as package data, not as packages: the bundled Hub folder and the evaluate metric folders.
DATA_FOLDERS = {ROOT / "hub_configs" / "groundvts-tiny"} | {p.parent for p in (ROOT / "evaluate_metrics").glob("*/*.py")}
UNPACKAGED = {ROOT / "scripts" / "experiments"}


def test_every_folder_with_python_files_is_a_listed_package():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    for package, folder in setuptools["package-dir"].items():
        root = ROOT / folder
        for path in root.rglob("*.py"):
            folder_of = path.parent
            if "__pycache__" in folder_of.parts or any(d == folder_of or d in folder_of.parents for d in DATA_FOLDERS | UNPACKAGED):
                continue
            name = ".".join([package, *folder_of.relative_to(root).parts])
            assert name in listed, f"{folder_of} holds Python files but {name} is not in pyproject's packages"
            assert (folder_of / "__init__.py").is_file(), f"{folder_of} has no __init__.py"
    assert not any(name.startswith("groundvts.scripts.experiments") for name in listed)


def test_package_data_is_found_through_the_installed_package():
    from groundvts.hub_configs import HUB_CONFIG_DIR, TINY_MODEL_DIR
    from groundvts.scripts.inference.evaluation import metrics_dir

    assert (HUB_CONFIG_DIR / "groundvts-q-qwen2_5-vl-7b.json").is_file() and TINY_MODEL_DIR.is_dir()
    assert (metrics_dir() / "moment_retrieval" / "moment_retrieval.py").is_file()
