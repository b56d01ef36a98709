"""Fields of the synthetic benchmark's settings dataclasses, each of them a `synthetic-benchmark` flag."""

from __future__ import annotations

from dataclasses import field
from typing import Any


def knob(default: Any, text: str) -> Any:
    """A settings field whose `--help` line shows its default (argparse fills in `%(default)s`)."""
    return field(default=default, metadata={"help": f"{text} (default %(default)s)"})
