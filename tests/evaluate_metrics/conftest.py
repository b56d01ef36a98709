"""Fixtures for the evaluate metric tests: fresh metric instances and the shared real data."""

from pathlib import Path

import evaluate
import pytest
from shared_data import SHARED_DATA, require_shared

REPO_ROOT = Path(__file__).resolve().parents[2]
METRICS_DIR = REPO_ROOT / "evaluate_metrics"


@pytest.fixture
def load_metric():
    """A fresh metric instance per call, so no test sees another's accumulated inputs.

    `keep_in_memory=True` skips evaluate's cache-file lock: after a `_compute` that raises, evaluate
    keeps that lock, and the next instance waits 1 s for it before picking another file.
    """

    def _load(name: str, keep_in_memory: bool = True) -> evaluate.EvaluationModule:
        return evaluate.load(str(METRICS_DIR / name), keep_in_memory=keep_in_memory)

    return _load


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return require_shared(SHARED_DATA)
