"""Synthetic temporal-grounding benchmarks (videos + Charades-STA-format annotations), generated deterministically.

`make_synthetic_benchmark(out_dir, ...)` renders the scenes of `scenes.py` (coloured shapes; one target with one
event in a window, named by the query) to mp4 files and writes the Charades-STA layout, so the annotation readers,
the Grounding-FT builder and benchmark inference take it as is, plus a `manifest.json` with every sample's scene;
`read_split` reads a split back from the manifest. The folder layout and the seeding rules are in the help of
`groundvts make-synthetic` (scripts/cli/make_synthetic.py).
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import random
import shutil
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from groundvts.scripts.data.synthetic.scenes import EVENT_TYPES, Scene, SceneConfig, render_frames, sample_scene
from groundvts.scripts.output_paths import check_new_folder


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
    check_new_folder(out, "output folder", overwrite=overwrite)
    if out.is_dir() and any(out.iterdir()):
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

    Raises ValueError (before writing anything) for bad settings, FileExistsError for a non-empty `out_dir`
    without `overwrite`.
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
        # The module's name before the scripts/ redesign, kept so that the same arguments give the same bytes.
        "generator": "groundvts.scripts.make_synthetic",
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
