"""scripts/cli: `groundvts <command> --help` works for every command and developer tool; bad commands exit 2."""

import importlib
import importlib.util
import os
import subprocess
import sys

import pytest

from groundvts.scripts import cli

PRESENT = list(cli.SUBCOMMANDS)


def _exit_code(argv):
    try:
        return cli.main(argv)
    except SystemExit as stop:  # what the console script would exit with
        return stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)


def test_every_command_is_a_module_of_the_cli_package_named_after_it():
    for name, (module, _) in cli.SUBCOMMANDS.items():
        assert module == f"groundvts.scripts.cli.{name.replace('-', '_')}"
        assert importlib.util.find_spec(module) is not None, module


@pytest.mark.parametrize("tool", sorted(cli.TOOLS))
def test_tool_help_exits_0(tool, capsys):
    module = importlib.import_module(f"groundvts.scripts.cli.{tool}")
    try:
        code = module.main(["--help"])
    except SystemExit as stop:
        code = stop.code
    assert code in (0, None) and "usage" in capsys.readouterr().out.lower()


@pytest.mark.parametrize("command", PRESENT)
def test_help_exits_0(command, capsys):
    assert _exit_code([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert "usage" in out.lower()
    if command in ("ground", "infer", "evaluate"):
        assert f"groundvts {command}" in out  # the module docstring is the help text


def test_top_level_help_and_unknown_command(capsys):
    assert cli.main([]) == 0 and "infer" in capsys.readouterr().out
    assert cli.main(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err


def test_module_entry_point_exits_2_without_a_traceback():
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "groundvts.scripts.cli", "ground", "--video", "x.mp4", "--query", "q"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2 and "x.mp4" in proc.stderr and "Traceback" not in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "groundvts.scripts.cli", "ground", "--query", "q"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2 and "--demo" in proc.stderr and "Traceback" not in proc.stderr
