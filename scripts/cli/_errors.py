"""The one place where the project's exceptions become `error: ...` lines and exit codes.

Commands call their library through `run_command`; the libraries raise typed exceptions and never print or exit.
Expected failures (bad input, a missing file, a refused upload) print one line, without a traceback unless
`GROUNDVTS_DEBUG=1`; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import Callable

DEBUG_ENV = "GROUNDVTS_DEBUG"
USAGE_ERROR = 2  # what argparse returns for bad usage; bad input files and values get the same code
REMOTE_ERROR = 1  # the Hub refused or failed an upload: the input may be fine, retrying can help


def exit_code_for(error: BaseException) -> int | None:
    """The exit code of an expected failure, or None for a bug (which must keep its traceback).

    Expected: an error that names its own code (`exit_code`), a Hub HTTP error, a file that is missing, exists or
    cannot be written, an invalid Hub repo id, and a ValueError / OSError raised by groundvts's own code (its input
    checks). The same exception types raised deep inside another library are bugs to report, not input errors.
    """
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError

    if isinstance(getattr(error, "exit_code", None), int):
        return error.exit_code
    if isinstance(error, HfHubHTTPError):  # before OSError: the Hub's HTTP errors subclass it
        return REMOTE_ERROR
    if isinstance(error, (*_FILE_ERRORS, HFValidationError)):
        return USAGE_ERROR
    if isinstance(error, (ValueError, OSError)) and _raised_by_groundvts(error):
        return USAGE_ERROR
    return None


_FILE_ERRORS = (FileNotFoundError, FileExistsError, PermissionError, IsADirectoryError, NotADirectoryError)


def _raised_by_groundvts(error: BaseException) -> bool:
    """Whether the innermost frame of the traceback is groundvts code (the package, or its flat Hub copies)."""
    frame = error.__traceback__
    while frame is not None and frame.tb_next is not None:
        frame = frame.tb_next
    module = frame.tb_frame.f_globals.get("__name__", "") if frame is not None else ""
    return module.startswith(("groundvts.", "transformers_modules."))


def run_command(command: Callable[[], int | None]) -> int:
    """Run a command's library call; map expected failures to `error: <message>` on stderr and an exit code."""
    try:
        return int(command() or 0)
    except Exception as error:  # noqa: BLE001 - mapped below, or re-raised as a bug
        code = exit_code_for(error)
        if code is None:
            raise
        if os.environ.get(DEBUG_ENV) == "1":
            traceback.print_exc()
        print(f"error: {error}", file=sys.stderr)
        return code
