"""Inference: load a GroundVTS model, ground a sentence in one video, answer benchmark queries in batches with a
resumable prediction store, score the predictions, and plot where VTS kept tokens.

The public names below are importable from this package; each loads its module (and torch) on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> submodule that defines it
_API = {
    "ModelSettings": "loading",
    "NotGroundVTSModelError": "loading",
    "configure_vts": "loading",
    "load_groundvts": "loading",
    "SamplingSettings": "generation",
    "VideoAnswer": "generation",
    "VideoReadError": "generation",
    "generate_answers": "generation",
    "GroundingResult": "grounding",
    "describe": "grounding",
    "ground": "grounding",
    "BenchmarkData": "benchmark_tasks",
    "BenchmarkReport": "benchmark",
    "BenchmarkRunSettings": "benchmark",
    "SettingsMismatchError": "benchmark",
    "run_benchmark": "benchmark",
    "CorruptPredictionsError": "prediction_store",
    "evaluate_predictions": "evaluation",
    "results_table": "evaluation",
    "write_results": "evaluation",
    "kept_density": "plots",
    "plot_grounding": "plots",
}
__all__ = sorted(_API)


def __getattr__(name: str) -> Any:  # PEP 562: nothing heavy is imported until a name is used
    if name not in _API:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_API[name]}"), name)
    globals()[name] = value  # later lookups skip this hook
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
