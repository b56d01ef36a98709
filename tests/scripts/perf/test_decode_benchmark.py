"""`groundvts benchmark-decode`: a tiny grid runs end to end (videos cached, every method in its own process, frames
checked equal to the sequential ones, JSON + table + goal lines); bad grids are usage errors."""

import json

import pytest

from groundvts.scripts.cli import benchmark_decode
from groundvts.scripts.perf.decode import DecodeBenchSettings, goal_checks, video_path


def test_tiny_grid_end_to_end(tmp_path, capsys):
    argv = ["--minutes", "0.05", "0.1", "--resolutions", "480p", "--gops", "30", "--frames", "8",
            "--methods", "sequential", "seek", "--workdir", str(tmp_path / "videos"), "--out", str(tmp_path / "b.json")]
    assert benchmark_decode.main(argv) == 0
    out = capsys.readouterr().out
    report = json.loads((tmp_path / "b.json").read_text())
    assert [row["minutes"] for row in report["rows"]] == [0.05, 0.1]
    for row in report["rows"]:
        assert row["seek"]["num_frames"] == round(row["minutes"] * 60 * 30)
        assert row["same_frames"] == {"sequential": True, "seek": True}
        assert row["seek"]["seconds"] > 0 and row["sequential"]["peak_mb"] >= 0
    assert video_path(tmp_path / "videos", 0.1, "480p", 30).is_file()  # cached for the next run
    assert "| 480p | 30 | 0.1 | 180 |" in out and "480p GOP 30: seek 0.05 -> 0.1 min grows" in out
    assert report["goal_checks"] and "goal >= 10x" in report["goal_checks"][0]


def test_goal_checks_read_the_longest_and_shortest_lengths():
    rows = [
        {"resolution": "480p", "gop": 250, "minutes": m, "seek": {"seconds": s}, "sequential": {"seconds": q}}
        for m, s, q in [(1, 2.0, 3.0), (30, 5.0, 60.0)]
    ]
    (line,) = goal_checks(rows)
    assert "grows 2.50x (goal <= 2x: NOT met)" in line and "12.0x faster than sequential (goal >= 3x: met)" in line


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
