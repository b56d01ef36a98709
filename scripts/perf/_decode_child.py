"""The child process of the decode benchmark: one measurement, printed as a JSON line.

Not a command and not for users: `perf.decode` starts it as

    python -m groundvts.scripts.perf._decode_child METHOD VIDEO FRAMES REPEATS [cold]

so that each measurement's peak memory is its own process's.
"""

from __future__ import annotations

import json
import sys

from groundvts.scripts.perf.decode import measure

if __name__ == "__main__":
    method, video, frames, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    cold = sys.argv[5:] == ["cold"]
    print(json.dumps(measure(method, video, frames, repeats, cold)))
