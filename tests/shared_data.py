"""Where the shared benchmark files are: `shared/` beside the repository root (CI clones the repository with
`shared/` next to it). `GROUNDVTS_SHARED` moves the whole folder, `GROUNDVTS_SHARED_DATA` only the annotation files.

Outside CI a test that needs them skips with the reason; CI sets `GROUNDVTS_REQUIRE_SHARED=1` (.ci/run), so there a
missing file fails instead of passing silently."""

import os
from pathlib import Path

import pytest

SHARED_ROOT = Path(os.environ.get("GROUNDVTS_SHARED", Path(__file__).resolve().parents[2] / "shared"))
SHARED_DATA = Path(os.environ.get("GROUNDVTS_SHARED_DATA", SHARED_ROOT / "data"))
SHARED_FIXTURES = SHARED_ROOT / "fixtures"


def require_shared(path: Path) -> Path:
    """`path` if it exists; otherwise skip the test (fail where CI requires the shared files)."""
    if path.exists():
        return path
    message = f"needs {path.resolve()} (the shared benchmark files beside the repository)"
    if os.environ.get("GROUNDVTS_REQUIRE_SHARED") == "1":
        pytest.fail(f"{message}; GROUNDVTS_REQUIRE_SHARED=1 says they must be present", pytrace=False)
    pytest.skip(message)
