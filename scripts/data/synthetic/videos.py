"""Generate a synthetic temporal-grounding benchmark (videos + Charades-STA-format annotations), deterministically.

Each video is a few seconds (8-20 s by default) at 4 fps of 112x112 px: 3-5 coloured shapes on a dark, plain or
lightly textured background; one target shape has one event in a window [s, e] (appears, disappears, moves
left/right/up/down, turns another colour, grows, shrinks) and the query names it, e.g. "the red circle appears."
or "the blue square slides to the right.". Distractors never share the target's (colour, shape) and often have
events of their own at other times, so the query is only answerable by looking at the right object at the right
time. Scene details: `groundvts.scripts.data.synthetic.scenes`.

Output (the Charades-STA layout, so the annotation readers, `build-data`, `infer` and `evaluate` take it as is):

    OUT/videos/<vid>.mp4                  H.264, 4 fps (lossless with the default --crf 0)
    OUT/charades_sta_{train,val,test}.txt `vid start end##query`, times with 1 decimal
    OUT/Charades_v1_{train,test}.csv      `id,...,length` durations; the train csv also lists the val videos,
    OUT/Charades_v1_val.csv               so every txt finds its durations next to it without --duration-file
    OUT/manifest.json                     seed, split seeds, counts, settings and every sample's scene

Event types are balanced: every run of 6 consecutive videos of a split has each type once (in a random order).
Each split has its own seed derived from --seed, and each video its own from that, so the same arguments give
byte-identical annotation files and identical decoded frames, and adding videos to a split keeps the first ones.

    python -m groundvts.scripts.data.synthetic.videos data/synthetic --num-train 300 --num-val 50 --num-test 100
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import random
import shutil
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from groundvts.scripts.data.synthetic.scenes import EVENT_TYPES, Scene, SceneConfig, render_frames, sample_scene


GENERATOR_VERSION = "1"
SPLITS: tuple[str, ...] = ("train", "val", "test")
# split -> the Charades_v1_<name>.csv files that list its durations. The reader's auto-discovery picks the csv by
# "train"/"test" in the txt name and reads both for any other name (val), so the val lengths are in the train csv too.
DURATION_CSVS: dict[str, tuple[str, ...]] = {"train": ("train",), "val": ("train", "val"), "test": ("test",)}
CSV_COLUMNS = ("id", "objects", "descriptions", "length")


def split_seed(seed: int, split: str) -> int:
    """The seed of one split, derived from the benchmark seed (stable across Python versions and machines)."""
    digest = hashlib.sha256(f"groundvts-synthetic:{seed}:{split}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def balanced_event(seed: int, index: int, event_types: Sequence[str]) -> str:
    """Target event of video `index`: every block of len(event_types) videos has each type once, shuffled."""
    block, position = divmod(index, len(event_types))
    order = list(event_types)
    random.Random(f"{seed}:events:{block}").shuffle(order)
    return order[position]


def video_id(split: str, index: int) -> str:
    return f"syn_{split}_{index:05d}"


def annotation_files(split: str) -> tuple[str, str]:
    """(txt, csv) file names of a split."""
    return f"charades_sta_{split}.txt", f"Charades_v1_{split}.csv"


def encode_video(path: Path, frames: Iterable[np.ndarray], fps: Fraction, crf: int) -> None:
    """Write RGB frames as an mp4 (H.264 with one thread for a machine-independent stream; MPEG-4 without x264)."""
    import av

    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        first = True
        for index, image in enumerate(frames):
            if first:
                stream.height, stream.width = image.shape[:2]
                stream.pix_fmt = "yuv420p"
                stream.codec_context.thread_count = 1
                if codec == "libx264":
                    stream.options = {"crf": str(crf), "preset": "veryfast", "threads": "1"}
                else:
                    stream.options = {"qscale": "2"}
                first = False
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _fmt(seconds: float | Fraction) -> str:
    return f"{float(seconds):.1f}"


def _sample_record(split: str, index: int, scene: Scene) -> dict[str, Any]:
    target = scene.target
    return {
        "video_id": video_id(split, index),
        "split": split,
        "query": scene.query,
        "window": [float(target.window[0]), float(target.window[1])],
        "event": target.event,
        "duration": float(scene.duration),
        "num_frames": scene.num_frames,
        "background": scene.background,
        "target": target.describe(),
        "distractors": [obj.describe() for obj in scene.objects[1:]],
    }


def _check_counts(counts: dict[str, int]) -> None:
    for split, count in counts.items():
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"num_{split} must be a whole number >= 0, got {count!r}.")
    if not sum(counts.values()):
        raise ValueError("Nothing to generate: num_train, num_val and num_test are all 0.")


def _generated_paths(out: Path) -> list[Path]:
    names = ["manifest.json", "videos"]
    for split in SPLITS:
        names += annotation_files(split)
    return [out / name for name in names]


def _prepare_output(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ValueError(f"Output {out} is a file; pass a folder.")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise ValueError(f"Output folder {out} exists and is not empty; pass --overwrite or another folder.")
        # Remove only what this generator writes, never anything else that sits in the folder.
        for path in _generated_paths(out):
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    (out / "videos").mkdir(parents=True, exist_ok=True)


def make_synthetic_benchmark(
    out_dir: str | Path,
    *,
    seed: int = 0,
    num_train: int = 300,
    num_val: int = 50,
    num_test: int = 100,
    width: int = 112,
    height: int = 112,
    fps: float = 4.0,
    min_duration: float = 8.0,
    max_duration: float = 20.0,
    min_window_ratio: float = 0.15,
    max_window_ratio: float = 0.6,
    event_types: Sequence[str] = EVENT_TYPES,
    min_distractors: int = 2,
    max_distractors: int = 4,
    distractor_event_prob: float = 0.5,
    shape_size: float | None = None,
    crf: int = 0,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write the benchmark to `out_dir` (see the module docstring) and return a summary.

    Raises ValueError (before writing anything) for bad settings or a non-empty `out_dir` without `overwrite`.
    The summary holds `out_dir`, `counts`, `events` (per split), `files`, `seconds`, `seed` and `split_seeds`.
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, got {seed!r}.")
    counts = {"train": num_train, "val": num_val, "test": num_test}
    _check_counts(counts)
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not math.isfinite(fps):
        raise ValueError(f"fps must be a finite number, got {fps!r}.")
    if isinstance(crf, bool) or not isinstance(crf, int) or not 0 <= crf <= 51:
        raise ValueError(f"crf must be an integer in [0, 51] (0 = lossless), got {crf!r}.")
    config = SceneConfig(
        width=width, height=height, fps=Fraction(fps).limit_denominator(1000), min_duration=min_duration,
        max_duration=max_duration, min_window_ratio=min_window_ratio, max_window_ratio=max_window_ratio,
        event_types=tuple(event_types), min_distractors=min_distractors, max_distractors=max_distractors,
        distractor_event_prob=distractor_event_prob, shape_size=shape_size,
    ).validate()
    out = Path(out_dir)
    _prepare_output(out, overwrite)

    started = time.perf_counter()
    seeds = {split: split_seed(seed, split) for split in SPLITS}
    samples: dict[str, list[dict[str, Any]]] = {}
    for split in SPLITS:
        samples[split] = []
        for index in range(counts[split]):
            event = balanced_event(seeds[split], index, config.event_types)
            scene = sample_scene(random.Random(f"{seeds[split]}:{index}"), config, event)
            record = _sample_record(split, index, scene)
            encode_video(out / "videos" / f"{record['video_id']}.mp4", render_frames(scene), config.fps, crf)
            samples[split].append(record)

    files = _write_annotations(out, samples)
    manifest = {
        "generator": "groundvts.scripts.data.synthetic.videos",
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "split_seeds": seeds,
        "counts": counts,
        "settings": {
            "width": width, "height": height, "fps": float(config.fps), "min_duration": min_duration,
            "max_duration": max_duration, "min_window_ratio": min_window_ratio, "max_window_ratio": max_window_ratio,
            "event_types": list(config.event_types), "min_distractors": min_distractors,
            "max_distractors": max_distractors, "distractor_event_prob": distractor_event_prob,
            "shape_size": config.base_size, "crf": crf, "time_grid_s": float(config.grid),
        },
        "events": {split: dict(sorted(Counter(s["event"] for s in samples[split]).items())) for split in SPLITS},
        "samples": [record for split in SPLITS for record in samples[split]],
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return {
        "out_dir": str(out),
        "seed": seed,
        "split_seeds": seeds,
        "counts": counts,
        "events": manifest["events"],
        "files": [*files, "manifest.json"],
        "seconds": round(time.perf_counter() - started, 3),
    }


def read_split(out_dir: str | Path, split: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The manifest samples of `split` in a `make_synthetic_benchmark` folder, each with its `video` path added, and
    the generator settings."""
    out_dir = Path(out_dir)
    manifest = json.loads((out_dir / "manifest.json").read_text(encoding="utf-8"))
    samples = [{**sample, "video": str(out_dir / "videos" / f"{sample['video_id']}.mp4")}
               for sample in manifest["samples"] if sample["split"] == split]
    return samples, manifest["settings"]


def _write_annotations(out: Path, samples: dict[str, list[dict[str, Any]]]) -> list[str]:
    """The txt of each split and the duration csvs; returns the file names written."""
    written = []
    for split in SPLITS:
        txt, csv_name = annotation_files(split)
        lines = [
            f"{s['video_id']} {_fmt(s['window'][0])} {_fmt(s['window'][1])}##{s['query']}\n" for s in samples[split]
        ]
        (out / txt).write_text("".join(lines), encoding="utf-8")
        rows = [
            row for source, owners in DURATION_CSVS.items() if split in owners for row in samples[source]
        ]
        with (out / csv_name).open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(CSV_COLUMNS)
            for s in rows:
                objects = ";".join(f"{o['color']} {o['shape']}" for o in [s["target"], *s["distractors"]])
                writer.writerow([s["video_id"], objects, s["query"], _fmt(s["duration"])])
        written += [txt, csv_name]
    return written


def add_scene_arguments(parser: argparse.ArgumentParser) -> None:
    """The scene options (frame size, fps, durations, windows, events, distractors, shape size) on `parser`."""
    parser.add_argument(
        "--size", type=int, nargs=2, default=(112, 112), metavar=("W", "H"), help="frame size (default 112 112)"
    )
    parser.add_argument("--fps", type=float, default=4.0, help="frames per second (default 4)")
    parser.add_argument("--duration", type=float, nargs=2, default=(8.0, 20.0), metavar=("MIN", "MAX"),
                        help="video length range in seconds (default 8 20)")
    parser.add_argument("--window-ratio", type=float, nargs=2, default=(0.15, 0.6), metavar=("MIN", "MAX"),
                        help="event window length as a fraction of the video (default 0.15 0.6)")
    parser.add_argument("--event-types", nargs="+", default=list(EVENT_TYPES), metavar="EVENT",
                        help=f"target event types (default all: {' '.join(EVENT_TYPES)})")
    parser.add_argument("--distractors", type=int, nargs=2, default=(2, 4), metavar=("MIN", "MAX"),
                        help="distractor objects per video (default 2 4)")
    parser.add_argument("--distractor-event-prob", type=float, default=0.5,
                        help="chance that a distractor has an event of its own (default 0.5)")
    parser.add_argument("--shape-size", type=float, default=None, help="object size in px (default 22%% of the side)")


def scene_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """`make_synthetic_benchmark` keyword arguments from the options `add_scene_arguments` added."""
    return dict(
        width=args.size[0], height=args.size[1], fps=args.fps, min_duration=args.duration[0],
        max_duration=args.duration[1], min_window_ratio=args.window_ratio[0], max_window_ratio=args.window_ratio[1],
        event_types=tuple(args.event_types), min_distractors=args.distractors[0], max_distractors=args.distractors[1],
        distractor_event_prob=args.distractor_event_prob, shape_size=args.shape_size,
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m groundvts.scripts.data.synthetic.videos", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("out", help="output folder (created; must be empty unless --overwrite)")
    parser.add_argument("--seed", type=int, default=0, help="benchmark seed (default 0)")
    parser.add_argument("--num-train", type=int, default=300, help="train videos (default 300)")
    parser.add_argument("--num-val", type=int, default=50, help="val videos (default 50)")
    parser.add_argument("--num-test", type=int, default=100, help="test videos (default 100)")
    add_scene_arguments(parser)
    parser.add_argument("--crf", type=int, default=0, help="x264 quality, 0 = lossless (default 0)")
    parser.add_argument("--overwrite", action="store_true", help="replace earlier output in a non-empty folder")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        summary = make_synthetic_benchmark(
            args.out, seed=args.seed, num_train=args.num_train, num_val=args.num_val, num_test=args.num_test,
            crf=args.crf, overwrite=args.overwrite, **scene_kwargs(args),
        )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    counts = ", ".join(f"{count} {split}" for split, count in summary["counts"].items())
    print(f"Wrote {counts} videos to {summary['out_dir']} in {summary['seconds']:.1f} s (seed {summary['seed']}).")
    for split, events in summary["events"].items():
        if events:
            print(f"  {split:<5} " + ", ".join(f"{event} {count}" for event, count in events.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
