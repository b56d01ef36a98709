"""The time axis from file to M-RoPE: an event at a known second, in constant- and variable-frame-rate files,
sampled at 1, 2 and 4 fps or capped by max_frames, reaches the model at that second; frame caps are reported."""

import logging

import numpy as np
import pytest
from processing_test_utils import TOKENS_PER_SECOND, qwen_frame_brightness, video_temporal_ids, video_turn
from timing_videos import EVENT_START, cfr_frame_times, max_gap, vfr_frame_times, write_event_video

from groundvts.processing.tiny import build_tiny_internvl_processor
from groundvts.processing.video_sampling import frames_shown_at, prepare_videos, read_video_info

SOURCES = {"23.976": 23.976, "29.97": 29.97, "30": 30.0, "vfr": None}


@pytest.fixture(scope="module")
def event_videos(tmp_path_factory) -> dict:
    """name -> (path, true frame times) for every source of SOURCES."""
    folder = tmp_path_factory.mktemp("event_videos")
    return {name: write_event_video(folder, fps) for name, fps in SOURCES.items()}


def prompt(processor) -> str:
    turn = video_turn("When does it light up?")
    return processor.apply_chat_template([turn], tokenize=False, add_generation_prompt=True)


def test_file_frame_times_come_from_presentation_timestamps(event_videos):
    for name, fps in SOURCES.items():
        info = read_video_info(str(event_videos[name][0]))
        if fps is None:  # variable rate: every frame's own time; fps is the average rate
            assert info.frame_times == pytest.approx(vfr_frame_times(), abs=1e-6)
            assert info.fps == pytest.approx(info.num_frames / info.duration)
            assert info.duration == pytest.approx(vfr_frame_times()[-1] + 1 / 30, abs=1e-3)
        else:  # constant rate: unchanged, frame i at i / fps
            assert info.frame_times is None and info.fps == pytest.approx(fps, rel=1e-6)
            assert info.num_frames == len(cfr_frame_times(fps))


# (source, target fps, max_frames): every source at 1, 2 and 4 fps, and capped to 4 frames at 2 fps.
CASES = [(source, fps, None) for source in SOURCES for fps in (1.0, 2.0, 4.0)]
CASES += [(source, 2.0, 4) for source in SOURCES]


@pytest.mark.parametrize(("source", "target_fps", "max_frames"), CASES)
def test_event_second_reaches_the_m_rope_temporal_ids(
    qwen_processor, rope_model, event_videos, source, target_fps, max_frames
):
    path, true_times = event_videos[source]
    cap = {} if max_frames is None else {"max_frames": max_frames}
    outputs = qwen_processor(
        text=[prompt(qwen_processor)], videos=[str(path)], fps=target_fps, return_tensors="pt", return_metadata=True,
        **cap,
    )
    metadata = outputs["video_metadata"][0]
    second_per_grid = float(outputs["second_per_grid_ts"][0])
    interval = second_per_grid / 2  # one sampled-frame interval: a temporal grid holds 2 frames
    slack = max_gap(true_times)  # the frame on screen at a time began up to one source gap earlier
    kept = len(metadata.frames_indices)
    if max_frames is not None:
        assert kept == max_frames and metadata.frames_capped
    else:
        assert abs(kept - 6.0 * target_fps) <= 2 and not metadata.frames_capped

    # Which sampled frame first shows the event, read from the pixels the model gets.
    bright = [value > 0 for value in qwen_frame_brightness(outputs, qwen_processor)][:kept]
    first = bright.index(True)
    assert bright == [False] * first + [True] * (kept - first)

    # The reported times are the decoded frames' true times, evenly spaced as second_per_grid_ts says.
    times = metadata.timestamps
    assert times == pytest.approx([true_times[i] for i in metadata.frames_indices], abs=2e-3)
    assert times[first] >= EVENT_START - 1e-6 and (first == 0 or times[first - 1] < EVENT_START)
    for k, seconds in enumerate(times):
        assert k * interval - slack - 1e-6 <= seconds <= k * interval + 1e-6

    # M-RoPE: the grid holding the first event frame starts within one sampled-frame interval of the event's
    # second (plus one source gap, and one position step for the floor in the temporal id).
    ids = video_temporal_ids(rope_model, outputs)
    assert len(ids) == int(outputs["video_grid_thw"][0][0])
    grid_second = ids[first // 2] / TOKENS_PER_SECOND
    assert -(interval + 1 / TOKENS_PER_SECOND) - 1e-6 < grid_second - EVENT_START < interval + slack + 1e-6


def test_num_frames_respects_max_frames_and_says_so(qwen_processor, event_videos, caplog):
    path = str(event_videos["30"][0])  # 180 frames; the tiny processor caps at max_frames=32
    with caplog.at_level(logging.WARNING):
        outputs = qwen_processor(
            text=[prompt(qwen_processor)], videos=[path], num_frames=100_000, return_tensors="pt", return_metadata=True
        )
    metadata = outputs["video_metadata"][0]
    assert len(metadata.frames_indices) == 32 and int(outputs["video_grid_thw"][0][0]) == 16
    assert metadata.frames_capped and metadata.requested_frames == 100_000 and metadata.max_frames == 32
    assert "event_30fps.mp4" in caplog.text and "num_frames`=100000 exceeds max_frames=32" in caplog.text
    # An explicit, larger cap is honoured; below the cap nothing is flagged.
    wider = qwen_processor(
        text=[prompt(qwen_processor)], videos=[path], num_frames=64, max_frames=64, return_metadata=True
    )["video_metadata"][0]
    assert len(wider.frames_indices) == 64 and not wider.frames_capped


def test_decoded_frames_with_frame_times_are_sampled_by_time():
    times = vfr_frame_times()
    frames = np.zeros((len(times), 8, 8, 3), np.uint8)
    _, metadata = prepare_videos(
        frames, {"frame_times": [t + 10.0 for t in times]}, lambda total, fps: list(range(0, total, 20))
    )
    meta = metadata[0]
    # Times are counted from the first frame; slots of the index grid become the frames on screen at their time.
    slot = meta.duration / len(times)
    assert meta.frames_indices == frames_shown_at(times, [i * slot for i in range(0, len(times), 20)])
    assert meta.timestamps == pytest.approx([times[i] for i in meta.frames_indices])
    assert meta.fps == pytest.approx(len(times) / meta.duration)


@pytest.mark.parametrize(
    ("frame_times", "message"),
    [
        ([0.0, 0.5, 0.4, 1.0], "must not decrease"),
        ([0.0, 0.5], "one time per frame"),
        ([0.0, float("nan"), 1.0, 2.0], "finite seconds"),
    ],
)
def test_bad_frame_times_are_named(frame_times, message):
    with pytest.raises(ValueError, match=rf"video_metadata\[0\]\.frame_times.*{message}|{message}"):
        prepare_videos(np.zeros((4, 8, 8, 3), np.uint8), {"frame_times": frame_times}, None)


def test_frames_shown_at_picks_the_frame_on_screen():
    assert frames_shown_at([0.0, 0.2, 0.9, 1.0], [0.0, 0.19, 0.2, 0.5, 0.95, 7.0]) == [0, 0, 1, 1, 2, 3]


def test_internvl_segments_are_equal_in_time_for_variable_rate(event_videos):
    processor = build_tiny_internvl_processor(num_frames=4)
    path, true_times = event_videos["vfr"]
    outputs = processor(
        text=[prompt(processor)], videos=[str(path)], frame_timestamps=True, return_tensors="pt", return_metadata=True
    )
    metadata = outputs["video_metadata"][0]
    centres = [(k + 0.5) * metadata.duration / 4 for k in range(4)]  # 0.75, 2.25, 3.75, 5.25 s
    for centre, seconds in zip(centres, metadata.timestamps):
        assert centre - max_gap(true_times) <= seconds <= centre + 1e-6
    brightness = outputs["pixel_values"].mean(dim=(1, 2, 3))
    assert (brightness > 0).tolist() == [False, False, True, True]  # the event (3 s) is in the last two segments
    decoded = processor.tokenizer.decode(outputs["input_ids"][0])
    for index, seconds in enumerate(metadata.timestamps):
        assert f"Frame{index + 1} at {seconds:.1f}s:" in decoded


def test_internvl_frame_cap(event_videos, caplog):
    processor = build_tiny_internvl_processor(num_frames=4)
    with caplog.at_level(logging.WARNING):
        outputs = processor(
            text=[prompt(processor)], videos=[str(event_videos["30"][0])], num_frames=50, max_frames=6,
            return_metadata=True,
        )
    assert outputs["video_num_frames"] == [6] and outputs["video_metadata"][0].frames_capped
    assert "max_frames=6" in caplog.text
