"""Uploading a built release or Space folder to the Hub: the options an upload takes, and the error it raises.

Kept apart from `repo.py` and `metric_space.py` so that both share it without importing each other (`repo.py`
loads the model and processor code; `metric_space.py` must stay light).
"""

from __future__ import annotations

from dataclasses import dataclass, field


class UploadError(Exception):
    """The Hub refused or failed an upload (HTTP error, no network, unreadable folder). Exit status 1, not 2: the
    folder was built fine, and retrying may help."""

    exit_code = 1


@dataclass
class UploadSettings:
    """Whether and how a built folder goes to the Hub."""

    dry_run: bool = field(default=False, metadata={"help": "build the folder only; no upload"})
    private: bool = field(default=False, metadata={"help": "create the repo as private"})
    token: str | None = field(default=None, metadata={"help": "Hub token (default: HF_TOKEN / the saved login)"})
