"""The paper's token-selection comparison (Table 5) at small scale, on the synthetic benchmark, end to end on CPU.

    groundvts synthetic-benchmark --out runs/synthetic                      # full run (see the defaults)
    groundvts synthetic-benchmark --out runs/q3 --backbone qwen3_vl --variants token   # GroundVTS-Q3's token row
    groundvts synthetic-benchmark --out runs/tiny --num-train 8 --num-test 4 --tower-steps 2 --base-steps 2 \\
        --selection-steps 1 --joint-steps 1 --finetune-steps 1                 # a smoke test

Every step uses the same code paths as the real benchmarks:
1. `make-synthetic` writes videos and Charades-STA-format annotations (train / val / test);
2. the Grounding-FT builder turns the train split into conversations, asked with the evaluation prompt, so that
   `groundvts infer` asks what the model was trained on;
3. a tiny model of the `--backbone` architecture (Qwen2.5-VL: GroundVTS-Q, the default; Qwen3-VL: GroundVTS-Q3,
   with its `<t seconds>` text per temporal patch, DeepStack and 56-px frames resized to 64 px for its 16-px
   patches, so both see 2 x 2 tokens per temporal patch) is trained from scratch, dense at 2 fps (the "base"):
   first its vision tower alone on a pre-task whose labels come from the generator (`synthetic/tower.py`: "is the
   target visible in this token's cell?"), then stage 0 trains the language model with the tower frozen;
4. each variant starts from the base and runs the three GroundVTS stages: its selection (stage 1, VTS only,
   learned variants), LLM LoRA + VTS + projector on video QA about the same videos (stage 2; the paper uses
   LLaVA-Video-178K), then on grounding (stage 3, continuing stage 2's adapter); it is merged and evaluated with
   `groundvts infer` + `groundvts evaluate` on the test split, and probed for the share of the target's tokens
   that reach the language model (`tower.target_token_recall`).

Variants, all at the same language-model token budget (1 fps dense = 2 fps at ρ = 0.5):

| variant | fps | selection |
|---|---|---|
| `uniform_1fps` | 1 | dense (the base fine-tuned at half the frame rate) |
| `random` | 2 | a random half of the tokens |
| `frame` | 2 | VTS, whole frames (frame-level selection) |
| `token` | 2 | VTS, tokens (GroundVTS) |
| `token_no_pe` | 2 | VTS, tokens, kept tokens renumbered 0, 1, 2, ... (the "w/o PE" ablation) |

With `--grpo-steps N`, the token variant then runs stage 4 (GRPO with the temporal-IoU and format rewards, N steps)
and is reported as `token_grpo`; `--only-grpo` adds that step to a finished run folder.

A `mean_window` row predicts the mean training window (as fractions of the duration) for every test video: the
trivial baseline. Results go to OUT/results.json and a markdown table on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from groundvts.scripts.cli._errors import run_command
from groundvts.scripts.cli._parser import CommandParser
from groundvts.scripts.cli._scene_args import add_scene_arguments, scene_defaults, scene_kwargs
from groundvts.scripts.data.synthetic.scenes import BENCHMARK_SCENES
from groundvts.scripts.data.synthetic.benchmark import (
    VARIANTS,
    SyntheticBudget,
    SyntheticSettings,
    evaluate_model,
    results_table,
    run,
)
from groundvts.scripts.data.synthetic.grpo import add_grpo_result


@dataclass
class RunFolder:
    """Where the run writes everything (the library takes it apart from the settings)."""

    out: Path = field(metadata={"help": "run folder (data, models, predictions, results.json)"})
    only_grpo: bool = field(default=False, metadata={
        "help": "reuse OUT's data and stage-3 token model: run only stage 4 (--grpo-steps) and add it to results.json"})


def build_parser() -> CommandParser:
    # SyntheticBudget, not SyntheticSettings: the scenes are the two-value options below, not one `--generator`.
    parser = CommandParser(
        [RunFolder, SyntheticBudget], prog="groundvts synthetic-benchmark", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_scene_arguments(parser.add_argument_group("scenes (as `groundvts make-synthetic`; benchmark defaults)"))
    parser.set_defaults(**scene_defaults(BENCHMARK_SCENES))
    return parser


def parse_settings(argv: list[str] | None = None) -> tuple[Path, SyntheticSettings, bool] | int:
    """The run folder, settings and `--only-grpo` from the command line (scene options default to
    `BENCHMARK_SCENES`), or the exit code of a usage error or `--help`."""
    parsed = build_parser().parse_command(argv)
    if isinstance(parsed, int):
        return parsed
    folder, budget, scenes = parsed
    return folder.out, SyntheticSettings(**vars(budget), generator=scene_kwargs(scenes)), folder.only_grpo


def _run(out: Path, settings: SyntheticSettings, only_grpo: bool = False) -> None:
    if only_grpo:
        if not settings.grpo_steps:
            raise ValueError("--only-grpo needs --grpo-steps N (N >= 1).")
        report = add_grpo_result(out, settings, settings.seed, VARIANTS["token"]["fps"],
                                 lambda model: evaluate_model(model, out / "data", out, print))
        print(results_table(report))
        print(f"wrote {out / 'results.json'}")
        return
    report = run(out, settings, log=print)  # each model's inference summary, as `groundvts infer` prints it
    print(results_table(report))
    print(f"timings (s): {json.dumps({k: round(v, 1) for k, v in report['timings_s'].items()})}")
    print(f"wrote {out / 'results.json'}")


def main(argv: list[str] | None = None) -> int:
    parsed = parse_settings(argv)
    if isinstance(parsed, int):
        return parsed
    return run_command(lambda: _run(*parsed))


if __name__ == "__main__":
    sys.exit(main())
