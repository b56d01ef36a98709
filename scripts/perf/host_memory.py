"""Peak host-memory growth of a measurement, for the benchmarks (`scripts/perf`)."""

from __future__ import annotations

import resource


class HostMemoryPeak:
    """Peak growth of this process's resident memory (bytes) from `start()` on.

    Reads Linux's per-process high-water mark (`VmHWM`), reset to the current RSS at `start()` (`clear_refs`), so
    neither an earlier peak of this process nor the parent's memory counts: `ru_maxrss` carries the parent's RSS over
    fork + exec, which made a child started by a large parent under-report. Elsewhere falls back to `ru_maxrss`
    growth."""

    def start(self) -> None:
        try:
            with open("/proc/self/clear_refs", "w") as refs:
                refs.write("5")  # reset the high-water mark to the current RSS
            self._base, self._proc = _status_kib("VmRSS"), True
        except OSError:
            self._base, self._proc = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, False

    def growth(self) -> int:
        peak = _status_kib("VmHWM") if self._proc else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return (peak - self._base) * 1024  # both in KiB


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"/proc/self/status has no {field}")
