"""`ground` end to end on the time axis: token times follow the true frame times (constant and variable frame
rate), the frame cap is reported, and spans changed to fit the video (clamped, swapped) are flagged."""

import json

import numpy as np
import pytest
from PIL import Image

from groundvts.processing.tiny import write_test_video
from groundvts.scripts.cli import ground as ground_cli
from groundvts.scripts.inference.grounding import describe, ground
from groundvts.scripts.inference.loading import load_groundvts
from inference_test_utils import script_answers, tiny_internvl_folder, tiny_model_folder
from timing_videos import EVENT_START, max_gap, write_event_video


@pytest.fixture(scope="module")
def loaded():
    return load_groundvts(tiny_model_folder(), device="cpu")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("time_axis")


@pytest.mark.parametrize(("source_fps", "target_fps"), [(29.97, 1.0), (23.976, 4.0), (None, 1.0), (None, 2.0)])
def test_token_times_follow_the_true_frame_times(loaded, folder, source_fps, target_fps):
    model, processor = loaded
    path, true_times = write_event_video(folder, source_fps)
    result = ground(model, processor, path, "the screen lights up", fps=target_fps, max_new_tokens=1)
    units, rows, cols = result.grid
    unit_starts = result.token_times[:: rows * cols, 0].tolist()
    interval = (result.unit_times[0, 1] - result.unit_times[0, 0]).item() / 2  # one sampled-frame interval
    assert max_gap(true_times) <= interval  # so "within one interval" covers the on-screen lag of VFR frames
    assert len(result.frame_times) == 2 * units
    for unit, (start, index) in enumerate(zip(unit_starts, result.unit_frame_indices)):
        # Each temporal patch's token time is where its first frame really is, within one sampled-frame interval.
        assert abs(start - true_times[index]) <= interval + 1e-6
        assert result.frame_times[2 * unit] == pytest.approx(true_times[index], abs=2e-3)
    first = next(k for k, seconds in enumerate(result.frame_times) if seconds >= EVENT_START - 1e-6)
    start, end = result.token_times[(first // 2) * rows * cols].tolist()
    assert start - interval <= EVENT_START <= end + interval


def test_internvl_frames_cover_their_true_times(folder):
    model, processor = load_groundvts(tiny_internvl_folder(), device="cpu")
    path, true_times = write_event_video(folder, None)
    result = ground(model, processor, path, "the screen lights up", max_new_tokens=1)
    times = [true_times[i] for i in result.unit_frame_indices]
    assert result.frame_times == pytest.approx(times, abs=2e-3)
    for (start, end), seconds in zip(result.unit_times.tolist(), times):
        assert start <= seconds <= end
    assert result.unit_times[-1, 1].item() == pytest.approx(result.duration)


def test_num_frames_beyond_the_cap_is_sampled_at_the_cap_and_reported(loaded, folder, capsys, monkeypatch):
    model, processor = loaded
    path, _ = write_event_video(folder, 30.0)  # 180 frames; the tiny processor's max_frames is 32
    result = ground(model, processor, path, "the screen lights up", num_frames=100_000, max_new_tokens=1)
    assert len(result.frame_times) == 32 and result.grid[0] == 16
    assert result.frames_capped and result.requested_frames == 100_000
    assert "note: sampled 32 frames, fewer than the 100000 asked" in describe(result)
    monkeypatch.setattr(ground_cli, "load_groundvts", lambda *a, **k: loaded)
    argv = ["--model", "tiny", "--video", str(path), "--query", "q", "--num-frames", "100000", "--max-new-tokens", "1"]
    assert ground_cli.main([*argv, "--json"]) == 0
    payload = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert payload["frames_capped"] and payload["requested_frames"] == 100_000 and len(payload["frame_times"]) == 32


def _still_image(path):
    Image.fromarray(np.full((32, 32, 3), 120, np.uint8)).save(path)
    return path


@pytest.mark.parametrize(
    ("kind", "answer", "span", "raw", "swapped"),
    [
        ("one frame", "from 2.0s to 5.0s", "end", (2.0, 5.0), False),  # all of it after the video: zero length
        ("0.2 s", "from 5s to 2s", "end", (5.0, 2.0), True),
        ("still image", "from -3s to 4s", "whole", (-3.0, 4.0), False),
    ],
)
def test_spans_outside_short_inputs_are_flagged(loaded, folder, kind, answer, span, raw, swapped):
    model, processor = loaded
    if kind == "one frame":
        path = write_test_video(folder / "one_frame.mp4", num_frames=1, fps=30.0, size=(32, 32))
    elif kind == "0.2 s":
        path = write_test_video(folder / "short.mp4", num_frames=6, fps=30.0, size=(32, 32))
    else:
        path = _still_image(folder / "still.png")
    script_answers(model, processor, lambda prompt: answer)
    try:
        result = ground(model, processor, path, "the screen lights up", max_new_tokens=1)  # answer scripted
    finally:
        del model.generate  # back to the class method
    duration = result.duration
    assert 0 < duration <= 0.2 + 1e-6
    assert result.span == ((duration, duration) if span == "end" else (0.0, duration))
    assert result.clamped and result.swapped == swapped and result.raw_span == raw
    payload = result.to_dict()
    assert payload["clamped"] and payload["swapped"] == swapped and payload["raw_span"] == list(raw)
    text = describe(result)
    assert f"note: the answer reached outside the video (0-{duration:.2f}s)" in text
    assert ("note: the answer gave the end before the start" in text) == swapped


def test_cli_text_and_json_carry_the_flags(loaded, folder, capsys, monkeypatch):
    model, processor = loaded
    path, _ = write_event_video(folder, 30.0)
    script_answers(model, processor, lambda prompt: "from 9s to -1s")
    monkeypatch.setattr(ground_cli, "load_groundvts", lambda *a, **k: (model, processor))
    try:
        argv = ["--model", "tiny", "--video", str(path), "--query", "q", "--max-new-tokens", "1"]
        assert ground_cli.main(argv) == 0
        out = capsys.readouterr().out
        assert "span: from 0.0s to 6.0s" in out and "said 9s to -1s" in out and "swapped" in out
        assert ground_cli.main([*argv, "--json"]) == 0
        payload = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    finally:
        del model.generate
    assert payload["span"] == [0.0, 6.0] and payload["clamped"] and payload["swapped"]
    assert payload["raw_span"] == [9.0, -1.0] and not payload["frames_capped"]
