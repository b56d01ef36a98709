"""Readers for the temporal-grounding benchmark annotation files, with every bad row reported.

`load_annotations(benchmark, file)` turns one annotation file into `GroundingAnnotation` records. Each source row
(a text line, a jsonl line, a csv row, a json `(video, sentence)` entry) becomes either one record or one
`SkippedRow` naming the file, the line (or json locator) and why; nothing is dropped silently and a bad row never
aborts the load. Only whole-file problems (missing file, invalid JSON document, missing csv columns) raise.

Formats (see each `shared/data/*/README.md`):

- `charades_sta`: Charades-STA txt `VID START END##SENTENCE`, durations from the Charades csv `length` column
  (`duration_file`; by default the sibling `Charades_v1_{train|test}.csv` picked by the txt's name). Also the
  lighthouse moment_detr-style `charades_{train,test}_release.jsonl` (any `.jsonl` file), which carries its own
  durations and qids. Txt qids are `f"{vid}_{k}"`, k = the 0-based position of the line among that video's
  parseable lines.
- `activitynet_captions`: `{vid: {duration, timestamps, sentences}}` (train / val_1 / val_2); qid `f"{vid}_{i}"`
  with i the sentence index; source `path:VID#i`. Leading spaces of the sentences are stripped.
- `qvhighlights`: moment_detr jsonl; train/val/test_with_gt carry windows, `relevant_clip_ids` and
  `saliency_scores`; `highlight_test_release.jsonl` has none (windows `()`, clip ids / scores None).
- `nextgqa`: NExT-GQA csv (`video_id,...,question,answer,qid,type,a0..a4`) plus spans and durations from
  `gsub_{split}.json` (`grounding_file`; by default the sibling named after the csv). qid is
  `f"{video_id}_{qid}"` (NExT-GQA qids are per video). `answer_index` is the position of the answer text among
  a0..a4; one test row lists the answer twice (video 3842638015, qid 4: a3 == a4 == "happy"), the first match is
  used. `video_id` stays the NExT-QA id (as in gsub and the metric); `resolve_video` also looks one folder level
  down, which finds NExT-QA's `NExTVideo/<folder>/<id>.mp4` layout without `map_vid_vidorID.json`.

Window rules, for every benchmark: a window with end < start is skipped ("reversed window"; not swapped, the
intended order is unknown); a start at or past the duration is skipped. Boundaries past `[0, duration]` by at most
`boundary_tolerance` seconds (default `BOUNDARY_TOLERANCE_S` = 2.0) are clamped to it and listed in
`LoadedAnnotations.clamped`; further out the row is skipped. The tolerance covers what the real files contain:
Charades-STA ends run past the csv length by up to 1.54 s (562 of 3,720 test and 1,805 train queries; lighthouse
clamps them the same way), ActivityNet ends by up to 0.01 s, NExT-GQA starts of -0.1/-0.2 s (36 test segments)
and ends up to 0.5 s past gsub's integer duration (3 val segments). Zero-length windows are kept (2 in ANet train).
A row with several windows is skipped whole if any window is bad. `duration` is never None here: every benchmark
provides one, and a row without one is skipped ("missing duration").
"""

from __future__ import annotations

import csv
import glob
import io
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


BENCHMARKS: tuple[str, ...] = ("charades_sta", "activitynet_captions", "qvhighlights", "nextgqa")
VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".mkv", ".webm", ".avi", ".mov")
# Largest overshoot of [0, duration] that is clamped rather than skipped (see the module docstring).
BOUNDARY_TOLERANCE_S = 2.0

_CHARADES_LINE = re.compile(r"^(\S+)\s+(\S+)\s+(\S+)\s*##(.*)$")
_NEXTGQA_COLUMNS = ("video_id", "question", "answer", "qid", "type", "a0", "a1", "a2", "a3", "a4")


@dataclass(frozen=True)
class GroundingAnnotation:
    """One query of a grounding benchmark with its ground truth."""

    benchmark: str
    qid: str
    video_id: str
    query: str
    duration: float | None
    windows: tuple[tuple[float, float], ...]
    source: str
    relevant_clip_ids: tuple[int, ...] | None = None
    saliency_scores: tuple[tuple[int, ...], ...] | None = None
    options: tuple[str, ...] | None = None
    answer_index: int | None = None
    question_type: str | None = None
    # The windows as the file gives them when loading clamped one into [0, duration] (None: same as `windows`).
    # The paper's evaluators score against these (e.g. GroundVTS eval_auto on Charades-STA).
    raw_windows: tuple[tuple[float, float], ...] | None = None

    @property
    def reference_windows(self) -> tuple[tuple[float, float], ...]:
        """The windows as the annotation file gives them, before any clamping."""
        return self.windows if self.raw_windows is None else self.raw_windows


@dataclass(frozen=True)
class SkippedRow:
    """A source row that produced no record (or, in `LoadedAnnotations.clamped`, one that was adjusted).

    `reason` reads `"<category>: <detail>"`; `reason_category` gives the part used for summaries.
    """

    file: str
    line: int | str
    reason: str


@dataclass
class LoadedAnnotations:
    records: list[GroundingAnnotation]
    skipped: list[SkippedRow]
    # Rows kept after clamping a boundary into [0, duration]; the reason says what changed.
    clamped: list[SkippedRow] = field(default_factory=list)


_SPLIT_IN_NAME = re.compile(r"(?:^|[_.\-])(train|val_1|val_2|val|test)(?=[_.\-]|$)")


def split_of(annotation_file: str | Path) -> str | None:
    """The split an annotation file's name states (`highlight_val_release.jsonl` -> "val", `val_2.json` -> "val_2",
    `charades_sta_test.txt` -> "test"), or None."""
    match = _SPLIT_IN_NAME.search(Path(annotation_file).name)
    return match.group(1) if match else None


def reason_category(reason: str) -> str:
    """`"reversed window: 8.0 > 7.0"` -> `"reversed window"`."""
    return reason.split(":", 1)[0].strip()


class _RowError(Exception):
    """A bad row: carries the SkippedRow reason."""

    def __init__(self, category: str, detail: str = "") -> None:
        super().__init__(f"{category}: {detail}" if detail else category)


class _Collector:
    """Records, skipped rows and clamp notes of one load."""

    def __init__(self, benchmark: str, path: Path, tolerance: float) -> None:
        self.benchmark, self.file, self.tolerance = benchmark, str(path), tolerance
        self.result = LoadedAnnotations([], [])
        self.qids: set[str] = set()

    def skip(self, line: int | str, reason: str) -> None:
        self.result.skipped.append(SkippedRow(self.file, line, reason))

    def add(self, line: int | str, **fields: Any) -> None:
        """Validate and add one record, or skip it with the reason."""
        try:
            record, notes = self._build(line, **fields)
        except _RowError as error:
            self.skip(line, str(error))
            return
        self.qids.add(record.qid)
        self.result.records.append(record)
        self.result.clamped += [SkippedRow(self.file, line, note) for note in notes]

    def _build(
        self, line: int | str, *, qid: str, query: Any, duration: Any, windows: Any, **extra: Any
    ) -> tuple[GroundingAnnotation, list[str]]:
        if not isinstance(query, str) or not query.strip():
            raise _RowError("empty query", f"query {query!r}")
        if qid in self.qids:
            raise _RowError("duplicate qid", f"qid {qid} already loaded")
        if duration is None:
            raise _RowError("missing duration", "the row has no duration")
        duration = _number(duration, "duration")
        if duration <= 0:
            raise _RowError("missing duration", f"duration {duration} is not positive")
        checked, notes = _check_windows(windows, duration, self.tolerance)
        raw = tuple((_number(w[0], "start"), _number(w[1], "end")) for w in windows) if notes else None
        record = GroundingAnnotation(
            benchmark=self.benchmark, qid=qid, query=query.strip(), duration=duration, windows=checked,
            source=f"{self.file}:{line}", raw_windows=raw, **extra,
        )
        return record, notes


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool):
        raise _RowError("unparseable", f"{name} {value!r} is not a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _RowError("unparseable", f"{name} {value!r} is not a number") from None
    if not math.isfinite(number):
        raise _RowError("unparseable", f"{name} {value!r} is not finite")
    return number


def _check_windows(
    windows: Any, duration: float | None, tolerance: float
) -> tuple[tuple[tuple[float, float], ...], list[str]]:
    if not isinstance(windows, (list, tuple)):
        raise _RowError("unparseable", f"windows {windows!r} are not a list of [start, end]")
    checked, notes = [], []
    for window in windows:
        if not isinstance(window, (list, tuple)) or len(window) != 2:
            raise _RowError("unparseable", f"window {window!r} is not [start, end]")
        start, end = _number(window[0], "start"), _number(window[1], "end")
        if end < start:
            raise _RowError("reversed window", f"start {start} > end {end}")
        if start < -tolerance:
            raise _RowError("negative start", f"start {start} < 0 by more than {tolerance}s")
        if duration is not None:
            if start >= duration:
                raise _RowError("start past duration", f"start {start} >= duration {duration}")
            if end > duration + tolerance:
                raise _RowError("end past duration", f"end {end} > duration {duration} + {tolerance}s")
            if end > duration:
                notes.append(f"end clamped: {end} -> duration {duration}")
                end = duration
        if start < 0:
            notes.append(f"start clamped: {start} -> 0")
            start = 0.0
        checked.append((start, end))
    return tuple(checked), notes


def _require_file(path: str | Path, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist (or is not a file).")
    return path


def read_text(path: str | Path) -> str:
    """The text of an annotation or data file: UTF-8, a leading byte-order mark dropped (files saved by Excel or
    Notepad carry one, and it would otherwise stick to the first id). Bytes that are not UTF-8 raise a ValueError
    naming the file and line."""
    path = Path(path)
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise ValueError(
            f"{path}:{line}: not UTF-8 text (byte {data[error.start]:#04x} at offset {error.start}); save the file as "
            "UTF-8 and retry."
        ) from None


def text_lines(text: str) -> list[str]:
    """The lines of `text` split on newlines only (`str.splitlines` would also split inside JSON strings holding
    U+2028 or a form feed), without line ends; a final newline does not make an extra empty line."""
    lines = [line.rstrip("\r") for line in text.split("\n")]
    if lines[-1] == "":
        lines.pop()
    return lines


def _lines(path: Path) -> Iterable[tuple[int, str]]:
    """(1-based line number, text) for every line of an annotation file."""
    yield from enumerate(text_lines(read_text(path)), start=1)


def _csv_rows(path: Path) -> csv.DictReader:
    return csv.DictReader(io.StringIO(read_text(path), newline=""))


def _load_json_document(path: Path) -> Any:
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON ({error}); expected the benchmark's original json file.") from None


# --- Charades-STA ---------------------------------------------------------------------------------------------


def _charades_duration_files(path: Path, duration_file: str | Path | None) -> list[Path]:
    if duration_file is not None:
        return [_require_file(duration_file, "Charades duration csv")]
    name = path.name.lower()
    splits = [split for split in ("train", "test") if split in name] or ["train", "test"]
    found = [path.parent / f"Charades_v1_{split}.csv" for split in splits]
    found = [candidate for candidate in found if candidate.is_file()]
    if not found:
        raise FileNotFoundError(
            f"Charades-STA durations come from the Charades csv `length` column, but no"
            f" {' or '.join(f'Charades_v1_{s}.csv' for s in splits)} sits next to {path}; pass duration_file=."
        )
    return found


def _charades_lengths(files: Sequence[Path]) -> dict[str, float]:
    lengths: dict[str, float] = {}
    for file in files:
        reader = _csv_rows(file)
        if not reader.fieldnames or "id" not in reader.fieldnames or "length" not in reader.fieldnames:
            raise ValueError(f"{file} has no `id` and `length` columns; expected a Charades_v1_*.csv file.")
        for row in reader:
            try:
                lengths[row["id"]] = float(row["length"])
            except (TypeError, ValueError):
                continue  # no usable length: rows of that video are skipped as "missing duration"
    return lengths


def _load_charades_txt(path: Path, collector: _Collector, duration_file: str | Path | None) -> None:
    lengths = _charades_lengths(_charades_duration_files(path, duration_file))
    per_video: dict[str, int] = {}
    for number, text in _lines(path):
        if not text.strip():
            collector.skip(number, "empty line")
            continue
        match = _CHARADES_LINE.match(text.strip())
        if not match:
            collector.skip(number, f"unparseable: expected `VID START END##SENTENCE`, got {text[:80]!r}")
            continue
        video_id, start, end, sentence = match.groups()
        index = per_video.get(video_id, 0)
        per_video[video_id] = index + 1
        if video_id not in lengths:
            collector.skip(number, f"missing duration: video {video_id} has no length in the Charades csv")
            continue
        collector.add(
            number, qid=f"{video_id}_{index}", video_id=video_id, query=sentence, duration=lengths[video_id],
            windows=[[start, end]],
        )


# --- moment_detr-style jsonl (QVHighlights, lighthouse Charades) ------------------------------------------------


def _int_tuple(values: Any, name: str) -> tuple[int, ...]:
    if not isinstance(values, list) or any(isinstance(v, bool) or not isinstance(v, int) for v in values):
        raise _RowError("unparseable", f"{name} {str(values)[:80]} is not a list of integers")
    return tuple(values)


def _highlight_fields(row: dict) -> dict[str, Any]:
    clip_ids, scores = row.get("relevant_clip_ids"), row.get("saliency_scores")
    if clip_ids is None and scores is None:
        return {}
    if clip_ids is None or scores is None:
        raise _RowError("bad saliency", "relevant_clip_ids and saliency_scores must come together")
    clip_ids = _int_tuple(clip_ids, "relevant_clip_ids")
    if not isinstance(scores, list):
        raise _RowError("bad saliency", "saliency_scores is not a list")
    scores = tuple(_int_tuple(row_scores, "saliency_scores row") for row_scores in scores)
    if len(clip_ids) != len(scores):
        raise _RowError("bad saliency", f"{len(clip_ids)} relevant_clip_ids but {len(scores)} saliency_scores rows")
    return {"relevant_clip_ids": clip_ids, "saliency_scores": scores}


def _load_moment_jsonl(path: Path, collector: _Collector) -> None:
    for number, text in _lines(path):
        if not text.strip():
            collector.skip(number, "empty line")
            continue
        try:
            row = json.loads(text)
            if not isinstance(row, dict):
                raise _RowError("unparseable", f"line is a {type(row).__name__}, not an object")
            for key in ("qid", "query", "vid"):
                if key not in row:
                    raise _RowError("missing field", f"no `{key}`")
            extra = _highlight_fields(row)
        except json.JSONDecodeError as error:
            collector.skip(number, f"unparseable: invalid JSON ({error.msg})")
            continue
        except _RowError as error:
            collector.skip(number, str(error))
            continue
        collector.add(
            number, qid=str(row["qid"]), video_id=str(row["vid"]), query=row["query"], duration=row.get("duration"),
            windows=row.get("relevant_windows", []), **extra,
        )


# --- ActivityNet Captions -----------------------------------------------------------------------------------------


def _load_activitynet(path: Path, collector: _Collector) -> None:
    data = _load_json_document(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path} holds a {type(data).__name__}; expected {{video_id: {{duration, timestamps, ...}}}}.")
    for video_id, entry in data.items():
        if not isinstance(entry, dict):
            collector.skip(f"{video_id}#0", f"unparseable: entry is a {type(entry).__name__}, not an object")
            continue
        timestamps, sentences = entry.get("timestamps"), entry.get("sentences")
        if not isinstance(timestamps, list) or not isinstance(sentences, list):
            collector.skip(f"{video_id}#0", "unparseable: `timestamps` and `sentences` must be lists")
            continue
        for index in range(max(len(timestamps), len(sentences))):
            locator = f"{video_id}#{index}"
            if index >= len(timestamps) or index >= len(sentences):
                collector.skip(
                    locator, f"unparseable: {len(timestamps)} timestamps but {len(sentences)} sentences"
                )
                continue
            collector.add(
                locator, qid=f"{video_id}_{index}", video_id=video_id, query=sentences[index],
                duration=entry.get("duration"), windows=[timestamps[index]],
            )


# --- NExT-GQA -----------------------------------------------------------------------------------------------------


def _nextgqa_grounding_file(path: Path, grounding_file: str | Path | None) -> Path:
    if grounding_file is not None:
        return _require_file(grounding_file, "NExT-GQA grounding file")
    candidate = path.parent / f"gsub_{path.stem}.json"
    if not candidate.is_file():
        raise FileNotFoundError(
            f"NExT-GQA spans and durations come from gsub_<split>.json, but {candidate} does not exist;"
            f" pass grounding_file=."
        )
    return candidate


def _load_nextgqa(path: Path, collector: _Collector, grounding_file: str | Path | None) -> None:
    gsub = _load_json_document(_nextgqa_grounding_file(path, grounding_file))
    if not isinstance(gsub, dict):
        raise ValueError("The NExT-GQA grounding file must map video ids to {duration, location, fps}.")
    reader = _csv_rows(path)
    missing = [column for column in _NEXTGQA_COLUMNS if column not in (reader.fieldnames or [])]
    if missing:
        raise ValueError(f"{path} lacks the NExT-GQA csv columns {missing}; found {reader.fieldnames}.")
    for row in reader:
        number = reader.line_num  # last physical line of the row (header is line 1)
        if None in row or any(row.get(column) is None for column in _NEXTGQA_COLUMNS):
            collector.skip(number, f"unparseable: expected {len(reader.fieldnames)} columns")
            continue
        video_id, qid = row["video_id"].strip(), row["qid"].strip()
        options = tuple(row[f"a{i}"].strip() for i in range(5))
        answer = row["answer"].strip()
        if answer not in options:
            collector.skip(number, f"answer not among options: {answer!r} is none of a0..a4")
            continue
        entry = gsub.get(video_id)
        spans = (entry.get("location") or {}).get(qid) if isinstance(entry, dict) else None
        if not spans:
            collector.skip(number, f"no grounding span: gsub has no location for video {video_id} qid {qid}")
            continue
        collector.add(
            number, qid=f"{video_id}_{qid}", video_id=video_id, query=row["question"],
            duration=entry.get("duration"), windows=spans, options=options, answer_index=options.index(answer),
            question_type=row["type"].strip(),
        )


# --- public API ---------------------------------------------------------------------------------------------------


def load_annotations(
    benchmark: str,
    annotation_file: str | Path,
    *,
    duration_file: str | Path | None = None,
    grounding_file: str | Path | None = None,
    boundary_tolerance: float = BOUNDARY_TOLERANCE_S,
) -> LoadedAnnotations:
    """Read one benchmark annotation file into records and skipped rows (see the module docstring).

    Args:
        benchmark: one of `BENCHMARKS`.
        annotation_file: the benchmark's file (Charades-STA txt or lighthouse jsonl, ActivityNet json,
            QVHighlights jsonl, NExT-GQA csv).
        duration_file: Charades csv with `length` (Charades-STA txt only; default: the sibling csv).
        grounding_file: NExT-GQA `gsub_{split}.json` (default: the sibling named after the csv).
        boundary_tolerance: seconds a window may pass [0, duration] and still be clamped instead of skipped.
    """
    if benchmark not in BENCHMARKS:
        raise ValueError(f"Unknown benchmark {benchmark!r}; choose one of {', '.join(BENCHMARKS)}.")
    path = _require_file(annotation_file, f"{benchmark} annotation file")
    collector = _Collector(benchmark, path, boundary_tolerance)
    if benchmark == "charades_sta":
        if path.suffix == ".jsonl":
            _load_moment_jsonl(path, collector)
        else:
            _load_charades_txt(path, collector, duration_file)
    elif benchmark == "qvhighlights":
        _load_moment_jsonl(path, collector)
    elif benchmark == "activitynet_captions":
        _load_activitynet(path, collector)
    else:
        _load_nextgqa(path, collector, grounding_file)
    return collector.result


def resolve_video(
    video_root: str | Path, video_id: str, extensions: Sequence[str] = VIDEO_EXTENSIONS
) -> Path:
    """The video file of `video_id` under `video_root`.

    Looks for `video_root/<video_id><ext>` for each extension in order (a `video_id` may hold a subfolder, e.g.
    `0101/2909445186`, or already end in an extension), then one folder level down, `video_root/*/<video_id><ext>`
    (NExT-QA's `NExTVideo/<folder>/<id>.mp4`). Raises FileNotFoundError naming the root, the id and the
    extensions tried; ValueError when the subfolder search finds the id in more than one place.
    """
    root = Path(video_root)
    if not root.is_dir():
        raise FileNotFoundError(f"Video folder {root} does not exist; pass the folder that holds the videos.")
    if Path(video_id).suffix.lower() in extensions and (root / video_id).is_file():
        return root / video_id
    for extension in extensions:
        candidate = root / f"{video_id}{extension}"
        if candidate.is_file():
            return candidate
    if "/" not in video_id:
        matches = sorted(
            Path(match) for extension in extensions for match in glob.glob(
                str(Path(glob.escape(str(root))) / "*" / f"{glob.escape(video_id)}{extension}")
            )
        )
        if len(matches) > 1:
            raise ValueError(f"Video {video_id!r} is in several subfolders of {root}: {[str(m) for m in matches]}.")
        if matches:
            return matches[0]
    raise FileNotFoundError(
        f"No video file for id {video_id!r} under {root}: tried {root}/{video_id}{{{','.join(extensions)}}} and"
        f" one subfolder level down ({root}/*/{video_id}.*). Check the video folder and the file extension."
    )
