"""Build the Grounding-FT training set (stage 3) from benchmark annotation files.

Moment retrieval (MR): one sample per ground-truth window of Charades-STA, QVHighlights and ActivityNet Captions
train queries; highlight detection (HD): one sample per QVHighlights train query, from its relevant clips and
saliency scores. Each sample is `{"messages": [user, assistant], "videos": [path]}` with a paper template drawn
by a seeded `random.Random` (`--seed`, 42 by default), plus the source fields `benchmark`, `task` ("mr"/"hd"),
`qid`, `video_id`, `query`, `duration` and `source` (file:line). The result is a `datasets.Dataset` written with
`save_to_disk` (and, with `--jsonl`, as json lines).

Video paths are `<video folder>/<video_id><--video-ext>`; the files need not exist unless `--check-videos` is
given, which finds each file (any common extension, see `resolve_video`) and skips samples whose video is missing.
Every skipped row (bad annotation, missing video, ...) goes to a `skipped.jsonl` next to the output (or
`--skipped-file`) with its file, line and reason; the first ones are also printed on stderr.

    groundvts build-data --output data/grounding_ft \\
        --charades charades_sta_train.txt --charades-videos videos/charades \\
        --qvhighlights highlight_train_release.jsonl --qvhighlights-videos videos/qvhighlights \\
        --activitynet train.json --activitynet-videos videos/activitynet
"""

from __future__ import annotations

import argparse
import sys

from groundvts.scripts.cli._parser import CommandParser
from groundvts.scripts.data.grounding_ft import (
    GroundingFTInputs,
    GroundingFTOutput,
    GroundingFTReport,
    GroundingFTSettings,
    summarize,
    write_grounding_ft,
)


def build_parser() -> CommandParser:
    # RawDescriptionHelpFormatter: the help texts already state their defaults, as they always did.
    parser = CommandParser(
        [GroundingFTOutput, GroundingFTInputs, GroundingFTSettings], prog="groundvts build-data", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--show-skipped", type=int, default=20, help="skipped rows printed on stderr (default 20)")
    return parser


def _print_report(report: GroundingFTReport, show_skipped: int) -> None:
    skipped, skipped_file, jsonl = report.skipped, report.output.skipped_file, report.output.jsonl
    print(summarize(report.dataset, skipped))
    exported = f"; json lines in {jsonl}" if jsonl else ""
    print(f"Saved to {report.output.output}; skipped rows listed in {skipped_file}{exported}")
    if skipped:
        shown = skipped[: max(show_skipped, 0)]
        for row in shown:
            print(f"skipped {row.file}:{row.line}: {row.reason}", file=sys.stderr)
        if len(skipped) > len(shown):
            print(f"... and {len(skipped) - len(shown):,} more skipped rows (see {skipped_file})", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    return build_parser().run(argv, _build)


def _build(output, inputs, settings, extra) -> None:
    _print_report(write_grounding_ft(inputs, output, settings), extra.show_skipped)


if __name__ == "__main__":
    sys.exit(main())
