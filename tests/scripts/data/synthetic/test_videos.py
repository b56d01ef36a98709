"""scripts/data/synthetic/videos.py: determinism, the Charades-STA files through our readers and data builder, a pixel
oracle that finds each event type from the decoded mp4s, and the command line (scripts/cli/make_synthetic.py)."""

import json
import math
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from groundvts.processing.annotations import load_annotations
from groundvts.processing.video_sampling import probe_video_file
from groundvts.scripts.data.grounding_ft import GroundingSource, build_grounding_ft
from groundvts.scripts.cli.make_synthetic import main
from groundvts.scripts.data.synthetic.videos import GENERATOR_VERSION, SPLITS, make_synthetic_benchmark
from groundvts.scripts.data.synthetic.scenes import COLORS, EVENT_TYPES, GAP


COUNTS = {"num_train": 3, "num_val": 2, "num_test": 3}
SMALL = {"min_duration": 8.0, "max_duration": 12.0}
LOSSLESS = "libx264" in av.codecs_available  # without x264 the videos are lossy MPEG-4
FOREGROUND = 140  # every object colour has a channel >= 210; backgrounds stay below 100


def _frames(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]).astype(np.int16)


def _annotation_bytes(folder: Path) -> dict[str, bytes]:
    names = [p.name for p in folder.iterdir() if p.suffix in (".txt", ".csv", ".json")]
    return {name: (folder / name).read_bytes() for name in sorted(names)}


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    out = tmp_path_factory.mktemp("synthetic") / "bench"
    summary = make_synthetic_benchmark(out, seed=0, **COUNTS, **SMALL)
    return out, summary


def test_same_arguments_same_files_and_frames(bench, tmp_path):
    out, _ = bench
    again = tmp_path / "again"
    make_synthetic_benchmark(again, seed=0, **COUNTS, **SMALL)
    assert _annotation_bytes(out) == _annotation_bytes(again)
    videos = sorted(p.name for p in (out / "videos").iterdir())
    assert videos == sorted(p.name for p in (again / "videos").iterdir())
    assert len(videos) == sum(COUNTS.values())
    for name in videos:
        np.testing.assert_array_equal(_frames(out / "videos" / name), _frames(again / "videos" / name))

    other = tmp_path / "other"
    make_synthetic_benchmark(other, seed=1, **COUNTS, **SMALL)
    assert (other / "charades_sta_train.txt").read_bytes() != (out / "charades_sta_train.txt").read_bytes()
    first = "syn_train_00000.mp4"
    a, b = _frames(out / "videos" / first), _frames(other / "videos" / first)
    assert a.shape != b.shape or not np.array_equal(a, b)


def test_more_videos_keep_the_first_ones(bench, tmp_path):
    """Each video has its own seed: a longer train split starts with the same videos and lines."""
    out, _ = bench
    longer = tmp_path / "longer"
    make_synthetic_benchmark(longer, seed=0, num_train=4, num_val=0, num_test=1, **SMALL)
    lines = (out / "charades_sta_train.txt").read_text().splitlines()
    assert (longer / "charades_sta_train.txt").read_text().splitlines()[:3] == lines
    np.testing.assert_array_equal(
        _frames(out / "videos" / "syn_train_00002.mp4"), _frames(longer / "videos" / "syn_train_00002.mp4")
    )


def test_readers_take_every_row_with_the_video_durations(bench):
    out, summary = bench
    for split in SPLITS:
        txt = out / f"charades_sta_{split}.txt"
        loaded = load_annotations("charades_sta", txt)  # durations found next to the txt, val included
        assert not loaded.skipped and not loaded.clamped
        assert len(loaded.records) == COUNTS[f"num_{split}"] == summary["counts"][split]
        for line, record in zip(txt.read_text().splitlines(), loaded.records):
            start, end = line.split("##")[0].split()[1:]
            assert len(start.split(".")[1]) == 1 and len(end.split(".")[1]) == 1  # `vid 1.5 7.0##query`
            num_frames, fps, width, height = probe_video_file(str(out / "videos" / f"{record.video_id}.mp4"))
            assert (width, height, fps) == (112, 112, 4.0)
            assert math.isclose(num_frames / fps, record.duration)
            assert SMALL["min_duration"] <= record.duration <= SMALL["max_duration"]
            ((start, end),) = record.windows
            assert 0 <= start < end <= record.duration
            assert 0.15 - 1e-9 <= (end - start) / record.duration <= 0.6 + 1e-9
        # The split's own csv holds its durations too (for an explicit duration_file).
        explicit = load_annotations("charades_sta", txt, duration_file=out / f"Charades_v1_{split}.csv")
        assert explicit.records == loaded.records


def test_manifest_describes_every_sample(bench):
    out, _ = bench
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 0 and manifest["generator_version"] == GENERATOR_VERSION
    # The pre-redesign module name: manifests stay byte-identical across the move of the generator.
    assert manifest["generator"] == "groundvts.scripts.make_synthetic"
    assert manifest["counts"] == {split: COUNTS[f"num_{split}"] for split in SPLITS}
    assert len(set(manifest["split_seeds"].values())) == 3
    for split in SPLITS:  # balanced: fewer videos than event types means all different
        events = [s["event"] for s in manifest["samples"] if s["split"] == split]
        assert len(events) == len(set(events)) == COUNTS[f"num_{split}"]
    texts = [(out / f"charades_sta_{split}.txt").read_text() for split in SPLITS]
    lines = {line.split()[0]: line for text in texts for line in text.splitlines()}
    for sample in manifest["samples"]:
        target = sample["target"]
        assert sample["event"] == target["event"] in EVENT_TYPES
        assert lines[sample["video_id"]].endswith("##" + sample["query"])
        assert f"{target['color']} {target['shape']}" in sample["query"]
        assert 2 <= len(sample["distractors"]) <= 4
        # Every (shape, colour) any object ever shows belongs to that object only: the query names one object.
        shown = [_names(obj) for obj in (target, *sample["distractors"])]
        for i, names in enumerate(shown):
            assert all(not names & other for other in shown[:i])
        boxes = [target["footprint"], *(d["footprint"] for d in sample["distractors"])]
        for i, a in enumerate(boxes):  # footprints never overlap
            for b in boxes[:i]:
                assert a[2] + GAP - 0.01 <= b[0] or b[2] + GAP - 0.01 <= a[0] or a[3] + GAP - 0.01 <= b[1] or (
                    b[3] + GAP - 0.01 <= a[1]
                )


def _names(obj: dict) -> set:
    return {(obj["shape"], color) for color in (obj["color"], obj.get("new_color")) if color}


def test_build_grounding_ft_makes_mr_records_with_existing_videos(bench):
    out, _ = bench
    source = GroundingSource("charades_sta", out / "charades_sta_train.txt", out / "videos")
    dataset, skipped = build_grounding_ft([source], tasks=["mr"], check_videos=True)
    assert not skipped and len(dataset) == COUNTS["num_train"]
    loaded = load_annotations("charades_sta", out / "charades_sta_train.txt").records
    for row, record in zip(dataset, loaded):
        assert row["task"] == "mr" and Path(row["videos"][0]).is_file()
        (start, end), = record.windows
        assert row["messages"][1]["content"][0]["text"] == f"from {start:.1f}s to {end:.1f}s"
        assert record.query.rstrip(".") in row["messages"][0]["content"][1]["text"]


# --- pixel oracle: the event is visible on exactly the frames of the window ----------------------------------------


def _region(frames: np.ndarray, footprint) -> np.ndarray:
    x0, y0, x1, y1 = footprint
    return frames[:, max(math.floor(y0), 0) : math.ceil(y1), max(math.floor(x0), 0) : math.ceil(x1)]


def _foreground(region: np.ndarray) -> np.ndarray:
    return region.max(axis=-1) >= FOREGROUND


def _centroid(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    return np.array([xs.mean(), ys.mean()])


def _check_event(frames: np.ndarray, sample: dict, fps: float) -> None:
    target, n = sample["target"], len(frames)
    k0, k1 = (round(t * fps) for t in sample["window"])
    inside = np.zeros(n, dtype=bool)
    inside[k0:k1] = True
    region = _region(frames, target["footprint"])
    event = sample["event"]
    if event in ("appear", "disappear"):
        # Pixels of the target's colour (codec drift tolerated) exactly while it is visible.
        near = (np.abs(region - np.array(COLORS[target["color"]])).max(axis=-1) < 40).mean(axis=(1, 2))
        visible = inside if event == "appear" else ~inside
        assert near[visible].min() > 0.15 and near[~visible].max() < 0.01
        return
    # Gradual events: the target changes from one frame to the next exactly inside the window.
    if LOSSLESS:
        changed = np.abs(region[1:] - region[:-1]).max(axis=(1, 2, 3)) > 1
        np.testing.assert_array_equal(changed, inside[1:])
    before, after = region[max(k0 - 1, 0)], region[-1] if k1 >= n else region[k1]
    fg_before, fg_after = _foreground(before), _foreground(after)
    if event == "move":
        shift = _centroid(fg_after) - _centroid(fg_before)
        unit = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}[target["direction"]]
        assert np.dot(shift, unit) > 0.25 * 112 and abs(shift[0] * unit[1] - shift[1] * unit[0]) < 2
        assert target["direction"] in sample["query"]
    elif event in ("grow", "shrink"):
        ratio = fg_after.sum() / fg_before.sum()
        assert ratio > 2 if event == "grow" else ratio < 0.5  # sizes change 1.6x: areas 2.56x
    else:
        old, new = np.array(COLORS[target["color"]]), np.array(COLORS[target["new_color"]])
        assert np.abs(np.median(before[fg_before], axis=0) - old).max() < 40
        assert np.abs(np.median(after[fg_after], axis=0) - new).max() < 40
        assert target["new_color"] in sample["query"]


@pytest.mark.parametrize("event", EVENT_TYPES)
def test_pixel_oracle_finds_the_event_window(event, tmp_path):
    make_synthetic_benchmark(tmp_path, seed=3, num_train=2, num_val=0, num_test=1, event_types=[event], **SMALL)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    for sample in manifest["samples"]:
        assert sample["event"] == event
        frames = _frames(tmp_path / "videos" / f"{sample['video_id']}.mp4")
        assert len(frames) == sample["num_frames"]
        _check_event(frames, sample, manifest["settings"]["fps"])


# --- command line -----------------------------------------------------------------------------------------------


def test_cli_writes_and_refuses_bad_arguments(tmp_path, capsys):
    out = tmp_path / "cli"
    args = [str(out), "--num-train", "1", "--num-val", "0", "--num-test", "1", "--duration", "8", "9"]
    assert main(args) == 0
    assert "Wrote 1 train, 0 val, 1 test videos" in capsys.readouterr().out
    assert sorted(p.name for p in (out / "videos").iterdir()) == ["syn_test_00000.mp4", "syn_train_00000.mp4"]

    assert main(args) == 2
    assert "--overwrite" in capsys.readouterr().err
    (out / "notes.txt").write_text("mine")
    assert main([*args[:2], "2", *args[3:], "--overwrite"]) == 0
    assert (out / "notes.txt").read_text() == "mine"  # --overwrite only replaces what the generator writes
    assert len(list((out / "videos").iterdir())) == 3

    bad = {
        "--num-train -1": "num_train",
        "--num-train 0 --num-val 0 --num-test 0": "Nothing to generate",
        "--event-types explode": "event_types",
        "--window-ratio 0.5 1.0": "window_ratio",
        "--size 113 112": "size",
        "--crf 60": "crf",
    }
    for extra, message in bad.items():
        assert main([str(tmp_path / "bad"), *extra.split()]) == 2, extra
        err = capsys.readouterr().err
        assert err.startswith("error:") and message in err, (extra, err)
    assert not (tmp_path / "bad").exists()  # bad settings write nothing


def test_module_runs_as_a_script(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "groundvts.scripts.cli.make_synthetic", str(tmp_path / "x"), "--num-train", "-2"],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2 and "num_train" in done.stderr and "Traceback" not in done.stderr


def test_query_vocabulary_covers_every_generated_query():
    import random

    from groundvts.scripts.data.synthetic.scenes import SceneConfig, query_for, query_vocabulary, sample_scene

    vocabulary = set(query_vocabulary())
    config = SceneConfig(min_duration=8.0, max_duration=12.0).validate()
    rng = random.Random(3)
    for index in range(60):
        scene = sample_scene(rng, config, EVENT_TYPES[index % len(EVENT_TYPES)])
        assert scene.query in vocabulary
        for obj in (scene.target, *(d for d in scene.objects if d.event)):
            assert query_for(random.Random(index), obj) in vocabulary
