"""Decoded videos kept for the next question about them.

Benchmarks ask several questions per video (Charades-STA, QVHighlights, NExT-GQA) and `groundvts infer` runs up to
two passes per question; without this, every question and pass decodes its video again. `DecodedVideoCache` holds
the frames a processor keeps of a file (`processor.sample_videos`) and their metadata, keyed by the file (resolved
path, size, modification time: an edited file is decoded again) and the frame-sampling settings, least recently used
first out once the frames exceed `max_bytes`.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

__all__ = ["DecodedVideoCache"]


class DecodedVideoCache:
    """(frames, metadata) of sampled video files, bounded by the frames' bytes; counts decodes and hits."""

    def __init__(self, max_bytes: int):
        if max_bytes < 0:
            raise ValueError(f"The decoded-video cache size must be >= 0 bytes, got {max_bytes}.")
        self.max_bytes = max_bytes
        self.decodes = 0  # files decoded (cache misses)
        self.hits = 0
        self._entries: OrderedDict[tuple, tuple[Any, Any, int]] = OrderedDict()
        self._bytes = 0

    @staticmethod
    def supports(processor: Any) -> bool:
        """Processors saved before `sample_videos` existed decode inside their call: nothing to reuse."""
        return callable(getattr(processor, "sample_videos", None))

    def sampled(self, processor: Any, path: str, sampling: Mapping[str, Any]) -> tuple[Any, Any]:
        """The frames `processor` keeps of the video at `path` with the frame-sampling arguments `sampling` (e.g.
        fps or num_frames), and their metadata: decoded on the first request, reused after."""
        stat = os.stat(path)
        key = (os.path.realpath(path), stat.st_size, stat.st_mtime_ns, tuple(sorted(sampling.items())))
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            self.hits += 1
            return entry[0], entry[1]
        frames, metadata = processor.sample_videos([path], **sampling)
        self.decodes += 1
        frames, metadata = frames[0], metadata[0]
        size = int(getattr(frames, "nbytes", 0))
        if size <= self.max_bytes:
            self._entries[key] = (frames, metadata, size)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, (_, _, evicted) = self._entries.popitem(last=False)
                self._bytes -= evicted
        return frames, metadata

    def __len__(self) -> int:
        return len(self._entries)
