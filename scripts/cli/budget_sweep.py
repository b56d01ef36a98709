"""Accuracy at a token budget on the synthetic benchmark: GroundVTS against query-agnostic pruning, rho 1 to 1/8.

    python -m groundvts.scripts.cli.budget_sweep RUN --out OUT          # RUN: a finished synthetic-benchmark folder
    python -m groundvts.scripts.cli.budget_sweep RUN --out OUT --retrain-ratio 0.25   # + GroundVTS re-trained there
    python -m groundvts.scripts.cli.budget_sweep RUN --out OUT --methods random --ratios 0.25   # one cell; runs into
    python -m groundvts.scripts.cli.budget_sweep RUN --out OUT --saved-only   # the same OUT share saved evaluations

For rho in 1, 1/2, 1/4, 1/8 it evaluates, on RUN's test split and with the synthetic benchmark's evaluator
(`groundvts infer` + Charades-STA metrics + the share of the target's tokens that reach the LLM):

| method | what it is |
|---|---|
| `dense_fps` | the dense base at rho x 2 fps (fewer frames: the plain answer) |
| `random` | the dense base, a random ceil(rho N) of each video's tokens |
| `temporal_redundancy` | the dense base, EVS-style (tokens that changed most since the previous frame; first frame kept) |
| `centre_distance` | the dense base, VidCom²-style (tokens far from the video and frame means; softmax frame budgets) |
| `parameter_free` | the dense base, top ceil(rho N) by cosine with the mean question embedding |
| `groundvts` | the trained GroundVTS token model (trained at rho 0.5) run at rho without re-training |

RUN is only read (its models are copied under OUT/models with the current code). Writes OUT/results.json,
OUT/budget_sweep.md (also printed) and OUT/budget_sweep.png (mIoU against video tokens per video, a line per method).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from groundvts.scripts.cli._errors import run_command
from groundvts.scripts.cli._parser import CommandParser
from groundvts.scripts.data.synthetic.budget_sweep import BudgetSweepSettings, run_budget_sweep, sweep_table


@dataclass
class SweepFolder:
    """Where the sweep writes (the library takes it apart from the settings)."""

    out: Path = field(metadata={"help": "output folder (model copies, predictions, results.json, table, plot)"})


def build_parser() -> CommandParser:
    return CommandParser([BudgetSweepSettings, SweepFolder], prog="python -m groundvts.scripts.cli.budget_sweep",
                         description=__doc__)


def _run(settings: BudgetSweepSettings, out: Path) -> None:
    report = run_budget_sweep(settings, out, log=print)
    print(sweep_table(report))
    if report["missing"]:
        print(f"not evaluated yet (--saved-only): {', '.join(report['missing'])}")
    print(f"wrote {out / 'results.json'}, {out / 'budget_sweep.md'} and {out / 'budget_sweep.png'}")


def main(argv: list[str] | None = None) -> int:
    parsed = build_parser().parse_command(argv)
    if isinstance(parsed, int):
        return parsed
    settings, folder, _ = parsed
    return run_command(lambda: _run(settings, folder.out))


if __name__ == "__main__":
    sys.exit(main())
