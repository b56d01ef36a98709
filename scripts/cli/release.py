"""Assemble a Hugging Face Hub model repo from a GroundVTS checkpoint folder, and upload it.

The folder gets the weights (safetensors), the flat model and processor code with `auto_map` (loadable with
`trust_remote_code=True`, `AutoModel` included), the processor with the paper's video settings, a greedy
`generation_config.json`, and a model card (README.md) whose `model-index` holds the evaluation results.

    groundvts release CHECKPOINT_DIR --repo-id org/groundvts-q-7b --results results.json --dry-run
    groundvts release CHECKPOINT_DIR --repo-id org/groundvts-q-7b --results results.json \\
        --dataset charades_sta=org/charades-sta --split activitynet_captions=val_2

CHECKPOINT_DIR is a trained or converted GroundVTS checkpoint (config model_type `groundvts_qwen2_5_vl` or
`groundvts_internvl`); its processor files are used unless `--processor` names another folder. A `--results` file
(repeatable) is either the JSON `groundvts evaluate --output` writes for one benchmark, or a mapping from benchmarks
(charades_sta, activitynet_captions, qvhighlights, nextgqa) to their metrics, e.g.
`{"charades_sta": {"R1@0.3": 70.5, "R1@0.5": 58.2, "R1@0.7": 35.1, "mIoU": 50.1}}`. The card's model-index gets each
benchmark's standard metrics (`--all-metrics`: all but counts) on the split `groundvts evaluate` recorded, else
the benchmark's standard split (`--split` overrides both). Video settings default to the paper's: GroundVTS-Q samples 2 fps, at
most 128 frames, at most 16384 pixels per frame; GroundVTS-I takes 16 frames at the vision tower's input
size (448 px for InternVL3.5).
Without `--dry-run` the folder is uploaded with `HfApi().create_repo` + `upload_folder`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from groundvts.scripts.cli._parser import CommandParser
from groundvts.scripts.cli._upload import upload_unless_dry_run
from groundvts.scripts.release.hub import UploadSettings
from groundvts.scripts.release.repo import ReleaseResults, ReleaseSettings, VideoOverrides, build_release, upload


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key or not value:
        raise argparse.ArgumentTypeError(f"expected BENCHMARK=VALUE, got {text!r}")
    return key, value


def build_parser() -> CommandParser:
    # RawDescriptionHelpFormatter: the help texts state their defaults where they matter, as they always did.
    parser = CommandParser(
        [ReleaseSettings, VideoOverrides, UploadSettings], prog="groundvts release", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # Repeatable flags (a dataclass field would take one list per flag); they become `ReleaseResults`.
    parser.add_argument("--results", type=Path, action="append", default=[], metavar="JSON",
                        help="results file (repeatable): benchmark -> {metric: value}, or a `groundvts evaluate "
                             "--output` file")
    parser.add_argument("--dataset", type=_key_value, action="append", default=[], metavar="BENCHMARK=HUB_ID",
                        help="Hub dataset id of a benchmark for the model-index (repeatable)")
    parser.add_argument("--split", type=_key_value, action="append", default=[], metavar="BENCHMARK=SPLIT",
                        help="evaluated split of a benchmark (repeatable; defaults: the standard test splits)")
    return parser


def main(argv: list[str] | None = None) -> int:
    return build_parser().run(argv, _release)


def _release(settings: ReleaseSettings, video: VideoOverrides, hub: UploadSettings, extra: argparse.Namespace) -> int:
    results = ReleaseResults(extra.results, dict(extra.dataset), dict(extra.split))
    out_dir = build_release(settings, video, results)
    print(f"built {out_dir}")
    return upload_unless_dry_run(hub, upload, out_dir, settings.repo_id)


if __name__ == "__main__":
    sys.exit(main())
