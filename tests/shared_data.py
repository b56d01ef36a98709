"""Where the real benchmark annotation files are: `shared/data` beside the repository root (CI clones the
repository with `shared/` next to it); `GROUNDVTS_SHARED_DATA` points elsewhere."""

import os
from pathlib import Path

SHARED_DATA = Path(os.environ.get("GROUNDVTS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
