import os

# Tests never touch the network: tiny models, tokenizers and videos are built locally.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import sys
from pathlib import Path

# Shared test utilities (e.g. `isolated.run_isolated`) live next to this file.
sys.path.insert(0, str(Path(__file__).parent))
