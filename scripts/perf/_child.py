"""The child process of the perf harness: run one variant of one benchmark and print its result as a JSON line.

Not a command and not for users: `harness.run_in_children` starts it as

    python -m groundvts.scripts.perf._child BENCHMARK_MODULE VARIANT SETTINGS_JSON

with SETTINGS_JSON the `PerfSettings` fields, so that each variant's peak memory is its own process's.
"""

from __future__ import annotations

import importlib
import json
import sys

from groundvts.scripts.perf.harness import PerfSettings, run_variant

if __name__ == "__main__":
    benchmark, variant, settings = sys.argv[1], sys.argv[2], PerfSettings(**json.loads(sys.argv[3]))
    print(json.dumps(run_variant(importlib.import_module(benchmark), variant, settings)))
