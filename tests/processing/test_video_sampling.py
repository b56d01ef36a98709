"""Frame sampling keeps the true time of every frame; bad videos fail with errors that name them."""

import numpy as np
import pytest
import torch

from groundvts.processing.tiny import frame_gray_value, write_test_video
from groundvts.processing.video_sampling import (
    fps_sample_indices,
    prepare_videos,
    segment_center_indices,
    uniform_step_indices,
)


def gray_frames(count: int, height: int = 8, width: int = 8) -> np.ndarray:
    """Frames whose gray level tells their index."""
    return np.stack([np.full((height, width, 3), frame_gray_value(i), np.uint8) for i in range(count)])


def frame_indices_of(frames) -> list[int]:
    """Recover source indices from decoded gray levels (within the codec's ±3)."""
    levels = [frame_gray_value(i) for i in range(30)]
    means = [float(np.asarray(frame, dtype=np.float64).mean()) for frame in frames]
    return [int(np.argmin([abs(mean - level) for level in levels])) for mean in means]


@pytest.mark.parametrize(
    ("total", "native_fps", "target_fps", "max_frames", "expected"),
    [
        (16, 2.0, 2.0, 768, list(range(16))),  # same rate: every frame
        (8, 1.0, 2.0, 768, list(range(8))),  # cannot go faster than the source
        (24, 4.0, 2.0, 768, list(range(0, 24, 2))),  # halve the rate
        (40, 4.0, 1.0, 768, list(range(0, 40, 4))),
        (20, 2.0, 2.0, 8, [0, 2, 5, 7, 10, 12, 15, 17]),  # capped: constant step of 2.5 source frames
        (9, 1.0, 1.0, 768, [0, 1, 2, 3, 4, 5, 6, 7]),  # odd count floored to whole temporal patches
        (2, 1.0, 2.0, 768, [0, 1]),  # min_frames cannot exceed the source
        (1, 1.0, 2.0, 768, [0]),
    ],
)
def test_fps_sample_indices(total, native_fps, target_fps, max_frames, expected):
    assert fps_sample_indices(total, native_fps, target_fps, max_frames=max_frames) == expected


def test_min_frames_raises_the_count_for_short_videos():
    # 1 s at 2 fps would be 2 frames; min_frames=4 keeps 4 of the 30 source frames.
    assert fps_sample_indices(30, 30.0, 2.0, min_frames=4) == [0, 7, 15, 22]


def test_uniform_and_segment_indices():
    assert uniform_step_indices(10, 4) == [0, 2, 5, 7]
    assert uniform_step_indices(3, 8) == [0, 1, 2]
    assert segment_center_indices(16, 4) == [2, 6, 10, 14]
    assert segment_center_indices(3, 4) == [0, 1, 1, 2]  # short videos repeat frames


def test_path_is_decoded_at_the_chosen_frames_with_repeats(videos):
    frames, metadata = prepare_videos(str(videos["2fps"]), choose_indices=lambda total, fps: [1, 3, 3, 14])
    assert frame_indices_of(frames[0]) == [1, 3, 3, 14]
    assert metadata[0].fps == 2.0 and metadata[0].total_num_frames == 16
    assert metadata[0].frames_indices == [1, 3, 3, 14]
    assert metadata[0].timestamps == [0.5, 1.5, 1.5, 7.0]


def test_frames_with_fps_are_sampled_and_keep_source_indices():
    choose = lambda total, fps: fps_sample_indices(total, fps, 2.0)  # noqa: E731
    frames, metadata = prepare_videos([gray_frames(12)], [{"fps": 6.0, "total_num_frames": 12}], choose)
    assert frame_indices_of(frames[0]) == [0, 3, 6, 9]
    assert metadata[0].frames_indices == [0, 3, 6, 9]
    assert metadata[0].sampled_fps == pytest.approx(2.0)


def test_presampled_frames_are_used_as_given():
    metadata = {"fps": 30.0, "total_num_frames": 300, "frames_indices": [0, 15, 30, 45]}
    frames, out = prepare_videos(torch.from_numpy(gray_frames(4)), metadata, lambda total, fps: [0])
    assert len(frames[0]) == 4 and out[0].frames_indices == [0, 15, 30, 45]
    assert out[0].timestamps == [0.0, 0.5, 1.0, 1.5]


def test_frames_without_metadata_assume_the_given_rate():
    frames, metadata = prepare_videos(gray_frames(6), None, None, assumed_fps=2.0)
    assert len(frames[0]) == 6 and metadata[0].fps == 2.0 and metadata[0].sampled_fps == 2.0


def test_missing_file_names_the_path(tmp_path):
    missing = tmp_path / "nowhere.mp4"
    with pytest.raises(FileNotFoundError, match="nowhere.mp4"):
        prepare_videos(str(missing))


def test_corrupt_file_names_the_path(tmp_path):
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"this is not a video" * 50)
    with pytest.raises(ValueError, match="corrupt.mp4"):
        prepare_videos(str(corrupt))
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty.mp4"):
        prepare_videos(str(empty))


def test_video_file_without_frames(tmp_path):
    path = write_test_video(tmp_path / "no_frames.mp4", num_frames=0, fps=2.0)
    with pytest.raises(ValueError, match=r"no_frames\.mp4.*(no frames|zero frames)"):
        prepare_videos(str(path))


@pytest.mark.parametrize(
    ("videos_arg", "metadata", "message"),
    [
        (np.zeros((0, 8, 8, 3), np.uint8), None, "zero frames"),
        ([], None, "empty"),
        (gray_frames(4), {"fps": 0.0, "total_num_frames": 4}, r"video_metadata\[0\]\.fps"),
        (gray_frames(4), {"fps": -2.0}, "must be a number > 0"),
        (gray_frames(4), {"fps": 2.0, "total_num_frames": 9}, "total_num_frames=9"),
        (gray_frames(4), {"fps": 2.0, "frames_indices": [0, 1]}, "frames_indices"),
        ([gray_frames(4), gray_frames(4)], [{"fps": 2.0}], "one per video"),
    ],
)
def test_bad_frame_inputs(videos_arg, metadata, message):
    with pytest.raises(ValueError, match=message):
        prepare_videos(videos_arg, metadata, None, assumed_fps=2.0)
