"""`groundvts benchmark-decode`: a tiny grid runs end to end (videos cached, every method in its own process, frames
checked equal to the sequential ones, JSON + table + goal lines); bad grids are usage errors."""

import json

import pytest

from groundvts.scripts.cli import benchmark_decode
from groundvts.scripts.perf.decode import DecodeBenchSettings, ensure_video, goal_checks, video_path


def test_tiny_grid_end_to_end(tmp_path, capsys):
    argv = ["--minutes", "0.05", "0.1", "--resolutions", "480p", "--gops", "30", "--frames", "8",
            "--methods", "sequential", "seek", "seek-packet-index", "seek-no-skip",
            "--cold", "--workdir", str(tmp_path / "videos"), "--out", str(tmp_path / "b.json")]
    assert benchmark_decode.main(argv) == 0
    out = capsys.readouterr().out
    report = json.loads((tmp_path / "b.json").read_text())
    assert [row["minutes"] for row in report["rows"]] == [0.05, 0.1] and report["settings"]["cold"] is True
    for row in report["rows"]:
        assert row["seek"]["num_frames"] == round(row["minutes"] * 60 * 30)
        assert row["same_frames"] == {"sequential": True, "seek": True, "seek-packet-index": True, "seek-no-skip": True}
        # Both ways of reading the timestamps are timed (the sample table's is the shipped default).
        assert row["seek"]["index_seconds"] > 0 and row["seek-packet-index"]["index_seconds"] > 0
        assert row["seek"]["seconds"] > 0 and row["sequential"]["peak_mb"] >= 0
        assert row["seek"]["decoded"] < row["seek-no-skip"]["decoded"]  # non-reference frames skipped
        assert row["sequential"]["decoded"] is None and row["repeated"] is False
    assert video_path(tmp_path / "videos", 0.1, "480p", 30).is_file()  # cached for the next run
    assert "| 480p | 30 | 0.1 | encoded | 180 |" in out and "480p GOP 30: seek 0.05 -> 0.1 min grows" in out
    assert "480p GOP 30: seek-no-skip 0.05 -> 0.1 min grows" in out and ", decoded frames " in out
    assert report["goal_checks"] and "goal >= 10x" in report["goal_checks"][0]


def test_long_videos_repeat_a_shorter_one_unless_encode_all(tmp_path):
    import numpy as np

    from groundvts.processing.tiny import frame_gray_value
    from groundvts.processing.video_sampling import decode_video_frames, read_video_info

    short = ensure_video(tmp_path, 0.1, "480p", 30)  # 180 frames: 6 GOPs, 3 cycles of the content
    repeated = ensure_video(tmp_path, 0.2, "480p", 30)
    encoded = ensure_video(tmp_path, 0.2, "480p", 30, encode_all=True)
    assert short == video_path(tmp_path, 0.1, "480p", 30)
    assert repeated == video_path(tmp_path, 0.2, "480p", 30, repeated=True) != encoded
    assert encoded == video_path(tmp_path, 0.2, "480p", 30) and encoded.is_file()
    assert ensure_video(tmp_path, 0.2, "480p", 30) == encoded  # an encoded video is preferred once cached
    # The same structure and content as a direct encode (not bit-identical: x264's rate control carries over GOPs).
    infos = [read_video_info(str(path)) for path in (repeated, encoded)]
    assert [info.num_frames for info in infos] == [360, 360]
    assert infos[0].stream_index.keyframe_pts == infos[1].stream_index.keyframe_pts
    indices = [0, 179, 180, 181, 359]
    frames = [decode_video_frames(str(path), indices, backend="pyav").astype(int) for path in (repeated, encoded)]
    assert np.abs(frames[0] - frames[1]).mean() < 2
    assert [float(f.mean()) for f in frames[0]] == pytest.approx([frame_gray_value(i % 60) for i in indices], abs=4)


def test_goal_checks_read_the_longest_and_shortest_lengths():
    rows = [
        {"resolution": "480p", "gop": 250, "minutes": m, "seek": {"seconds": s}, "sequential": {"seconds": q}}
        for m, s, q in [(1, 2.0, 3.0), (30, 5.0, 60.0)]
    ]
    (line,) = goal_checks(rows)
    assert "grows 2.50x (goal <= 2x: NOT met)" in line and "12.0x faster than sequential (goal >= 3x: met)" in line
    rows[0]["seek"]["decoded"], rows[1]["seek"]["decoded"] = 100, 840
    assert "decoded frames 8.40x" in goal_checks(rows)[0]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"minutes": []}, "--minutes"),
    ({"minutes": [-1.0]}, "must be > 0"),
    ({"resolutions": ["4k"]}, "unknown"),
    ({"methods": ["ffmpeg"]}, "unknown"),
    ({"frames": 0}, "--frames"),
])
def test_bad_settings_name_the_flag(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DecodeBenchSettings(**kwargs)
