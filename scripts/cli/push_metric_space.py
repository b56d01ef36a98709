"""Build, and upload, the Hub Space of one GroundVTS `evaluate` metric.

`evaluate.load("<namespace>/<name>")` fetches `<name>.py` from the Space `<namespace>/<name>`, so the
Space is named after the metric script. The folder holds that script (copied unchanged), an
`app.py`, a `README.md` whose front matter makes it a Gradio Space tagged `evaluate`/`metric`,
and a `requirements.txt`. `evaluate-cli create` is not used: it is broken on huggingface_hub 2.x.

    python -m groundvts.scripts.cli.push_metric_space moment_retrieval --namespace my-org --dry-run
    python -m groundvts.scripts.cli.push_metric_space moment_retrieval --namespace my-org   # uploads (HF_TOKEN)
"""

from __future__ import annotations

import argparse
import sys

from groundvts.scripts.cli._parser import CommandParser
from groundvts.scripts.cli._upload import upload_unless_dry_run
from groundvts.scripts.release.hub import UploadSettings
from groundvts.scripts.release.metric_space import SpaceSettings, build_space, upload_space


def build_parser() -> CommandParser:
    # No `prog`: argparse names the file, as it did when this tool was scripts/push_metric_space.py. The help texts
    # state their defaults where they matter, as they always did (RawDescriptionHelpFormatter).
    return CommandParser(
        [SpaceSettings, UploadSettings], description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def main(argv: list[str] | None = None) -> int:
    return build_parser().run(argv, lambda settings, hub, _: _push(settings, hub))


def _push(settings: SpaceSettings, hub: UploadSettings) -> int:
    space_dir = build_space(
        settings.metric, settings.namespace, settings.out_dir,
        sdk_version=settings.sdk_version, overwrite=settings.overwrite,
    )
    print(f"built {space_dir}")
    return upload_unless_dry_run(hub, upload_space, space_dir, settings.repo_id)


if __name__ == "__main__":
    sys.exit(main())
