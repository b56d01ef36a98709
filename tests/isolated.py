"""Run Python code in a fresh process where the `groundvts` package cannot be imported.

This is how a Hub user meets our remote code: only the files saved next to the weights exist.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

_BLOCKER = """
import sys
class _BlockGroundVTS:
    def find_spec(self, name, path=None, target=None):
        if name == "groundvts" or name.startswith("groundvts."):
            raise ModuleNotFoundError(f"groundvts is deliberately not importable here ({name})")
        return None
sys.meta_path.insert(0, _BlockGroundVTS())
"""


def run_isolated(code: str, cwd: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run `code` with `groundvts` unimportable; raise with the child's output if it fails."""
    script = _BLOCKER + textwrap.dedent(code)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", HF_MODULES_CACHE=os.path.join(cwd, "hf_modules"))
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    if proc.returncode != 0:
        raise AssertionError(f"isolated process failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc
