"""What `groundvts infer` asks per benchmark, and how the answers become one prediction row per query.

Passes (one generation each, per query):
- `mr`: the official grounding prompt (field notes 3.4), parsed into one span; used by every benchmark.
- `hd` (QVHighlights): the highlight prompt, parsed into levelled windows and a saliency score per 2-s clip.
- `qa` (NExT-GQA): the multiple-choice prompt (`mcq_prompt`), parsed into the chosen option.

Rows are metric-ready: Charades-STA / ActivityNet `window`; QVHighlights the moment_detr submission fields
`pred_relevant_windows` `[[s, e, score]]` and `pred_saliency_scores`; NExT-GQA `window`, `answer_index` (the
option the metric compares, as eval_ground.py does) and `answer` (its text). An unparsed answer gives `window` None / no windows / no saliency scores (`[]`) /
`answer` None, which the metrics score as failures. Every row says whether a span was `clamped` to the video or
`swapped` (with the moment answer's own `raw_window` when so).

`BenchmarkData` names a benchmark and its annotation files; `groundvts infer` and `groundvts evaluate` take their
`--benchmark --annotations --duration-file --grounding-file` flags from it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from groundvts.processing.annotations import BENCHMARKS, LoadedAnnotations, load_annotations
from groundvts.processing.parsing import HighlightPrediction, MomentPrediction, parse_hd_answer, parse_mr_answer
from groundvts.processing.prompts import task_prompt

PASSES: dict[str, tuple[str, ...]] = {
    "charades_sta": ("mr",),
    "activitynet_captions": ("mr",),
    "qvhighlights": ("mr", "hd"),
    "nextgqa": ("mr", "qa"),
}
TASK_CHOICES = ("all", "mr", "hd", "qa")


@dataclass
class BenchmarkData:
    """A benchmark and the files its queries are read from (see `processing.annotations.load_annotations`)."""

    benchmark: str = field(metadata={"choices": BENCHMARKS})
    annotations: Path = field(metadata={"help": "the benchmark's annotation file (evaluate: the one given to infer)"})
    duration_file: Path | None = field(default=None, metadata={"help": "Charades-STA: Charades_v1_<split>.csv"})
    grounding_file: Path | None = field(default=None, metadata={"help": "NExT-GQA: gsub_<split>.json"})

    def __post_init__(self) -> None:
        if self.benchmark not in BENCHMARKS:
            raise ValueError(f"Unknown benchmark {self.benchmark!r}; choose one of {', '.join(BENCHMARKS)}.")
        self.annotations = Path(self.annotations)
        self.duration_file = Path(self.duration_file) if self.duration_file is not None else None
        self.grounding_file = Path(self.grounding_file) if self.grounding_file is not None else None

    def load(self) -> LoadedAnnotations:
        """The usable records and the skipped rows of the annotation file."""
        return load_annotations(
            self.benchmark, self.annotations, duration_file=self.duration_file, grounding_file=self.grounding_file
        )


_LETTER_IN_PARENS = re.compile(r"\(([A-Z])\)")
_LEADING_LETTER = re.compile(r"^\s*(?:option\s+|answer\s*:?\s*)?\(?([A-Z])(?:[).:,\s]|$)", re.IGNORECASE)
_NAMED_LETTER = re.compile(r"\b(?:option|answer(?:\s+is)?|choice)\s*:?\s*\(?([A-E])\b", re.IGNORECASE)


def passes_for(benchmark: str, task: str = "all") -> tuple[str, ...]:
    """The passes of `benchmark` that `task` selects ("all" = every pass)."""
    available = PASSES[benchmark]
    if task == "all":
        return available
    if task not in available:
        raise ValueError(
            f"--task {task} does not apply to {benchmark}; its passes are {', '.join(available)} (or all)."
        )
    return (task,)


def pass_prompt(record: Any, pass_name: str) -> str:
    """The prompt text of one pass for one annotation record."""
    if pass_name not in ("mr", "hd", "qa"):
        raise ValueError(f"Unknown pass {pass_name!r}.")
    if pass_name == "qa" and not record.options:  # say which query lacks them
        raise ValueError(f"qid {record.qid}: the qa pass needs answer options (NExT-GQA csv a0..a4).")
    return task_prompt(record.query, pass_name, record.options if pass_name == "qa" else None)


def parse_mcq_answer(text: str | None, options: Sequence[str]) -> int | None:
    """Index of the option an answer picks: `(B)`, `B)`, `B.`, `Option B`, `The answer is B`, or the option's
    own text (the longest option found in the answer); None when it names none."""
    if not text or not text.strip():
        return None
    valid = {chr(ord("A") + i): i for i, option in enumerate(options) if option}
    for pattern in (_LETTER_IN_PARENS, _LEADING_LETTER, _NAMED_LETTER):
        match = pattern.search(text) if pattern is not _LEADING_LETTER else pattern.match(text)
        if match and match.group(1).upper() in valid:
            return valid[match.group(1).upper()]
    lower = text.lower()
    found = [(len(option), i) for i, option in enumerate(options) if option and option.lower() in lower]
    return max(found)[1] if found else None


def _mr_window(prediction: MomentPrediction | None) -> list[float] | None:
    return [prediction.start, prediction.end] if prediction else None


def _saliency(record: Any, prediction: HighlightPrediction | None) -> tuple[list[int], list[list[float]]]:
    """(score per 2-s clip, levelled windows `[s, e, level score]`); both empty when unparsed: no scores is "no
    prediction", which the metric scores without credit (all zeros would be a tied ranking that can earn some)."""
    if prediction is None:
        return [], []
    return list(prediction.saliency_scores), prediction.relevant_windows


def span_flags(predictions: Sequence[MomentPrediction | HighlightPrediction | None]) -> dict[str, Any]:
    """Row fields saying that a parsed span was changed: `clamped` (it reached outside [0, duration], possibly
    leaving a zero-length span) and `swapped` (end given before start), over every pass of the row; `raw_window`
    keeps the moment answer's own numbers when it was changed."""
    parsed = [p for p in predictions if p is not None]
    flags: dict[str, Any] = {"clamped": any(p.clamped for p in parsed), "swapped": any(p.swapped for p in parsed)}
    for prediction in parsed:
        if isinstance(prediction, MomentPrediction) and (prediction.clamped or prediction.swapped):
            flags["raw_window"] = [prediction.raw_start, prediction.raw_end]
    return flags


def merge_row(benchmark: str, record: Any, answers: Mapping[str, str]) -> dict[str, Any]:
    """One prediction row from the answers of every pass that ran (`answers`: pass -> generated text)."""
    row: dict[str, Any] = {
        "qid": record.qid,
        "video_id": record.video_id,
        "query": record.query,
        "duration": record.duration,
        "benchmark": benchmark,
        "passes": list(answers),
        "answers": dict(answers),
    }
    moment = parse_mr_answer(answers["mr"], record.duration) if "mr" in answers else None
    highlights = parse_hd_answer(answers["hd"], record.duration) if "hd" in answers else None
    row.update(span_flags([moment, highlights]))
    if benchmark == "qvhighlights":
        row["vid"] = record.video_id
        if "mr" in answers:
            window = _mr_window(moment)
            # The MR answer is one span; it ranks first with score 1 (moment_detr format).
            row["pred_relevant_windows"] = [[window[0], window[1], 1.0]] if window else []
        if "hd" in answers:
            row["pred_saliency_scores"], row["hd_windows"] = _saliency(record, highlights)
        return row
    if "mr" in answers:
        row["window"] = _mr_window(moment)
    if benchmark == "nextgqa" and "qa" in answers:
        index = parse_mcq_answer(answers["qa"], record.options or ())
        row["answer_index"] = index
        row["answer"] = record.options[index] if index is not None else None
    return row
