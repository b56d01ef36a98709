"""Checks on where a command will write, made before any work so that a bad location costs nothing.

Each check raises a `PermissionError`, `FileExistsError` or `ValueError` whose message names the flag, the path and
the fix; `scripts/cli/_errors.py` turns them into one-line errors. `DiskFullError` is what a write that runs out of
space becomes: it says what was kept and how to go on.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

__all__ = [
    "DiskFullError", "check_writable_file", "check_writable_folder", "check_new_folder", "check_figure_path",
    "disk_full_error",
]


class DiskFullError(OSError):
    """A write failed for lack of space (ENOSPC / EDQUOT); the message says what was kept and how to resume."""


def _nearest_existing(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _is_read_only(folder: Path) -> bool:
    # `os.access` answers True for root everywhere, so a folder with every write bit cleared (chmod a-w) also counts:
    # its owner marked it read-only, and writing there anyway would surprise them.
    mode = folder.stat().st_mode
    return not os.access(folder, os.W_OK | os.X_OK) or not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)


def check_writable_folder(folder: str | Path, flag: str) -> Path:
    """`folder` exists as a writable folder or can be created (its nearest existing parent is a writable folder)."""
    folder = Path(folder)
    existing = _nearest_existing(folder)
    if not existing.is_dir():
        raise NotADirectoryError(f"{flag} {folder}: {existing} is a file, not a folder; choose another location.")
    if _is_read_only(existing):
        raise PermissionError(
            f"{flag} {folder}: {existing} is read-only; choose a writable location or make it writable first."
        )
    return folder


def check_writable_file(path: str | Path, flag: str) -> Path:
    """`path` can be written (created or appended to) before any work starts."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{flag} {path} is a folder; give a file name.")
    if path.exists() and not os.access(path, os.W_OK):
        raise PermissionError(f"{flag} {path} is read-only; choose another file or make it writable.")
    check_writable_folder(path.parent, flag)
    return path


def check_new_folder(folder: str | Path, flag: str, overwrite: bool = False) -> Path:
    """`folder` does not exist yet, or is empty, or `overwrite` allows replacing it; and it can be written."""
    folder = Path(folder)
    if folder.exists() and not overwrite and (not folder.is_dir() or any(folder.iterdir())):
        raise FileExistsError(f"{flag} {folder} already exists; choose a new folder or pass --overwrite to replace it.")
    return check_writable_folder(folder, flag)


def figure_formats() -> dict[str, str]:
    """File extensions matplotlib can write (without the dot) -> their description."""
    from matplotlib.figure import Figure

    return Figure().canvas.get_supported_filetypes()


def check_figure_path(path: str | Path, flag: str) -> Path:
    """A figure path whose extension matplotlib can write, in a writable folder."""
    path = Path(path)
    formats = figure_formats()
    extension = path.suffix.lower().lstrip(".")
    if extension not in formats:
        raise ValueError(
            f"{flag} {path}: cannot write a figure as {path.suffix or 'a file without extension'!r}; use one of "
            f"{', '.join('.' + name for name in sorted(formats))} (e.g. {path.with_suffix('.png').name})."
        )
    return check_writable_file(path, flag)


def disk_full_error(error: OSError, path: Path, kept: str, resume: str) -> OSError:
    """`error` as a `DiskFullError` naming `path`, what was `kept` and how to `resume`, when it is a full disk; else
    `error` unchanged."""
    if error.errno not in (errno.ENOSPC, errno.EDQUOT):
        return error
    return DiskFullError(error.errno, f"no space left on the device while writing {path}: {kept}. {resume}")
