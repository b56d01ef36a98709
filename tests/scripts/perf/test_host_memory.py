"""The benchmarks' host-memory peak counts what the measurement allocates, not an earlier, larger peak."""

import numpy as np

from groundvts.scripts.perf.host_memory import HostMemoryPeak


def touched(megabytes: int) -> np.ndarray:
    array = np.empty(megabytes * 2**20, dtype=np.uint8)
    array.fill(1)  # resident, not just reserved
    return array


def test_growth_counts_the_allocation_after_a_larger_earlier_peak():
    earlier = touched(300)
    del earlier  # the process's peak so far is ~300 MB above what it now holds
    memory = HostMemoryPeak()
    memory.start()
    kept = touched(100)
    growth = memory.growth() / 2**20
    assert 95 <= growth <= 160, growth  # ru_maxrss growth would read ~0 here
    assert kept.sum() == 100 * 2**20
