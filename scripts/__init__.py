"""GroundVTS's application layer: typed libraries by role, and the `groundvts` command on top of them.

    inference/   load a model, ground one video, benchmark inference with resumable predictions, evaluation, plots
    data/        the Grounding-FT builder; data/synthetic/: synthetic videos, the synthetic benchmark, GroundVTS-tiny
    training/    recipes (YAML + --set) -> one training stage
    release/     Hub release folder and card, checkpoint conversion, LoRA merge, metric Spaces
    perf/        prefill and training-step speed benchmarks on one harness
    cli/         one module per command: a parser plus one call into a library

The public Python API is importable from here, loaded on first use so that `groundvts --help` stays fast:

    from groundvts.scripts import ground, load_groundvts
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> module that defines it
_API = {
    "load_groundvts": "groundvts.scripts.inference.loading",
    "configure_vts": "groundvts.scripts.inference.loading",
    "NotGroundVTSModelError": "groundvts.scripts.inference.loading",
    "ground": "groundvts.scripts.inference.grounding",
    "GroundingResult": "groundvts.scripts.inference.grounding",
    "generate_answers": "groundvts.scripts.inference.generation",
    "run_benchmark": "groundvts.scripts.inference.benchmark",
    "evaluate_predictions": "groundvts.scripts.inference.evaluation",
    "plot_grounding": "groundvts.scripts.inference.plots",
    "build_grounding_ft": "groundvts.scripts.data.grounding_ft",
    "make_synthetic_benchmark": "groundvts.scripts.data.synthetic.videos",
    "convert_checkpoint": "groundvts.scripts.release.convert",
    "merge_adapter": "groundvts.scripts.release.merge",
    "build_release": "groundvts.scripts.release.repo",
}
__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'groundvts.scripts' has no attribute {name!r}")
    value = getattr(importlib.import_module(_API[name]), name)
    globals()[name] = value  # later lookups skip this hook
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
