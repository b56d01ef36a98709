"""The upload step that `release` and `push_metric_space` share: after the folder is built, upload it unless
`--dry-run`, and print where it went."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from groundvts.scripts.release.hub import UploadSettings


def upload_unless_dry_run(hub: UploadSettings, upload: Callable[..., str], folder: Path, repo_id: str) -> int:
    """`upload(folder, repo_id, private=..., token=...)` (`release.repo.upload`, `release.metric_space.upload_space`)
    unless `hub.dry_run`; the exit status."""
    if hub.dry_run:
        return 0
    # A failed upload raises UploadError, which run_command maps to exit 1: the folder is fine, a retry may succeed.
    url = upload(folder, repo_id, private=hub.private, token=hub.token)
    print(f"uploaded to {url}")
    return 0
