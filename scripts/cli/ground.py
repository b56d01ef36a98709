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

Python API (`from groundvts.scripts import ground, load_groundvts`): `load_groundvts(path)` -> (model, processor);
`ground(model, processor, video, query)` -> `GroundingResult` (answer text, parsed span, per-token keep mask,
relevance scores and token times).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from groundvts.hub_configs import demo_examples
from groundvts.scripts.cli._parser import CommandParser
from groundvts.scripts.inference.generation import SamplingSettings
from groundvts.scripts.inference.grounding import GROUND_TASKS, describe, ground
from groundvts.scripts.inference.loading import ModelSettings, load_groundvts
from groundvts.scripts.output_paths import check_figure_path


@dataclass
class GroundTarget:
    """What to ground: a video and a sentence, or a bundled example."""

    video: str | None = field(default=None, metadata={"help": "video file"})
    query: str | None = field(default=None, metadata={"help": "the sentence to ground"})
    demo: int | None = field(
        default=None,
        metadata={"nargs": "?", "const": 0, "metavar": "N",
                  "help": "use bundled synthetic example N (default 0): its video, query and true span"},
    )
    task: str = field(
        default="mr", metadata={"choices": GROUND_TASKS, "help": "mr: one span (default); hd: highlights"}
    )


@dataclass
class GroundOutput:
    """What to print and draw besides the span."""

    truth: list[float] | None = field(
        default=None, metadata={"nargs": 2, "metavar": ("START", "END"), "help": "ground-truth span (s)"}
    )
    plot: Path | None = field(default=None, metadata={"help": "write the kept-token density figure (PNG)"})
    spatial_frames: int = field(
        default=0, metadata={"help": "with --plot: also map the retained tokens of N frames"}
    )
    json: bool = field(default=False, metadata={"help": "print the result as JSON"})

    def __post_init__(self) -> None:
        if self.truth is not None and not all(math.isfinite(t) and t >= 0 for t in self.truth):
            raise ValueError(f"--truth START END needs two finite times in seconds (>= 0), got {self.truth}.")
        if self.truth is not None and self.truth[0] > self.truth[1]:
            raise ValueError(f"--truth START END needs START <= END, got {self.truth}.")
        if self.spatial_frames < 0 or (self.spatial_frames and self.plot is None):
            raise ValueError("--spatial-frames N needs N >= 0 and --plot.")


def build_parser() -> CommandParser:
    # RawDescriptionHelpFormatter: the help texts state their defaults where they matter, as they always did.
    return CommandParser(
        [ModelSettings, GroundTarget, SamplingSettings, GroundOutput], prog="groundvts ground", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _run(target: GroundTarget, output: GroundOutput, model_settings: ModelSettings, sampling: SamplingSettings) -> int:
    # With --json, informational lines go to stderr so that stdout is one valid JSON document.
    stream = sys.stderr if output.json else sys.stdout

    def _info(message: str) -> None:
        print(message, file=stream)

    video, query, truth = target.video, target.query, output.truth
    if target.demo is not None:
        examples = demo_examples()
        if target.video is not None or target.query is not None:
            raise ValueError("--demo N brings its own video and query; drop --video / --query, or drop --demo.")
        if not 0 <= target.demo < len(examples):
            raise ValueError(f"--demo N needs 0 <= N < {len(examples)} (bundled examples), got {target.demo}.")
        example = examples[target.demo]
        video, query, truth = str(example.video), example.query, truth or list(example.truth)
        _info(f"demo {target.demo}: {Path(video).name}, query {query!r}")
    if video is None or query is None:
        raise ValueError("pass --video and --query, or --demo for a bundled example.")
    if not Path(video).is_file():
        raise FileNotFoundError(f"video file not found: {video}")
    if output.plot is not None:
        check_figure_path(output.plot, "--plot")
    model_settings = model_settings.or_bundled(_info)
    # This module's `load_groundvts`, looked up now: tests replace it here.
    model, processor = model_settings.load(loader=load_groundvts)
    result = ground(model, processor, video, query, task=target.task, **asdict(sampling))
    truth = tuple(truth) if truth else None
    if output.plot is not None:
        from groundvts.scripts.inference.plots import plot_grounding  # matplotlib only when a figure is asked for

        plot_grounding(result, output.plot, truth=truth, spatial_frames=output.spatial_frames, query=query)
    if output.json:
        print(json.dumps(result.to_dict(truth)))
    else:
        print(describe(result, truth))
        if output.plot is not None:
            print(f"figure: {output.plot}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return build_parser().run(
        argv, lambda model_settings, target, sampling, output, _: _run(target, output, model_settings, sampling)
    )


if __name__ == "__main__":
    sys.exit(main())
