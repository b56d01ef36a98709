"""The one harness of the speed benchmarks (`perf.prefill`, `perf.train_step`): settings, one process per variant,
the report.

A benchmark is a module with `VARIANTS` (name -> setting; optionally `VARIANT_SETS`, named subsets that
`--variants` picks, "default" first), `run_variant(name, preset, repeats, dtype, device,
backbone) -> dict`, `summarize(results, settings) -> (table lines, report)`, and `DEFAULT_REPEATS` / `DEFAULT_OUT`
(its command's defaults).

    from groundvts.scripts.perf import train_step

    report = run_harness(PerfSettings(preset="mid", repeats=3), train_step)
    print(report.summary())

Each variant runs in a fresh Python process (`python -m groundvts.scripts.perf._child ...`) so that its peak memory
(CPU: max RSS growth; GPU: peak allocated) is its own. A subprocess, not `multiprocessing`: a variant that runs out
of memory may be killed outright, and a subprocess still gives its exit status and last stderr lines for the
message; and a spawned `multiprocessing` child would re-import the caller's `__main__`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from groundvts.scripts.perf.prefill import BACKBONE_PRESETS, QWEN_TAG

PERF_DEVICES = ("cpu", "cuda")
PERF_DTYPES = ("float32", "bfloat16")
CHILD_MODULE = "groundvts.scripts.perf._child"


class VariantFailedError(RuntimeError):
    """A variant's process failed (usually out of memory for the preset on this device). Exit status 1."""

    exit_code = 1


@dataclass
class PerfSettings:
    """What to benchmark (backbone, model-size preset) and how (repeats, device, dtype); where the JSON goes."""

    backbone: str = field(default=QWEN_TAG, metadata={
        "choices": sorted(BACKBONE_PRESETS), "help": "qwen2_5_vl (GroundVTS-Q), qwen3_vl (GroundVTS-Q3) or internvl (GroundVTS-I)",
    })
    preset: str = field(default="mid", metadata={"choices": sorted({p for ps in BACKBONE_PRESETS.values() for p in ps})})
    repeats: int = 5
    device: str = field(default="cpu", metadata={"choices": PERF_DEVICES})
    dtype: str = field(default="float32", metadata={"choices": PERF_DTYPES})
    out: Path = Path("benchmark.json")
    variants: str = field(default="default", metadata={
        "help": "which variants: 'default', or for the prefill benchmark 'budget' (dense and every vts_strategy at "
                "rho 0.5, 0.25 and 0.125)",
    })

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        # The messages name the flags: a command shows them as usage errors.
        if self.backbone not in BACKBONE_PRESETS:
            raise ValueError(f"--backbone must be one of {sorted(BACKBONE_PRESETS)}, got {self.backbone!r}")
        presets = BACKBONE_PRESETS[self.backbone]
        if self.preset not in presets:
            raise ValueError(f"--preset {self.preset} is not among the {self.backbone} presets {sorted(presets)}")
        if self.repeats < 1:
            raise ValueError(f"--repeats must be >= 1, got {self.repeats}")
        if self.device not in PERF_DEVICES or self.dtype not in PERF_DTYPES:
            raise ValueError(f"device must be one of {PERF_DEVICES} and dtype one of {PERF_DTYPES}")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ValueError("--device cuda needs a CUDA GPU, and torch sees none here; use --device cpu")

    @property
    def preset_config(self) -> dict[str, Any]:
        """The preset's model sizes."""
        return BACKBONE_PRESETS[self.backbone][self.preset]

    @property
    def torch_dtype(self) -> torch.dtype:
        return getattr(torch, self.dtype)


@dataclass
class PerfReport:
    """A finished benchmark: the printed table, the JSON report and where it was written."""

    lines: list[str]
    report: dict[str, Any]
    path: Path

    def summary(self) -> str:
        return "\n".join([*self.lines, f"wrote {self.path}"])


def run_variant(benchmark: ModuleType, name: str, settings: PerfSettings) -> dict[str, Any]:
    """One variant of `benchmark`, in this process (the child process calls this)."""
    return benchmark.run_variant(
        name, settings.preset_config, settings.repeats, settings.torch_dtype, settings.device, settings.backbone
    )


def run_in_children(benchmark: ModuleType, settings: PerfSettings) -> dict[str, dict[str, Any]]:
    """variant -> result, each variant of `benchmark` run in its own process; VariantFailedError when one fails."""
    child_settings = json.dumps(asdict(settings), default=str)
    results = {}
    for name in variant_names(benchmark, settings.variants):
        child = [sys.executable, "-m", CHILD_MODULE, benchmark.__name__, name, child_settings]
        proc = subprocess.run(child, capture_output=True, text=True)
        if proc.returncode != 0:
            # The child's last words, not the parent's traceback: that is where the reason (e.g. OOM) is.
            raise VariantFailedError(f"variant {name} failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
        results[name] = json.loads(proc.stdout.strip().splitlines()[-1])
    return results


def variant_names(benchmark: ModuleType, variant_set: str) -> tuple[str, ...]:
    """The variants of `benchmark` in the named set (`VARIANT_SETS`; a benchmark without it has only "default")."""
    sets = getattr(benchmark, "VARIANT_SETS", {"default": tuple(benchmark.VARIANTS)})
    if variant_set not in sets:
        raise ValueError(f"--variants must be one of {sorted(sets)} for this benchmark, got {variant_set!r}.")
    return tuple(sets[variant_set])


def write_report(report: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)  # a long run must not be lost to a missing folder
    with open(path, "w") as f:
        json.dump(report, f, indent=2)
    return path


def run_harness(settings: PerfSettings, benchmark: ModuleType) -> PerfReport:
    """Run every variant of the benchmark module `benchmark` (each in its own process), summarize, and write the
    JSON report to `settings.out`."""
    results = run_in_children(benchmark, settings)
    lines, report = benchmark.summarize(results, settings)
    return PerfReport(lines, report, write_report(report, settings.out))
