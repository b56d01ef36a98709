"""Ground one sentence in one video: the answer, its parsed span and what VTS kept (`GroundingResult`).

`ground(model, processor, video, query)` runs one greedy `generate` whose prefill also yields the VTS selection;
`describe(result, truth)` gives the lines `groundvts ground` prints (span, truth and IoU, notes, token budget).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from groundvts.processing.parsing import (
    HighlightPrediction,
    MomentPrediction,
    parse_hd_answer,
    parse_mr_answer,
    temporal_iou,
)
from groundvts.processing.prompts import task_prompt

from groundvts.scripts.inference.generation import VideoAnswer, generate_answers

__all__ = ["GROUND_TASKS", "GroundingResult", "result_from_answer", "ground", "describe", "span_notes"]

# What `ground` can ask about one video: one span ("mr") or highlights ("hd"); "qa" needs a benchmark's options.
GROUND_TASKS = ("mr", "hd")


@dataclass
class GroundingResult:
    """What `ground` found: the answer, its parsed span and what VTS kept of the video.

    keep / scores / token_times have one row per visual token of the video, in the model's token order.
    Tokens are grouped in temporal units (`grid` = (units, rows, cols)): 2-frame patches for Qwen2.5-VL,
    single frames for InternVL. `frame_times` are the true times of the sampled frames (presentation timestamps
    for variable-rate files). `clamped` / `swapped` say that the answer's span was changed to fit the video;
    `frames_capped` that the processor's max_frames made the sampling sparser than asked.
    """

    text: str
    span: tuple[float, float] | None
    prediction: MomentPrediction | HighlightPrediction | None
    task: str
    duration: float
    keep: torch.Tensor  # (N,) bool
    scores: torch.Tensor | None  # (N,) relevance w, None for strategies without scores
    token_times: torch.Tensor  # (N, 2) start and end second each token covers
    grid: tuple[int, int, int]
    unit_times: torch.Tensor  # (units, 2)
    unit_frame_indices: list[int]  # a source frame index shown for each unit
    video: str
    keep_ratio: float
    strategy: str
    frame_times: list[float] = field(default_factory=list)  # true seconds of every sampled frame
    frames_capped: bool = False  # the processor's max_frames made the sampling sparser than asked
    requested_frames: float | None = None  # frames the fps / num_frames asked for

    @property
    def clamped(self) -> bool:
        """The answer reached outside [0, duration] and was clamped (possibly to a zero-length span)."""
        return bool(self.prediction is not None and self.prediction.clamped)

    @property
    def swapped(self) -> bool:
        """The answer gave the end before the start."""
        return bool(self.prediction is not None and self.prediction.swapped)

    @property
    def raw_span(self) -> tuple[float, float] | None:
        """The span as the answer stated it, before sorting and clamping (moment retrieval only)."""
        if isinstance(self.prediction, MomentPrediction):
            return (self.prediction.raw_start, self.prediction.raw_end)
        return None

    @property
    def kept_per_unit(self) -> torch.Tensor:
        """Fraction of each temporal unit's tokens that VTS kept (paper Fig. 5)."""
        return self.keep.view(self.grid[0], -1).float().mean(1)

    def iou(self, truth: tuple[float, float]) -> float:
        """Temporal IoU of the span with `truth` (0 without a span)."""
        return temporal_iou(self.span, truth) if self.span else 0.0

    def to_dict(self, truth: tuple[float, float] | None = None) -> dict[str, Any]:
        """JSON-ready summary (the per-token tensors as lists); with `truth`, also the truth and its IoU."""
        payload = {
            "text": self.text,
            "span": list(self.span) if self.span else None,
            "task": self.task,
            "duration": self.duration,
            "video": self.video,
            "keep_ratio": self.keep_ratio,
            "strategy": self.strategy,
            "num_tokens": int(self.keep.numel()),
            "num_kept": int(self.keep.sum()),
            "grid": list(self.grid),
            "unit_times": self.unit_times.tolist(),
            "kept_per_unit": [round(v, 6) for v in self.kept_per_unit.tolist()],
            "saliency_scores": list(self.prediction.saliency_scores)
            if isinstance(self.prediction, HighlightPrediction)
            else None,
            "clamped": self.clamped,
            "swapped": self.swapped,
            "raw_span": list(self.raw_span) if self.raw_span else None,
            "frame_times": [round(t, 6) for t in self.frame_times],
            "frames_capped": self.frames_capped,
            "requested_frames": self.requested_frames,
        }
        if truth is not None:
            payload.update(truth=list(truth), iou=self.iou(truth))
        return payload


def result_from_answer(answer: VideoAnswer, task: str, duration: float | None = None) -> GroundingResult:
    """Parse an answer for `task`; `duration` (e.g. from the annotation) overrides the video's own."""
    duration = duration or answer.duration
    prediction: MomentPrediction | HighlightPrediction | None
    if task == "mr":
        prediction = parse_mr_answer(answer.text, duration)
        span = prediction.window if prediction else None
    else:
        prediction = parse_hd_answer(answer.text, duration)
        span = (prediction.windows[0].start, prediction.windows[0].end) if prediction else None
    return GroundingResult(
        text=answer.text,
        span=span,
        prediction=prediction,
        task=task,
        duration=duration,
        keep=answer.keep,
        scores=answer.scores,
        token_times=answer.token_times,
        grid=answer.grid,
        unit_times=answer.unit_times,
        unit_frame_indices=answer.unit_frame_indices,
        video=answer.video,
        keep_ratio=answer.keep_ratio,
        strategy=answer.strategy,
        frame_times=answer.frame_times,
        frames_capped=answer.frames_capped,
        requested_frames=answer.requested_frames,
    )


def ground(
    model: Any,
    processor: Any,
    video: str | Path,
    query: str,
    *,
    task: str = "mr",
    fps: float | None = None,
    num_frames: int | None = None,
    max_new_tokens: int = 64,
    max_pixels: int | None = None,
) -> GroundingResult:
    """Ground `query` in `video` (a file path): one greedy `generate`, whose prefill also yields the VTS selection.

    The selection is read from the prefill forward inside `generate` (no second pass). `fps` / `num_frames`
    override the processor's sampling (the true source fps is read from the file).
    """
    if task not in GROUND_TASKS:
        raise ValueError(f"`task` must be 'mr' or 'hd', got {task!r}.")
    prompt = task_prompt(query, task)
    answer = generate_answers(
        model, processor, [str(video)], [prompt],
        fps=fps, num_frames=num_frames, max_new_tokens=max_new_tokens, max_pixels=max_pixels,
    )[0]
    return result_from_answer(answer, task)


def describe(result: GroundingResult, truth: tuple[float, float] | None = None) -> str:
    """Human-readable lines: the span (or why there is none), the truth and IoU, the token budget."""
    lines = [f"answer: {result.text.strip()!r}"]
    if result.span is None:
        lines.append("span: none (no time span found in the answer)")
    else:
        start, end = result.span
        lines.append(f"span: from {start:.1f}s to {end:.1f}s")
    if isinstance(result.prediction, HighlightPrediction):
        levels = ", ".join(f"{w.level} {w.start:.1f}-{w.end:.1f}s" for w in result.prediction.windows)
        lines.append(f"highlights: {levels}")
    lines += span_notes(result)
    if truth is not None:
        lines.append(f"truth: from {truth[0]:.1f}s to {truth[1]:.1f}s (IoU {result.iou(truth):.3f})")
    kept, total = int(result.keep.sum()), result.keep.numel()
    lines.append(
        f"video: {result.duration:.1f}s, {total} visual tokens, kept {kept} ({kept / total:.0%}, "
        f"strategy {result.strategy}, rho {result.keep_ratio:g})"
    )
    return "\n".join(lines)


def span_notes(result: GroundingResult) -> list[str]:
    """`note:` lines for what changed the answer's span or limited the video: clamping, swapping, the frame cap."""
    notes = []
    if result.clamped:
        said = f" (it said {result.raw_span[0]:g}s to {result.raw_span[1]:g}s)" if result.raw_span else ""
        notes.append(
            f"note: the answer reached outside the video (0-{result.duration:.2f}s){said}; the span was clamped to it"
        )
    if result.swapped:
        notes.append("note: the answer gave the end before the start; the span was swapped")
    if result.frames_capped:
        asked = f"{result.requested_frames:g}" if result.requested_frames is not None else "more"
        notes.append(
            f"note: sampled {len(result.frame_times)} frames, fewer than the {asked} asked (the processor's "
            "max_frames cap); timestamps are coarser"
        )
    return notes
