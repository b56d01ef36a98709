"""The public Python API is importable from `groundvts.scripts`, without importing torch until it is used."""

import subprocess
import sys

import groundvts.scripts as api


def test_every_public_name_resolves():
    for name in api.__all__:
        assert getattr(api, name) is not None, name


def test_importing_the_api_and_cli_help_do_not_import_torch():
    code = ("import sys, groundvts.scripts, groundvts.scripts.cli as cli; cli.usage(); "
            "assert 'torch' not in sys.modules, 'torch imported'; print('ok')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr
