"""scripts/output_paths.py and the commands that use it: a location that cannot be written fails before any work."""

import pytest

from groundvts.hub_configs import tiny_model_dir
from groundvts.scripts.cli import build_data, make_synthetic, release, train
from groundvts.scripts.output_paths import (
    DiskFullError, check_figure_path, check_new_folder, check_writable_file, disk_full_error,
)


@pytest.fixture
def locked(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    yield folder
    folder.chmod(0o755)


def test_checks_name_the_flag_and_the_fix(tmp_path, locked):
    with pytest.raises(PermissionError, match="--output .*read-only"):
        check_writable_file(locked / "a" / "b.jsonl", "--output")
    with pytest.raises(IsADirectoryError, match="give a file name"):
        check_writable_file(tmp_path, "--output")
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="is a file"):
        check_writable_file(tmp_path / "file" / "p.jsonl", "--output")
    with pytest.raises(ValueError, match=r"\.png"):
        check_figure_path(tmp_path / "plot.txt", "--plot")
    assert check_figure_path(tmp_path / "sub" / "plot.svg", "--plot").name == "plot.svg"
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(FileExistsError, match="--overwrite"):
        check_new_folder(tmp_path / "full", "--output")
    assert check_new_folder(tmp_path / "full", "--output", overwrite=True)
    assert isinstance(disk_full_error(OSError(28, "No space left"), tmp_path, "kept", "resume"), DiskFullError)
    other = OSError(5, "I/O error")
    assert disk_full_error(other, tmp_path, "kept", "resume") is other


def test_commands_refuse_a_read_only_output_before_working(tmp_path, locked, capsys):
    cases = {
        "make-synthetic": (make_synthetic.main, [str(locked / "syn"), "--num-train", "1", "--num-val", "0",
                                                 "--num-test", "0"]),
        "build-data": (build_data.main, ["--output", str(locked / "ft"), "--charades", str(tmp_path / "none.txt"),
                                         "--video-root", str(tmp_path)]),
        "train": (train.main, ["groundvts-q-stage3", "--set", f"training.output_dir={locked / 'out'}",
                               "--set", "training.use_cpu=true"]),
        "release": (release.main, [str(tiny_model_dir()), "--repo-id", "org/x", "--out-dir", str(locked / "rel"), "--dry-run"]),
    }
    for name, (main, argv) in cases.items():
        assert main(argv) == 2, name
        err = capsys.readouterr().err
        assert "read-only" in err and "Traceback" not in err, (name, err)
