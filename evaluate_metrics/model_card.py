"""Turn metric results into `huggingface_hub` eval results / a `model-index` block for a model card.

Not a metric module: it is imported as `groundvts.evaluate_metrics.model_card` (e.g. by the
release script) and never copied to a metric Space.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from huggingface_hub import EvalResult, ModelCardData
from huggingface_hub.repocard_data import eval_results_to_model_index


@dataclass(frozen=True)
class Benchmark:
    """Defaults for one benchmark's model-index entries."""

    dataset_name: str
    dataset_type: str
    dataset_split: str
    task_name: str
    metrics: tuple[str, ...]
    task_type: str = "video-text-to-text"


_MR_METRICS = ("R1@0.3", "R1@0.5", "R1@0.7", "mIoU")

# dataset_type should be a Hub dataset id where one exists; these slugs are placeholders the
# release script can override (none of these benchmarks has an official Hub copy).
BENCHMARKS: dict[str, Benchmark] = {
    "charades_sta": Benchmark("Charades-STA", "charades_sta", "test", "Video Temporal Grounding", _MR_METRICS),
    "activitynet_captions": Benchmark(
        "ActivityNet Captions", "activitynet_captions", "val_2", "Video Temporal Grounding", _MR_METRICS
    ),
    "qvhighlights": Benchmark(
        "QVHighlights",
        "qvhighlights",
        "val",
        "Moment Retrieval and Highlight Detection",
        (
            "MR-full-R1@0.5",
            "MR-full-R1@0.7",
            "MR-full-mAP",
            "MR-full-mAP@0.5",
            "MR-full-mAP@0.75",
            "HL-min-VeryGood-mAP",
            "HL-min-VeryGood-Hit1",
        ),
    ),
    "nextgqa": Benchmark(
        "NExT-GQA",
        "nextgqa",
        "test",
        "Grounded Video Question Answering",
        ("mIoU", "mIoP", "IoU@0.3", "IoU@0.5", "IoP@0.3", "IoP@0.5", "Acc@QA", "Acc@GQA"),
    ),
}


def _selected_metrics(metrics: Sequence[str] | Mapping[str, str] | None, default: tuple[str, ...]) -> dict[str, str]:
    """Result key -> display name, in order."""
    if metrics is None:
        return {key: key for key in default}
    if isinstance(metrics, Mapping):
        return dict(metrics)
    if isinstance(metrics, str):
        raise TypeError("metrics must be a list of result keys, not a single string")
    return {key: key for key in metrics}


def _metric_value(results: Mapping[str, Any], key: str, decimals: int | None) -> float:
    if key not in results:
        raise ValueError(f"metric {key!r} is not in the results (keys: {sorted(results)})")
    value = results[key]
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"metric {key!r}: value {value!r} is not a finite number")
    return round(float(value), decimals) if decimals is not None else float(value)


def eval_results_from_metrics(
    results: Mapping[str, Any],
    benchmark: str | None = None,
    *,
    metrics: Sequence[str] | Mapping[str, str] | None = None,
    dataset_name: str | None = None,
    dataset_type: str | None = None,
    dataset_split: str | None = None,
    dataset_config: str | None = None,
    dataset_revision: str | None = None,
    task_type: str | None = None,
    task_name: str | None = None,
    metric_args: dict[str, Any] | None = None,
    source_name: str | None = None,
    source_url: str | None = None,
    conventions: Mapping[str, str] | str | None = None,
    decimals: int | None = 2,
) -> list[EvalResult]:
    """One `EvalResult` per selected metric of `results` (a metric's `compute()` output).

    `benchmark` (a key of `BENCHMARKS`) fills the dataset, task and metric defaults; every
    explicit argument overrides it. `metrics` is a list of result keys, or a mapping from result
    key to display name; counts such as `num_unparsed` are never picked by default.
    Each entry's `metric_config` names the convention that produced the number: from `conventions`
    (one name, or result key -> name), else from the results' own `key_conventions` / `convention`.
    """
    spec = BENCHMARKS.get(benchmark) if benchmark is not None else None
    if benchmark is not None and spec is None:
        raise ValueError(f"unknown benchmark {benchmark!r}; known: {sorted(BENCHMARKS)}")
    dataset_name = dataset_name or (spec.dataset_name if spec else None)
    dataset_type = dataset_type or (spec.dataset_type if spec else None)
    task_type = task_type or (spec.task_type if spec else None)
    if not (dataset_name and dataset_type and task_type):
        raise ValueError("give a known benchmark, or dataset_name, dataset_type and task_type")
    if metrics is None and spec is None:
        raise ValueError("give metrics (result keys) when no benchmark is given")
    selected = _selected_metrics(metrics, spec.metrics if spec else ())
    if not selected:
        raise ValueError("no metrics selected")
    return [
        EvalResult(
            task_type=task_type,
            task_name=task_name or (spec.task_name if spec else None),
            dataset_type=dataset_type,
            dataset_name=dataset_name,
            dataset_split=dataset_split or (spec.dataset_split if spec else None),
            dataset_config=dataset_config,
            dataset_revision=dataset_revision,
            metric_type=key,
            metric_name=name,
            metric_value=_metric_value(results, key, decimals),
            metric_config=_convention_of(key, results, conventions),
            metric_args=metric_args,
            source_name=source_name,
            source_url=source_url,
        )
        for key, name in selected.items()
    ]


def _convention_of(key: str, results: Mapping[str, Any], conventions: Mapping[str, str] | str | None) -> str | None:
    """The convention of one number: the given one(s), else the one the metric's output states."""
    if isinstance(conventions, str):
        return conventions
    if conventions is not None:
        return conventions.get(key)
    key_conventions = results.get("key_conventions")
    if isinstance(key_conventions, Mapping) and key in key_conventions:
        return str(key_conventions[key])
    return str(results["convention"]) if isinstance(results.get("convention"), str) else None


def model_index(model_name: str, eval_results: Sequence[EvalResult]) -> list[dict[str, Any]]:
    """The `model-index` block (a list, as in the card's YAML) for these results."""
    if not model_name:
        raise ValueError("model_name is required for a model-index")
    return eval_results_to_model_index(model_name, list(eval_results))


def model_card_data(model_name: str, eval_results: Sequence[EvalResult], **card_fields: Any) -> ModelCardData:
    """`ModelCardData` holding the results (plus any other card fields, e.g. license, base_model)."""
    if not model_name:
        raise ValueError("model_name is required for a model-index")
    return ModelCardData(model_name=model_name, eval_results=list(eval_results), **card_fields)
