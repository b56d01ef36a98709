"""Append-only, resumable JSON-lines files for predictions (one row per query, keyed by `qid`).

Every row is written with one `write` of `json + "\\n"` and flushed, so a killed run leaves at most one
partial last line. Reading tolerates exactly that: an unreadable last line is dropped (its query is redone; a
complete last row that only lacks its newline is kept); a bad line anywhere else is an error. With several
processes each appends to its own part file, `<stem>.rank<i><suffix>`; `merge_files` merges the parts into the
output in annotation order, drops duplicate qids (first kept) and removes the parts.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any


class CorruptPredictionsError(ValueError):
    """A predictions file has an unreadable line before its last one."""


def part_path(output: Path, rank: int) -> Path:
    return output.with_name(f"{output.stem}.rank{rank}{output.suffix}")


def part_paths(output: Path) -> list[Path]:
    """Existing part files of `output` (from this or an earlier run, any number of processes)."""
    return sorted(output.parent.glob(f"{output.stem}.rank*{output.suffix}"))


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        row = json.loads(line)
    except ValueError:
        return None
    return row if isinstance(row, dict) and "qid" in row else None


def read_rows(path: Path) -> tuple[list[dict[str, Any]], int]:
    """(complete rows, byte length of the good prefix). A missing file has no rows."""
    if not path.exists():
        return [], 0
    *body, tail = path.read_bytes().split(b"\n")
    rows, good = [], 0
    for number, line in enumerate(body, start=1):
        if not line.strip():
            good += len(line) + 1
            continue
        row = _parse(line)
        if row is None:
            if number == len(body) and not tail:
                break  # an unreadable final line is a torn write: drop it, its query is redone
            raise CorruptPredictionsError(
                f"{path}: line {number} is not a valid prediction row; delete that line (or the file) and rerun."
            )
        rows.append(row)
        good += len(line) + 1
    # Text after the last newline: a complete row whose newline is missing (written by another tool), or a
    # partial row of a killed run, which is dropped.
    last = _parse(tail) if tail.strip() else None
    if last is not None:
        rows.append(last)
        good += len(tail)
    return rows, good


def repair(path: Path) -> int:
    """Cut a partial last row off `path`; returns the number of bytes removed."""
    if not path.exists():
        return 0
    _, good = read_rows(path)
    extra = path.stat().st_size - good
    with path.open("r+b") as handle:
        if extra:
            handle.truncate(good)
        if good:
            handle.seek(good - 1)
            if handle.read(1) != b"\n":
                handle.write(b"\n")  # the next row must start on its own line
    return extra


class RowWriter:
    """Appends rows to a JSON-lines file, one flushed line each."""

    def __init__(self, path: Path, mode: str = "a") -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._handle = path.open(mode, encoding="utf-8")

    def write(self, row: dict[str, Any]) -> None:
        self._handle.write(json.dumps(row) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> "RowWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def existing_rows(output: Path) -> list[dict[str, Any]]:
    """Rows already made for `output`: its own and its part files' (partial last lines ignored)."""
    rows: list[dict[str, Any]] = []
    for path in [output, *part_paths(output)]:
        rows += read_rows(path)[0]
    return rows


def merge_files(output: Path, parts: Iterable[Path], order: list[str]) -> int:
    """Rewrite `output` with its rows and the parts' rows, one per qid, in `order` (unknown qids last);
    delete the parts. Returns the number of rows written."""
    parts = [p for p in parts if p != output]
    by_qid: dict[str, dict[str, Any]] = {}
    for path in [output, *parts]:
        for row in read_rows(path)[0]:
            by_qid.setdefault(str(row["qid"]), row)
    rank = {qid: i for i, qid in enumerate(order)}
    rows = sorted(by_qid.values(), key=lambda row: rank.get(str(row["qid"]), len(rank)))
    temporary = output.with_name(output.name + ".tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    os.replace(temporary, output)
    for path in parts:
        path.unlink(missing_ok=True)
    return len(rows)


def concat_files(output: Path, parts: Iterable[Path]) -> None:
    """Append the parts' complete rows to `output` (no de-duplication) and delete the parts."""
    parts = [p for p in parts if p != output]
    with RowWriter(output) as writer:
        for path in parts:
            for row in read_rows(path)[0]:
                writer.write(row)
    for path in parts:
        path.unlink(missing_ok=True)
