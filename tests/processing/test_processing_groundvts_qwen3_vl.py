"""The GroundVTS-Q3 processor: Qwen3-VL's `<t seconds>` text before every temporal patch carries the true time of an
event at a known second (constant 23.976 / 29.97 / 30 fps and variable-rate files, sampled at 1, 2 and 4 fps or
capped by max_frames), `video_token_times` puts every visual token at its patch's time, frames without an fps are
refused, and `query_mask` marks the question."""

import re

import numpy as np
import pytest
import torch
from processing_test_utils import masked_token_ids, plain_token_ids, qwen_frame_brightness, video_turn
from timing_videos import EVENT_START, max_gap, write_event_video

from groundvts.processing.processing_groundvts_qwen3_vl import patch_timestamps, video_token_times
from groundvts.processing.tiny import write_test_video

SOURCES = {"23.976": 23.976, "29.97": 29.97, "30": 30.0, "vfr": None}
CASES = [(source, fps, None) for source in SOURCES for fps in (1.0, 2.0, 4.0)]
CASES += [(source, 2.0, 4) for source in SOURCES]
MARKER = re.compile(r"<(\d+\.\d) seconds><\|vision_start\|>")


@pytest.fixture(scope="module")
def event_videos(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("q3_event_videos")
    return {name: write_event_video(folder, fps) for name, fps in SOURCES.items()}


def prompt(processor, question: str = "When does it light up?") -> str:
    return processor.apply_chat_template([video_turn(question)], tokenize=False, add_generation_prompt=True)


@pytest.mark.parametrize(("source", "target_fps", "max_frames"), CASES)
def test_event_second_reaches_the_timestamp_text_and_token_times(
    qwen3_processor, event_videos, source, target_fps, max_frames
):
    path, true_times = event_videos[source]
    cap = {} if max_frames is None else {"max_frames": max_frames}
    outputs = qwen3_processor(
        text=[prompt(qwen3_processor)], videos=[str(path)], fps=target_fps, return_tensors="pt",
        return_metadata=True, **cap,
    )
    metadata = outputs["video_metadata"][0]
    kept = len(metadata.frames_indices)
    grid_t = int(outputs["video_grid_thw"][0][0])
    if max_frames is not None:
        assert kept == max_frames and metadata.frames_capped
    assert grid_t == (kept + 1) // 2

    # The text says, before every temporal patch, the mean true time of its two frames (the file's own times).
    text = qwen3_processor.tokenizer.decode(outputs["input_ids"][0])
    written = [float(t) for t in MARKER.findall(text)]
    frame_times = [true_times[i] for i in metadata.frames_indices]
    frame_times += frame_times[-1:] * (kept % 2)
    expected = [(frame_times[2 * k] + frame_times[2 * k + 1]) / 2 for k in range(grid_t)]
    assert written == pytest.approx(expected, abs=0.05 + 2e-3)
    assert written == sorted(written) and len(set(written)) == grid_t
    if source == "vfr":  # stock Qwen3-VL's index / fps would be far off for this file
        stock = qwen3_processor._calculate_timestamps(list(metadata.frames_indices), metadata.fps, 2)
        assert max(abs(a - b) for a, b in zip(stock, expected)) > 0.5

    # The pixels say which patch first shows the event; its timestamp is that close to the event's second.
    bright = [value > 0 for value in qwen_frame_brightness(outputs, qwen3_processor)][:kept]
    first = bright.index(True)
    assert bright == [False] * first + [True] * (kept - first)
    patch = first // 2
    spacing = (frame_times[-1] - frame_times[0]) / max(kept - 1, 1)  # one sampled-frame interval
    assert abs(written[patch] - EVENT_START) <= spacing + max_gap(true_times) + 0.05

    # token_times: one [start, end) row per <|video_pad|>, each patch from its first frame to the next patch's.
    times = video_token_times(metadata, outputs["video_grid_thw"][0])
    n_video = int((outputs["mm_token_type_ids"][0] == 2).sum())
    assert times.shape == (n_video, 2)
    per_patch = times.view(grid_t, -1, 2)
    assert (per_patch == per_patch[:, :1]).all()
    starts, ends = per_patch[:, 0, 0], per_patch[:, 0, 1]
    assert torch.equal(starts[1:], ends[:-1]) and float(starts[0]) == pytest.approx(frame_times[0], abs=2e-3)
    assert float(ends[-1]) == pytest.approx(metadata.duration, abs=1e-6)
    assert float(starts[patch]) <= true_times[metadata.frames_indices[first]] + 2e-3 < float(ends[patch])
    assert float(starts[patch]) <= written[patch] < float(ends[patch])


def test_patch_timestamps_follow_qwen3_vl_formula_for_constant_rate(qwen3_processor, event_videos):
    """For a constant-rate file the true times are index / fps: the same seconds stock Qwen3-VL writes."""
    path, _ = event_videos["29.97"]
    outputs = qwen3_processor(text=[prompt(qwen3_processor)], videos=[str(path)], return_metadata=True)
    metadata = outputs["video_metadata"][0]
    stock = qwen3_processor._calculate_timestamps(list(metadata.frames_indices), metadata.fps, 2)
    assert patch_timestamps(metadata, 2) == pytest.approx(stock, abs=1e-9)


def test_frames_without_fps_are_refused_with_the_fix(qwen3_processor):
    frames = np.zeros((8, 32, 32, 3), np.uint8)
    with pytest.raises(ValueError, match=r"Video 0 was given as frames without an fps.*video_metadata"):
        qwen3_processor(text=[prompt(qwen3_processor)], videos=[frames])
    # With the fps the timestamps follow it: 8 frames at 4 fps sampled at 2 fps -> frames 0, 2, 4, 6.
    outputs = qwen3_processor(
        text=[prompt(qwen3_processor)], videos=[frames], video_metadata=[{"fps": 4.0}], return_metadata=True
    )
    text = qwen3_processor.tokenizer.decode(outputs["input_ids"][0])
    assert [float(t) for t in MARKER.findall(text)] == [0.2, 1.2]  # (0 + 0.5) / 2 = 0.25, (1.0 + 1.5) / 2 = 1.25


def test_query_mask_marks_the_question_only(qwen3_processor, event_videos):
    question = "When does it light up?"
    outputs = qwen3_processor(
        text=[prompt(qwen3_processor, question)], videos=[str(event_videos["30"][0])], return_tensors="pt"
    )
    assert masked_token_ids(outputs) == plain_token_ids(qwen3_processor.tokenizer, question)
    assert "second" not in qwen3_processor.tokenizer.decode(masked_token_ids(outputs))


@pytest.mark.parametrize("fps", [1.0, 4.0])
def test_max_pixels_bounds_each_frame_whatever_the_frame_count(qwen3_processor, tmp_path, fps):
    """As for GroundVTS-Q (and the recipes' `video_max_pixels`), a call's max_pixels is per frame: 32x32 px is one
    merged token per temporal patch at 1 fps and at 4 fps alike; the saved settings are left as they were."""
    video = str(write_test_video(tmp_path / "large.mp4", num_frames=48, fps=8.0, size=(128, 128)))  # 6 s
    saved = qwen3_processor.video_processor.max_video_tokens
    outputs = qwen3_processor(text=[prompt(qwen3_processor)], videos=[video], fps=fps, max_pixels=32 * 32)
    t, h, w = (int(v) for v in outputs["video_grid_thw"][0])
    assert h * w // 4 == 1 and t == round(6 * fps / 2)
    assert qwen3_processor.video_processor.max_video_tokens == saved
    default = qwen3_processor(text=[prompt(qwen3_processor)], videos=[video], fps=fps)
    assert int(default["video_grid_thw"][0][1:].prod()) > h * w  # without the bound: the saved per-video budget
