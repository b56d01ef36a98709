"""Accuracy at a token budget on the synthetic benchmark: GroundVTS against the pruning a user would pick instead.

`run_budget_sweep(settings, out)` takes a finished `groundvts synthetic-benchmark` run (its dense `base`, the trained
GroundVTS `token` model and its `data`) and evaluates, for every keep ratio rho, with the benchmark's own evaluator
(`benchmark.evaluate_model`: `groundvts infer` + the Charades-STA metrics + the share of the target's tokens kept):

| method | model | what changes with rho |
|---|---|---|
| `dense_fps` | base | fewer frames: dense at rho x 2 fps (the plain answer) |
| `random`, `temporal_redundancy`, `centre_distance`, `parameter_free` | base | that strategy keeps ceil(rho N) tokens |
| `groundvts` | token | VTS at rho, trained at 0.5 and not re-trained (rho is a run-time setting) |
| `groundvts_retrained` | token re-trained at `retrain_ratio` (optional) | evaluated at that ratio only |

At rho = 1 every training-free method is the dense base at 2 fps (every token kept, unchanged), so it is evaluated
once. The run's folders are read only: the models are copied under OUT/models with the package's current code
files, which the new strategies need (a saved folder runs the code saved with it).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from groundvts.scripts.data.synthetic.benchmark import BASE_FPS, evaluate_model

SWEEP_RATIOS = (1.0, 0.5, 0.25, 0.125)
# method -> (model folder of the run, vts_strategy; None = dense at a lower fps)
SWEEP_METHODS: dict[str, tuple[str, str | None]] = {
    "dense_fps": ("base", None),
    "random": ("base", "random"),
    "temporal_redundancy": ("base", "temporal_redundancy"),
    "centre_distance": ("base", "centre_distance"),
    "parameter_free": ("base", "parameter_free"),
    "groundvts": ("token", "token"),
}
TRAINING_FREE = tuple(name for name, (model, _) in SWEEP_METHODS.items() if model == "base")
METRIC_KEYS = ("R1@0.3", "R1@0.5", "R1@0.7", "mIoU", "target_tokens_kept", "kept_tokens_per_video")


@dataclass
class BudgetSweepSettings:
    """Which run to sweep, over which ratios and methods; each field is a `budget_sweep` flag."""

    run: Path = field(metadata={"positional": True,
                                "help": "a finished synthetic-benchmark folder (base/, token/, data/); read only"})
    ratios: tuple[float, ...] = field(
        default=SWEEP_RATIOS, metadata={"nargs": "+", "help": "keep ratios rho to evaluate"}
    )
    methods: tuple[str, ...] = field(
        default=tuple(SWEEP_METHODS), metadata={"nargs": "+", "choices": list(SWEEP_METHODS), "help": "methods"}
    )
    retrain_ratio: float | None = field(
        default=None, metadata={"help": "also re-train GroundVTS (stages 1-3 from the base, the run's settings) at "
                                        "this rho and evaluate it there (about as long as the run's token "
                                        "variant; a model already in OUT/token_rho<rho> is reused)"}
    )
    limit: int | None = field(default=None, metadata={"help": "evaluate the first N test queries only (smoke tests)"})
    saved_only: bool = field(default=False, metadata={
        "help": "evaluate nothing: build the report from the evaluations already saved in OUT (e.g. by runs of other "
                "methods in parallel); missing ones are listed under `missing`"})

    def __post_init__(self) -> None:
        self.run, self.ratios, self.methods = Path(self.run), tuple(self.ratios), tuple(self.methods)
        for rho in (*self.ratios, *([self.retrain_ratio] if self.retrain_ratio is not None else [])):
            if not 0.0 < float(rho) <= 1.0:
                raise ValueError(f"keep ratios must be in (0, 1], got {rho}.")
        unknown = sorted(set(self.methods) - set(SWEEP_METHODS))
        if unknown:
            raise ValueError(f"unknown methods {unknown}; choose from {list(SWEEP_METHODS)}.")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"--limit must be >= 1, got {self.limit}.")


def refreshed_copy(source: Path, target: Path) -> Path:
    """The saved model with its weights unchanged, re-saved with the package's current code (`groundvts convert`)."""
    from groundvts.scripts.release.convert import convert

    if not (target / "config.json").is_file():
        shutil.rmtree(target, ignore_errors=True)
        convert(source, target)
    return target


def run_budget_sweep(
    settings: BudgetSweepSettings, out: Path, log: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Evaluate every (method, rho) into OUT; writes OUT/results.json, OUT/budget_sweep.md and OUT/budget_sweep.png
    and returns the report (`results[method][rho]` = the metrics)."""
    needed = {SWEEP_METHODS[name][0] for name in settings.methods} | {"data"}
    needed |= {"base"} if settings.retrain_ratio is not None else set()
    missing = sorted(name for name in needed if not (settings.run / name).is_dir())
    if missing:
        raise FileNotFoundError(
            f"{settings.run} lacks {', '.join(missing)}: pass the folder of a finished `groundvts synthetic-benchmark` "
            "run (it holds base/, token/ and data/)."
        )
    out.mkdir(parents=True, exist_ok=True)
    data_dir = settings.run / "data"
    models = {name: refreshed_copy(settings.run / name, out / "models" / name)
              for name in sorted({SWEEP_METHODS[m][0] for m in settings.methods})}

    missing: list[str] = []

    def evaluated(model_dir: Path, name: str, **overrides: Any) -> dict[str, Any] | None:
        # One evaluation's metrics are kept in OUT/<name>.metrics.json: a re-run (or a run of other methods into the
        # same OUT, e.g. in parallel) only evaluates what is missing.
        saved = out / f"{name}.metrics.json"
        if saved.is_file() and (cached := json.loads(saved.read_text()))["limit"] == settings.limit:
            return cached["metrics"]
        if settings.saved_only:
            missing.append(name)
            return None
        metrics = evaluate_model(model_dir, data_dir, out, log, name=name, limit=settings.limit, **overrides)
        saved.write_text(json.dumps({"limit": settings.limit, "metrics": metrics}, indent=2))
        return metrics

    results: dict[str, dict[str, Any]] = {}
    for method in settings.methods:
        folder, strategy = SWEEP_METHODS[method]
        results[method] = {}
        for rho in settings.ratios:
            if method in TRAINING_FREE and rho == 1.0:
                results[method][str(rho)] = evaluated(models["base"], "dense_2fps", strategy="dense", keep_ratio=1.0)
                continue
            overrides = ({"fps": BASE_FPS * rho, "strategy": "dense", "keep_ratio": 1.0} if strategy is None
                         else {"strategy": strategy, "keep_ratio": rho})
            results[method][str(rho)] = evaluated(models[folder], f"{method}_rho{rho:g}", **overrides)
    if settings.retrain_ratio is not None:
        name = f"groundvts_retrained_rho{settings.retrain_ratio:g}"
        retrained = out / f"token_rho{settings.retrain_ratio:g}"
        if not settings.saved_only:
            retrained = retrain_groundvts(settings.run, out, settings.retrain_ratio)
        results["groundvts_retrained"] = {str(settings.retrain_ratio): evaluated(retrained, name)}
    results = {method: {rho: m for rho, m in rows.items() if m is not None} for method, rows in results.items()}
    report = {"settings": {**asdict(settings), "run": str(settings.run)}, "results": results, "missing": missing}
    (out / "results.json").write_text(json.dumps(report, indent=2))
    (out / "budget_sweep.md").write_text(sweep_table(report) + "\n")
    plot_sweep(report, out / "budget_sweep.png")
    return report


def retrain_groundvts(run: Path, out: Path, keep_ratio: float) -> Path:
    """The run's `token` variant trained again from its base at `keep_ratio` (same settings, data and seed), into
    OUT/token_rho<keep_ratio>; a model already there is reused (delete the folder to train again)."""
    from groundvts.scripts.data.synthetic.benchmark import (
        SyntheticSettings,
        finetune_variant,
        training_dataset,
        video_qa_dataset,
    )

    folder = f"token_rho{keep_ratio:g}"
    if (out / folder / "config.json").is_file():
        return out / folder
    report = json.loads((run / "results.json").read_text())
    settings = SyntheticSettings(**report["settings"])
    data_dir = run / "data"
    base = out / "models" / "base"
    if not base.is_dir():
        refreshed_copy(run / "base", base)
    return finetune_variant(
        "token", base, out, settings, training_dataset(data_dir, settings.seed), {},
        video_qa_dataset(data_dir, settings.seed), keep_ratio=keep_ratio, folder=folder,
    )


def share_of_dense(report: dict[str, Any], method: str, rho: str) -> float | None:
    """The method's mIoU at rho as a percentage of the dense base's (rho = 1 of a training-free method)."""
    dense = next((report["results"][m].get("1.0") for m in TRAINING_FREE if m in report["results"]), None)
    metrics = report["results"][method].get(rho)
    if dense is None or metrics is None or not dense["mIoU"]:
        return None
    return 100 * metrics["mIoU"] / dense["mIoU"]


def sweep_table(report: dict[str, Any]) -> str:
    """Markdown: one row per (rho, method), the metrics and the share of the dense base's mIoU kept."""
    header = ("| rho | method | R1@0.3 | R1@0.5 | R1@0.7 | mIoU | % of dense mIoU | target tokens kept (%) "
              "| video tokens to the LLM per video |")
    lines = [header, "|---" * 9 + "|"]
    ratios = sorted({rho for rows in report["results"].values() for rho in rows}, key=float, reverse=True)
    for rho in ratios:
        for method, rows in report["results"].items():
            if rho not in rows:
                continue
            m, share = rows[rho], share_of_dense(report, method, rho)
            cells = [f"{m[k]:.1f}" for k in ("R1@0.3", "R1@0.5", "R1@0.7", "mIoU")]
            cells += ["-" if share is None else f"{share:.1f}", f"{m['target_tokens_kept']:.1f}",
                      f"{m['kept_tokens_per_video']:.1f}"]
            lines.append(f"| {float(rho):g} | {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_sweep(report: dict[str, Any], path: Path) -> None:
    """mIoU against the video tokens the LLM receives per video, one line per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for method, rows in report["results"].items():
        points = sorted((m["kept_tokens_per_video"], m["mIoU"]) for m in rows.values())
        if points:
            ax.plot(*zip(*points), marker="o", label=method)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("video tokens reaching the LLM per video (mean)")
    ax.set_ylabel("mIoU (synthetic test split)")
    ax.set_title("Accuracy at a token budget (rho = 1, 1/2, 1/4, 1/8)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
