"""The commands' one parser helper: flags from settings dataclasses, with the shapes the commands use."""

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from groundvts.scripts.cli._errors import run_command
from groundvts.scripts.cli._parser import CommandParser


@dataclass
class Demo:
    source: Path = field(metadata={"positional": True, "help": "input folder"})
    output: Path | None = field(default=None, metadata={"positional": True})
    rate: float = field(default=1.0, metadata={"help": "a rate"})
    fps: float | None = field(default=None, metadata={"exclusive": "sampling"})
    num_frames: int | None = field(default=None, metadata={"exclusive": "sampling"})
    task: str = field(default="mr", metadata={"choices": ("mr", "hd")})
    overwrite: bool = False
    progress: bool = field(default=True, metadata={"flag": "--no-progress"})
    tasks: list[str] = field(default_factory=lambda: ["mr"])

    def __post_init__(self):
        if self.rate <= 0:
            raise ValueError(f"--rate must be > 0, got {self.rate}")


def parse(argv):
    parser = CommandParser([Demo], prog="groundvts demo")
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    return parser.parse_command(argv)


def test_fields_become_flags_and_positionals():
    demo, extra = parse(["in", "out", "--rate", "2", "--overwrite", "--no-progress", "--tasks", "mr", "hd",
                         "--set", "a=1", "--set", "b=2"])
    assert demo == Demo(Path("in"), Path("out"), rate=2.0, overwrite=True, progress=False, tasks=["mr", "hd"])
    assert extra.overrides == ["a=1", "b=2"]
    demo, _ = parse(["in"])
    assert demo.output is None and demo.progress and not demo.overwrite and demo.fps is None


def test_a_switch_does_not_swallow_the_next_positional():
    demo, _ = parse(["--overwrite", "in"])
    assert demo.source == Path("in") and demo.overwrite


@pytest.mark.parametrize("argv", [["in", "--fps", "1", "--num-frames", "4"], ["in", "--task", "qa"], [],
                                  ["in", "--rate", "0"], ["in", "--rate", "abc"]])
def test_bad_usage_returns_2_with_argparse_message(argv, capsys):
    assert parse(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: groundvts demo") and "error:" in err


def test_help_returns_0_and_shows_dashed_flags_and_defaults(capsys):
    assert parse(["--help"]) == 0
    out = capsys.readouterr().out
    assert "--num-frames" in out and "--num_frames" not in out and "a rate (default: 1.0)" in out


def test_run_command_maps_expected_errors_and_keeps_bugs(capsys, monkeypatch):
    def bad_input():
        raise FileNotFoundError("clip.mp4 not found")

    assert run_command(bad_input) == 2
    assert capsys.readouterr().err == "error: clip.mp4 not found\n"
    monkeypatch.setenv("GROUNDVTS_DEBUG", "1")
    assert run_command(bad_input) == 2
    assert "Traceback" in capsys.readouterr().err
    with pytest.raises(KeyError):
        run_command(lambda: {}["bug"])
    assert run_command(lambda: None) == 0


def test_only_groundvts_input_errors_are_messages_other_libraries_errors_keep_their_traceback(capsys):
    import json
    from types import SimpleNamespace

    from groundvts.modeling.vts import validate_vts_config

    bad = SimpleNamespace(vts_keep_ratio=2.0, vts_strategy="token", vts_train_selection="gumbel",
                          vts_query_pooling="query_mask", vts_temperature=1.0, vts_gumbel_temperature=1.0,
                          vts_weight_temperature=1.0, vts_reduction_dim=8, vts_keep_positions=True)
    assert run_command(lambda: validate_vts_config(bad)) == 2
    assert capsys.readouterr().err.startswith("error: vts_keep_ratio")
    with pytest.raises(ValueError):  # a ValueError from deep inside another library is a bug, not bad input
        run_command(lambda: json.loads("{not json"))


def test_a_switch_that_defaults_to_true_is_a_no_flag():
    @dataclass
    class Progress:
        progress: bool = True

    parser = CommandParser([Progress], prog="groundvts demo")
    assert parser.parse_command(["--no-progress"])[0] == Progress(progress=False)
    assert parser.parse_command([])[0] == Progress(progress=True)
