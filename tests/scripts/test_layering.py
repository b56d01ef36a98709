"""Calls run one way only: `scripts/cli` -> the libraries of `groundvts.scripts` -> `trainers` -> `modeling`,
`processing`. Only command modules parse argv, and no library runs a command's `main()`."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / "scripts" / "cli"
UNPACKAGED = ROOT / "scripts" / "experiments"  # research code, not in the wheel
LOWER_LAYERS = ("modeling", "processing", "trainers", "hub_configs", "evaluate_metrics")


def python_files(*roots: Path):
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            if "groundvts-tiny" not in path.parts:
                yield path


def imported_modules(tree: ast.AST, path: Path) -> set[str]:
    """Absolute names of everything a module imports (relative imports resolved against its package)."""
    package = ["groundvts", *path.relative_to(ROOT).parent.parts]
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


LIBRARIES = [p for p in python_files(ROOT / "scripts") if CLI not in p.parents and UNPACKAGED not in p.parents]


@pytest.mark.parametrize("path", LIBRARIES, ids=lambda p: str(p.relative_to(ROOT)))
def test_libraries_do_not_parse_argv_or_call_commands(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imports = imported_modules(tree, path)
    assert "argparse" not in imports, f"{path}: argparse belongs in scripts/cli"
    assert not any(name.startswith("groundvts.scripts.cli") for name in imports), f"{path} imports the cli layer"
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
            assert name != "main", f"{path}:{node.lineno} calls a command's main()"


@pytest.mark.parametrize("layer", LOWER_LAYERS)
def test_lower_layers_never_import_the_application_layer(layer):
    for path in python_files(ROOT / layer):
        imports = imported_modules(ast.parse(path.read_text(encoding="utf-8")), path)
        assert not any(name.startswith("groundvts.scripts") for name in imports), f"{path} imports groundvts.scripts"
        assert "argparse" not in imports, f"{path}: argparse belongs in scripts/cli"
