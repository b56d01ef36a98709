"""Benchmark video decoding to the frames a processor keeps: time and peak memory vs the video's length.

For every video of the grid (lengths in minutes × resolutions × keyframe intervals, 30 fps, H.264 with 2 B-frames),
each method decodes the same `frames` frames (a constant step of total/frames source frames, the Qwen processor's
policy), timed from the file path to the RGB frames, frame indices chosen from the file's metadata and packet
timestamps (`read_video_info`, which every method runs):

- `sequential`: the old path, transformers' `load_video` with PyAV, which decodes every frame up to the last kept one
  (one decoder thread: PyAV's slice threading does nothing for one-slice frames);
- `seek`: the new path as shipped (`video_decoding`, PyAV seeking to the keyframe before each kept frame, skipping
  non-reference frames it does not keep, FFmpeg's frame threading);
- `seek-packet-index`: the same, the timestamps read from every packet (the whole file) instead of derived from the
  container's sample table (MP4), as before the table was used;
- `seek-1thread`: the same with one decoder thread (like `sequential`);
- `seek-no-skip`: one thread, non-reference frames decoded too (the plain seek, to show what skipping saves);
- `torchcodec`: torchcodec's exact-seek decoder (its default: one FFmpeg thread), when it is installed and works.

The seek methods also report how many frames the decoder output (`decoded`), the work that exact frames cost.

Each measurement runs in its own process (`python -m groundvts.scripts.perf._decode_child`) so that its peak memory
(max RSS growth) is its own; the frames of every method are checked equal to the sequential ones (pixel checksum).
Videos are generated once (cheap scrolling texture, libx264 `ultrafast`) and cached under `workdir`: a 30-minute 720p
file takes minutes to encode, so by default a long video is a cached shorter one repeated (`*_repeated.mp4`: the
structure and content of a direct encode, not bit-identical to it); `encode_all` encodes every length. The command is `groundvts benchmark-decode`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from groundvts.processing.tiny import GOP_VIDEO_PERIOD, write_gop_video
from groundvts.processing.video_decoding import torchcodec_available
from groundvts.scripts.perf.harness import VariantFailedError, write_report
from groundvts.scripts.perf.host_memory import HostMemoryPeak

RESOLUTIONS = {"480p": (854, 480), "720p": (1280, 720)}
METHODS = ("sequential", "seek", "seek-packet-index", "seek-1thread", "seek-no-skip", "torchcodec")
SEEK_OPTIONS = {
    "seek": {}, "seek-packet-index": {}, "seek-1thread": {"threads": 1},
    "seek-no-skip": {"threads": 1, "skip_nonref": False},
}
# How each method reads the frame timestamps (`read_video_info`): the sample table, as the processors do, but one.
PACKET_INDEX_METHODS = ("seek-packet-index",)
INDEX_TIME_METHODS = ("seek", *PACKET_INDEX_METHODS)  # whose timestamp-reading time the table shows
CHILD_MODULE = "groundvts.scripts.perf._decode_child"
VIDEO_FPS = 30.0


@dataclass
class DecodeBenchSettings:
    """The grid of videos, the frames to keep, and where the cached videos and the JSON report go."""

    minutes: list[float] = field(default_factory=lambda: [1.0, 3.0, 10.0, 30.0], metadata={
        "help": "video lengths in minutes"})
    resolutions: list[str] = field(default_factory=lambda: list(RESOLUTIONS), metadata={
        "choices": list(RESOLUTIONS), "help": "frame sizes"})
    gops: list[int] = field(default_factory=lambda: [30, 250], metadata={"help": "keyframe intervals (frames)"})
    frames: int = field(default=128, metadata={"help": "frames to decode per video"})
    methods: list[str] = field(default_factory=lambda: list(METHODS), metadata={
        "choices": list(METHODS), "help": "decoders to time (torchcodec is skipped where it is not installed)"})
    repeats: int = field(default=1, metadata={"help": "timed runs per measurement (the fastest is kept)"})
    cold: bool = field(default=False, metadata={
        "help": "evict the video from the page cache before every timed run (a first read from disk, as in a "
                "benchmark over many long videos); Linux `posix_fadvise`"})
    encode_all: bool = field(default=False, metadata={
        "help": "encode every length (slow for long videos) instead of repeating a cached shorter video"})
    workdir: Path = field(default=Path("decode_bench_videos"), metadata={
        "help": "folder for the generated videos (kept and reused by later runs)"})
    out: Path = field(default=Path("benchmark_decode.json"), metadata={"help": "JSON report"})

    def __post_init__(self) -> None:
        self.workdir, self.out = Path(self.workdir), Path(self.out)
        for name in ("minutes", "resolutions", "gops", "methods"):
            if not getattr(self, name):
                raise ValueError(f"--{name} needs at least one value")
        if any(m <= 0 for m in self.minutes) or any(g < 1 for g in self.gops):
            raise ValueError(f"--minutes must be > 0 and --gops >= 1, got {self.minutes} and {self.gops}")
        for name, allowed in (("resolutions", RESOLUTIONS), ("methods", METHODS)):
            unknown = [v for v in getattr(self, name) if v not in allowed]
            if unknown:
                raise ValueError(f"--{name}: unknown {unknown}; choose from {list(allowed)}")
        if self.frames < 1 or self.repeats < 1:
            raise ValueError(f"--frames and --repeats must be >= 1, got {self.frames} and {self.repeats}")


def video_path(workdir: Path, minutes: float, resolution: str, gop: int, repeated: bool = False) -> Path:
    """Where the benchmark video is cached: `{res}_gop{gop}_{minutes}min.mp4` when encoded, `..._repeated.mp4` when
    made by repeating a shorter one."""
    return Path(workdir) / f"{resolution}_gop{gop}_{minutes:g}min{'_repeated' if repeated else ''}.mp4"


def ensure_video(workdir: Path, minutes: float, resolution: str, gop: int, encode_all: bool = False) -> Path:
    """The cached benchmark video, made first if missing (under a temporary name: a killed run leaves no half file).

    An encoded video of that length is used when cached. Otherwise, unless `encode_all`, a length that is a whole
    multiple of a cached encoded one of the same size and GOP, whose frames are whole groups of pictures and whole
    cycles of the content, is that one repeated (packets copied, timestamps shifted): the keyframes, B-frames and
    content of a direct encode (the pixels differ slightly: x264's rate control carries over from one GOP to the
    next), made in seconds instead of minutes."""
    encoded = video_path(workdir, minutes, resolution, gop)
    if encoded.exists():
        return encoded
    total = round(minutes * 60 * VIDEO_FPS)
    block = math.lcm(gop, GOP_VIDEO_PERIOD)
    parts = [] if encode_all else sorted(
        (frames, candidate)
        for candidate in Path(workdir).glob(f"{resolution}_gop{gop}_*min.mp4")
        if (frames := round(float(candidate.name.rsplit("_", 1)[1][:-len("min.mp4")]) * 60 * VIDEO_FPS))
        and frames < total and frames % block == 0 and total % frames == 0
    )
    path = video_path(workdir, minutes, resolution, gop, repeated=bool(parts))
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.mp4")
    if parts:
        frames, part = parts[-1]
        _repeat_video(part, frames, total // frames, partial)
    else:
        write_gop_video(partial, total, VIDEO_FPS, RESOLUTIONS[resolution], gop=gop)
    partial.rename(path)
    return path


def _repeat_video(part: Path, part_frames: int, times: int, out: Path) -> None:
    """`part` `times` times in a row: its packets copied with the timestamps of each copy shifted by its length."""
    import av

    with av.open(str(out), mode="w") as target:
        stream = None
        for copy in range(times):
            with av.open(str(part)) as source:
                source_stream = source.streams.video[0]
                if stream is None:
                    stream = target.add_stream_from_template(source_stream)
                shift = Fraction(part_frames) / Fraction(VIDEO_FPS) / source_stream.time_base
                if shift.denominator != 1:
                    raise ValueError(f"{part}: its length is not a whole number of time-base units")
                for packet in source.demux(source_stream):
                    if packet.dts is None:  # the flush packet
                        continue
                    packet.pts += copy * int(shift)
                    packet.dts += copy * int(shift)
                    packet.stream = stream
                    target.mux(packet)


def measure(method: str, path: str, frames: int, repeats: int, cold: bool = False) -> dict[str, Any]:
    """Decode `frames` frames of `path` with `method`, in this process: seconds (fastest of `repeats`), peak RSS
    growth (MB), a checksum of the frames, and for the seek methods the frames the decoder output. `cold`: the
    file is evicted from the page cache before each run."""
    import numpy as np
    from transformers.video_utils import load_video

    from groundvts.processing import video_decoding
    from groundvts.processing.video_decoding import decode_frames
    from groundvts.processing.video_sampling import read_video_info, uniform_step_indices

    decoded = [0]
    frames_for = video_decoding._frames_for

    def counted_frames(*args: Any) -> Any:  # counting costs one addition per decoded frame
        for frame in frames_for(*args):
            decoded[0] += 1
            yield frame

    video_decoding._frames_for = counted_frames
    host_memory = HostMemoryPeak()
    host_memory.start()
    best, checksum, info_seconds = float("inf"), None, None
    for _ in range(repeats):
        decoded[0] = 0
        if cold:
            evict_from_page_cache(path)
        start = time.perf_counter()
        info = read_video_info(path, container_index=method not in PACKET_INDEX_METHODS)
        info_seconds = time.perf_counter() - start
        indices = uniform_step_indices(info.num_frames, frames)
        if method == "sequential":
            kept, _ = load_video(path, backend="pyav", sample_indices_fn=lambda metadata, **kw: np.asarray(indices))
            kept = np.asarray(kept)
        elif method == "torchcodec":
            kept = decode_frames(path, indices, info.stream_index, "torchcodec")
        else:
            kept = decode_frames(path, indices, info.stream_index, "pyav", **SEEK_OPTIONS[method])
        best = min(best, time.perf_counter() - start)
        checksum = hashlib.sha1(np.ascontiguousarray(kept)).hexdigest()  # hashes the buffer: no copy to count
        del kept
    peak_mb = host_memory.growth() / 2**20
    return {"seconds": best, "index_seconds": info_seconds, "peak_mb": peak_mb, "checksum": checksum,
            "num_frames": info.num_frames, "decoded": decoded[0] if method in SEEK_OPTIONS else None}


def evict_from_page_cache(path: str) -> None:
    """Drop the file's cached pages (clean pages of a file we only read), so the next read comes from disk."""
    if not hasattr(os, "posix_fadvise"):
        raise VariantFailedError("--cold needs posix_fadvise (Linux); this system has none")
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def _measure_in_child(method: str, path: Path, frames: int, repeats: int, cold: bool = False) -> dict[str, Any]:
    child = [sys.executable, "-m", CHILD_MODULE, method, str(path), str(frames), str(repeats)]
    child += ["cold"] if cold else []
    proc = subprocess.run(child, capture_output=True, text=True)
    if proc.returncode != 0:
        raise VariantFailedError(f"{method} on {path} failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


@dataclass
class DecodeBenchReport:
    lines: list[str]
    report: dict[str, Any]
    path: Path

    def summary(self) -> str:
        return "\n".join([*self.lines, f"wrote {self.path}"])


def run_decode_benchmark(settings: DecodeBenchSettings, log: Any = print) -> DecodeBenchReport:
    """Generate (or reuse) every video of the grid, time every method on it, write the JSON report; the table and
    the goal checks."""
    methods = [m for m in settings.methods if m != "torchcodec" or torchcodec_available()]
    rows = []
    for resolution in settings.resolutions:
        for gop in settings.gops:
            for minutes in sorted(settings.minutes):
                start = time.perf_counter()
                path = ensure_video(settings.workdir, minutes, resolution, gop, settings.encode_all)
                row: dict[str, Any] = {"resolution": resolution, "gop": gop, "minutes": minutes, "video": str(path),
                                       "repeated": path.stem.endswith("_repeated")}
                for method in methods:
                    row[method] = _measure_in_child(method, path, settings.frames, settings.repeats, settings.cold)
                reference = row.get("sequential", row[methods[0]])["checksum"]
                row["same_frames"] = {m: row[m]["checksum"] == reference for m in methods}
                rows.append(row)
                log(f"{resolution} GOP {gop} {minutes:g} min: " + ", ".join(
                    f"{m} {row[m]['seconds']:.2f} s" for m in methods) + f" ({time.perf_counter() - start:.0f} s)")
                _write(settings, methods, rows)
    lines, report = summarize(rows, methods, settings)
    return DecodeBenchReport(lines, report, _write(settings, methods, rows))


def _write(settings: DecodeBenchSettings, methods: list[str], rows: list[dict[str, Any]]) -> Path:
    # Written after every video: a long run that is stopped keeps what it measured.
    return write_report(summarize(rows, methods, settings)[1], settings.out)


def summarize(
    rows: list[dict[str, Any]], methods: list[str], settings: DecodeBenchSettings
) -> tuple[list[str], dict[str, Any]]:
    """The markdown table, the goal checks (flat within 2x over the lengths; at the longest length >= 10x faster
    than sequential with GOP 30 and >= 3x with GOP 250), and the JSON report."""
    seek_methods = [m for m in methods if m in SEEK_OPTIONS]
    header = ["res", "GOP", "min", "video", "frames"] + [f"{m} s" for m in methods]
    if {"sequential", "seek"} <= set(methods):
        header.append("speed-up")
    header += [f"{m} index s" for m in methods if m in INDEX_TIME_METHODS]
    header += [f"{m} decoded" for m in seek_methods]
    header += [f"{m} peak MB" for m in methods] + ["same frames"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [row["resolution"], str(row["gop"]), f"{row['minutes']:g}",
                 "repeated" if row.get("repeated") else "encoded", str(row[methods[0]]["num_frames"])]
        cells += [f"{row[m]['seconds']:.2f}" for m in methods]
        if {"sequential", "seek"} <= set(methods):
            cells.append(f"{row['sequential']['seconds'] / row['seek']['seconds']:.1f}x")
        cells += [f"{row[m]['index_seconds']:.3f}" for m in methods if m in INDEX_TIME_METHODS]
        cells += [str(row[m]["decoded"]) for m in seek_methods]
        cells += [f"{row[m]['peak_mb']:.0f}" for m in methods]
        cells.append("yes" if all(row["same_frames"].values()) else "NO")
        lines.append("| " + " | ".join(cells) + " |")
    checks = goal_checks(rows)
    lines += checks
    settings_json = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(settings).items()}
    return lines, {"settings": settings_json, "methods": methods, "rows": rows, "goal_checks": checks}


def goal_checks(rows: list[dict[str, Any]]) -> list[str]:
    """One line per (resolution, GOP) and fast method measured (the seek methods, torchcodec): its growth from the
    shortest to the longest length (and that of the frames it decoded) and its speed-up over sequential there."""
    checks = []
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["resolution"], row["gop"]), []).append(row)
    for (resolution, gop), group in groups.items():
        group = sorted(group, key=lambda r: r["minutes"])
        shortest, longest = group[0], group[-1]
        for method in [m for m in (*SEEK_OPTIONS, "torchcodec") if m in longest and m in shortest]:
            line = f"{resolution} GOP {gop}: {method} {shortest['minutes']:g} -> {longest['minutes']:g} min"
            if len(group) > 1:
                growth = longest[method]["seconds"] / shortest[method]["seconds"]
                line += f" grows {growth:.2f}x (goal <= 2x: {'met' if growth <= 2 else 'NOT met'})"
                if longest[method].get("decoded") and shortest[method].get("decoded"):
                    line += f", decoded frames {longest[method]['decoded'] / shortest[method]['decoded']:.2f}x"
            if "sequential" in longest:
                speedup = longest["sequential"]["seconds"] / longest[method]["seconds"]
                target = 10 if gop <= 30 else 3
                line += (f"; at {longest['minutes']:g} min {speedup:.1f}x faster than sequential (goal >= {target}x: "
                         f"{'met' if speedup >= target else 'NOT met'})")
            checks.append(line)
    return checks
