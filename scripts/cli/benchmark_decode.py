"""Benchmark video decoding to the kept frames vs the video's length (`groundvts benchmark-decode`).

For each video of the grid (lengths × resolutions × keyframe intervals; 30 fps H.264, generated once and cached
under --workdir), decode --frames frames (a constant step over the video, the GroundVTS-Q processor's policy) with
the old sequential path (transformers' `load_video`, PyAV), the new seeking path (as shipped; with one thread; with
one thread and no skipping of non-reference frames), and torchcodec when it is installed and finds FFmpeg; print
time, frames decoded, peak memory (each measurement in its own process) and whether the frames are the sequential
ones, then check the goals (time flat within 2x over the lengths; at the longest length >= 10x faster than
sequential with GOP 30, >= 3x with GOP 250). Writes JSON after every video, so a stopped run keeps what it measured.

    groundvts benchmark-decode --workdir /data/decode_videos --out benchmark_decode.json
    groundvts benchmark-decode --minutes 1 3 --resolutions 480p --gops 30 --methods sequential seek

A 30-minute 720p video takes minutes to encode (long videos repeat a cached shorter one unless --encode-all) and
(sequentially) to decode; narrow the grid for a quick look.
"""

from __future__ import annotations

import sys

from groundvts.scripts.cli._parser import CommandParser
from groundvts.scripts.perf.decode import DecodeBenchSettings, run_decode_benchmark


def build_parser() -> CommandParser:
    return CommandParser([DecodeBenchSettings], prog="groundvts benchmark-decode", description=__doc__)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _run(settings: DecodeBenchSettings) -> int:
    print(run_decode_benchmark(settings, log=_log).summary())
    return 0


def main(argv: list[str] | None = None) -> int:
    return build_parser().run(argv, lambda settings, _: _run(settings))


if __name__ == "__main__":
    sys.exit(main())
