"""Find when a sentence happens in one video with a GroundVTS model (`groundvts ground`).

    groundvts ground --demo --plot density.png     # the bundled GroundVTS-tiny on a bundled synthetic video
    groundvts ground --model ./groundvts-q --video clip.mp4 --query "a person opens the door"
    groundvts ground --model ./groundvts-q --video clip.mp4 --query "..." --truth 6 12 \\
        --plot density.png --spatial-frames 4

Without `--model` the embedded default runs: GroundVTS-tiny, a 0.8 M-parameter model trained from scratch on the
synthetic shapes benchmark (`groundvts synthetic-benchmark`), which only knows coloured shapes; real checkpoints are
named with `--model`. `--demo [N]` takes the video, query and true span of bundled held-out example N (default 0).

Prints the predicted span (`from 6.0s to 12.0s`), with the ground truth and its IoU when `--truth` is given.
`--plot` draws the kept-token density over time (paper Fig. 5); `--spatial-frames N` adds the retained tokens of
N frames (paper Fig. 7). `--task hd` asks for highlights instead of one span.

Python API: `load_groundvts(path)` -> (model, processor); `ground(model, processor, video, query)` ->
`GroundingResult` (answer text, parsed span, per-token keep mask, relevance scores and token times).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from groundvts.hub_configs import demo_examples, tiny_model_dir
from groundvts.modeling.vts import VTS_STRATEGIES
from groundvts.processing.parsing import HighlightPrediction, MomentPrediction, parse_hd_answer, parse_mr_answer
from groundvts.processing.prompts import grounding_eval_prompt, highlight_eval_prompt

from groundvts.scripts.inference.generation import VideoAnswer, configure_vts, generate_answers, load_groundvts, temporal_iou

__all__ = ["GroundingResult", "ground", "load_groundvts", "configure_vts", "main"]


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

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (the per-token tensors as lists)."""
        return {
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


def task_prompt(query: str, task: str) -> str:
    """The evaluation prompt of `task`: "mr" (one span) or "hd" (highlights)."""
    if task == "mr":
        return grounding_eval_prompt(query)
    if task == "hd":
        return highlight_eval_prompt(query)
    raise ValueError(f"`task` must be 'mr' or 'hd', got {task!r}.")


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
        iou = temporal_iou(result.span, truth) if result.span else 0.0
        lines.append(f"truth: from {truth[0]:.1f}s to {truth[1]:.1f}s (IoU {iou:.3f})")
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="groundvts ground", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", default=None, help="GroundVTS model folder or Hub id (default: the bundled GroundVTS-tiny)"
    )
    parser.add_argument("--video", default=None, help="video file")
    parser.add_argument("--query", default=None, help="the sentence to ground")
    parser.add_argument(
        "--demo", type=int, nargs="?", const=0, default=None, metavar="N",
        help="use bundled synthetic example N (default 0): its video, query and true span",
    )
    parser.add_argument("--task", choices=("mr", "hd"), default="mr", help="mr: one span (default); hd: highlights")
    sampling = parser.add_mutually_exclusive_group()
    sampling.add_argument("--fps", type=float, default=None, help="frames per second to sample (processor default)")
    sampling.add_argument(
        "--num-frames", type=int, default=None,
        help="sample this many frames instead of an fps (at most the processor's max_frames; a note says when capped)",
    )
    parser.add_argument("--max-pixels", type=int, default=None, help="pixels per frame at most (processor default)")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--keep-ratio", type=float, default=None, help="override rho, the share of tokens kept")
    parser.add_argument("--strategy", choices=VTS_STRATEGIES, default=None, help="override the VTS strategy")
    parser.add_argument("--truth", type=float, nargs=2, metavar=("START", "END"), help="ground-truth span (s)")
    parser.add_argument("--plot", type=Path, default=None, help="write the kept-token density figure (PNG)")
    parser.add_argument(
        "--spatial-frames", type=int, default=0, help="with --plot: also map the retained tokens of N frames"
    )
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    parser.add_argument("--dtype", default="auto", help="auto, float32, bfloat16 or float16")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    return parser


def parse_args(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace | int:
    """argparse's result, or its exit code (0 for --help, 2 for bad usage) instead of raising SystemExit."""
    try:
        return parser.parse_args(argv)
    except SystemExit as stop:
        return int(stop.code or 0)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(build_parser(), argv)
    if isinstance(args, int):
        return args
    if args.demo is not None:
        examples = demo_examples()
        if not 0 <= args.demo < len(examples):
            print(f"error: --demo N needs 0 <= N < {len(examples)} (bundled examples), got {args.demo}.", file=sys.stderr)
            return 2
        example = examples[args.demo]
        args.video = args.video or str(example.video)
        args.query = args.query or example.query
        args.truth = args.truth or list(example.truth)
        print(f"demo {args.demo}: {Path(args.video).name}, query {args.query!r}")
    if args.video is None or args.query is None:
        print("error: pass --video and --query, or --demo for a bundled example.", file=sys.stderr)
        return 2
    if args.model is None:
        try:
            args.model = str(tiny_model_dir())
        except FileNotFoundError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        print("model: the bundled GroundVTS-tiny (synthetic shapes only; name a real checkpoint with --model)")
    if not Path(args.video).is_file():
        print(f"error: video file not found: {args.video}", file=sys.stderr)
        return 2
    if args.truth and args.truth[0] > args.truth[1]:
        print(f"error: --truth START END needs START <= END, got {args.truth}.", file=sys.stderr)
        return 2
    if args.spatial_frames < 0 or (args.spatial_frames and args.plot is None):
        print("error: --spatial-frames N needs N >= 0 and --plot.", file=sys.stderr)
        return 2
    try:
        model, processor = load_groundvts(args.model, device=args.device, dtype=args.dtype)
        configure_vts(model, keep_ratio=args.keep_ratio, strategy=args.strategy)
        result = ground(
            model, processor, args.video, args.query, task=args.task, fps=args.fps, num_frames=args.num_frames,
            max_new_tokens=args.max_new_tokens, max_pixels=args.max_pixels,
        )
    except (FileNotFoundError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    truth = tuple(args.truth) if args.truth else None
    if args.plot is not None:
        from groundvts.scripts.inference.plots import plot_grounding

        plot_grounding(result, args.plot, truth=truth, spatial_frames=args.spatial_frames, query=args.query)
    if args.json:
        payload = result.to_dict()
        if truth is not None:
            payload["truth"] = list(truth)
            payload["iou"] = temporal_iou(result.span, truth) if result.span else 0.0
        print(json.dumps(payload))
    else:
        print(describe(result, truth))
        if args.plot is not None:
            print(f"figure: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
