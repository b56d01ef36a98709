"""Decode only the frames a processor keeps: seek to the keyframe before each one instead of decoding the whole file.

Frame `i` of a file is its i-th frame in presentation order, the numbering of `video_sampling` (frame times,
`frames_indices`) and of a sequential decode. `StreamIndex` tells each frame's presentation timestamp (PTS) and the
keyframes' PTS (`read_packet_stamps`, through `video_sampling.read_video_info`): derived from an MP4/MOV sample table
in milliseconds where it checks out, else read from every packet (which reads the whole file); with it
`decode_frames`

- with PyAV (default): sorts the wanted frames, seeks to the keyframe at or before each one unless it is already
  decoding that group of pictures, and decodes forward to the frame with that PTS, skipping the non-reference
  frames it does not keep (no other frame depends on them), with FFmpeg's frame threading. Time and memory grow
  with the kept frames and the keyframe interval, not with the video's length (apart from reading the packet
  index): only kept frames are converted to RGB, into one preallocated array;
- with torchcodec (`backend="torchcodec"`, when installed and it loads FFmpeg): its exact-seek decoder at the same
  indices. `backend=None`/"auto" is PyAV: it measured faster, with the same frames.

A seek that does not land where the index says (a broken index), on a frame the decoder cannot start from (an
open-GOP I-frame without a recovery point), or a stream whose packets carry no timestamps, falls back to decoding
from the start with a warning that says which and how to make the file seekable: slower, never a wrong frame. With an
index derived from the sample table, any such disagreement (or a packet whose PTS it does not list) raises
`IndexMismatch` instead: the frame times the caller sampled with may be off too, so it rereads the index from the
packets and chooses again (`video_sampling` does).
Other backend names go to transformers' `load_video` (sequential).

Hub-facing helper: copied next to the processors by `save_pretrained`, so it imports nothing from `groundvts`.
"""

import functools
from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from transformers.utils import logging
from transformers.video_utils import VideoMetadata, load_video


logger = logging.get_logger(__name__)

AUTO_BACKEND = "auto"
PYAV_BACKEND = "pyav"
TORCHCODEC_BACKEND = "torchcodec"


@dataclass(frozen=True)
class StreamIndex:
    """Where the frames of a file's first video stream are, in its own time base.

    `pts[i]`: presentation timestamp of frame i (increasing, one per frame); `keyframe_pts`: sorted PTS of the
    frames a decoder can start from (the packets' keyframe flags). `from_container`: derived from the container's
    sample table (`read_packet_stamps`) rather than read from every packet, so decoding checks it against the
    packets it reads and raises `IndexMismatch` where they disagree.
    """

    pts: list[int]
    keyframe_pts: list[int]
    from_container: bool = False
    # The frames before the first keyframe listed decode from a keyframe the edit list hides (a trim made without
    # re-encoding, `ffmpeg -ss T -i IN -c copy`): decoding from the start shows frame 0 first.
    hidden_start: bool = False


@dataclass(frozen=True)
class PacketStamps:
    """The timestamps of a stream's frames, in its time base: `pts` one per frame (None where a packet has none, any
    order), `keyframe_pts` of the keyframes, `last_duration` of the last frame shown (None if unknown), and whether
    they come from the container's sample table (`from_container`) or from reading every packet."""

    pts: list[int | None]
    keyframe_pts: list[int]
    last_duration: int | None
    from_container: bool = False
    # Frames before the first keyframe in decoding order (a cut without re-encoding): no decoder can show them.
    before_first_keyframe: int = 0
    # Frames the edit list hides (not in `pts`), and whether one of them is the keyframe the first shown ones need.
    hidden: int = 0
    hidden_start: bool = False


class IndexMismatch(Exception):
    """A stream index derived from the container's sample table disagrees with the packets decoded: the frame
    numbering (and so the frame times sampling chose from) may be off. Read the index from the packets instead
    (`read_packet_stamps(..., container_index=False)`) and choose the frames again."""


REMUX_ADVICE = "Remuxing it (`ffmpeg -i IN -c copy OUT.mp4`) rebuilds the index and makes it seekable."
REENCODE_ADVICE = (
    "Re-encoding it with closed groups of pictures (e.g. `ffmpeg -i IN -c:v libx264 -x264-params open-gop=0"
    " OUT.mp4`) makes it seekable; remuxing does not help."
)

START_ADVICE = "Re-encoding it (e.g. `ffmpeg -i IN -c:v libx264 OUT.mp4`) starts it with a keyframe."


class _SeekFailed(Exception):
    """Seeking could not be trusted to give the sequential frames; the caller decodes sequentially instead.

    `str(error)` says what happened, `advice` what makes the file seekable."""

    def __init__(self, what: str, advice: str = REMUX_ADVICE):
        super().__init__(what)
        self.advice = advice


def stream_index(stamps: PacketStamps) -> StreamIndex | None:
    """The index of a stream from its frames' PTS and keyframe PTS, or None when frames cannot be found by PTS
    (a packet without PTS, two frames with one PTS, no keyframe)."""
    if not stamps.pts or any(pts is None for pts in stamps.pts) or not (stamps.keyframe_pts or stamps.hidden_start):
        return None
    ordered = sorted(stamps.pts)
    if any(later == earlier for earlier, later in zip(ordered, ordered[1:])):
        return None
    return StreamIndex(ordered, sorted(stamps.keyframe_pts), stamps.from_container, stamps.hidden_start)


def read_packet_stamps(container: Any, stream: Any, container_index: bool = True) -> PacketStamps:
    """Every frame's PTS and the keyframes' of `stream`: from the container's sample table when it lists every
    frame and its timestamps check out (MP4/MOV; milliseconds for an hour-long file), else by reading every packet
    (`container_index=False` forces this; it reads the whole file)."""
    if container_index and _lists_every_frame(stream):
        derived = _container_index_stamps(container, stream)
        if derived is not None:
            return derived
        container.seek(0, stream=stream, backward=True, any_frame=False)  # the check read packets: start over
    return _demuxed_stamps(container, stream)


def _lists_every_frame(stream: Any) -> bool:
    """Whether the container's index has an entry per frame (MP4/MOV sample tables; Matroska cues list keyframes
    only, raw streams nothing). `index_entries` is PyAV 18+."""
    entries = getattr(stream, "index_entries", None)
    return bool(entries) and len(entries) == stream.frames


def _demuxed_stamps(container: Any, stream: Any) -> PacketStamps:
    stamps: list[int | None] = []
    keyframe_stamps: list[int] = []
    last_pts, last_duration, before_first_keyframe, hidden, hidden_keyframe = None, None, 0, 0, False
    for packet in container.demux(stream):
        if not packet.size:
            continue
        if packet.is_discard:  # decoded, not shown (an edit list starting after it)
            hidden += 1
            hidden_keyframe |= bool(packet.is_keyframe) and not keyframe_stamps
            continue
        stamps.append(packet.pts)
        if packet.is_keyframe and packet.pts is not None:
            keyframe_stamps.append(packet.pts)
        elif not keyframe_stamps and not hidden_keyframe:
            before_first_keyframe += 1
        if packet.pts is not None and (last_pts is None or packet.pts >= last_pts):
            last_pts, last_duration = packet.pts, packet.duration
    if not keyframe_stamps and not hidden_keyframe:  # no keyframe flags: nothing says which frames cannot decode
        before_first_keyframe = 0
    return PacketStamps(
        stamps, keyframe_stamps, last_duration, before_first_keyframe=before_first_keyframe, hidden=hidden,
        hidden_start=hidden_keyframe,
    )


def _container_index_stamps(container: Any, stream: Any) -> PacketStamps | None:
    """PTS derived from the container's sample table (`stream.index_entries`, PyAV 18+), or None where it cannot
    be trusted (then every packet is read).

    The table gives each frame's decoding timestamp (DTS) in decoding order and its keyframe flag, not its PTS.
    Muxers write the DTS as the presentation times delayed by the decoder's reordering depth r (frames), so the
    frame shown k-th has PTS = DTS[k + r]. That is checked, not assumed: the packets of the first two groups of
    pictures give r and must match it, and those of the last group must match it and give the last r PTS; decoding
    then checks every packet it reads (`IndexMismatch`). A keyframe at decoding position j is shown j-th (closed
    groups of pictures: the second and last keyframes are checked, and an open one elsewhere fails at the seek).
    Tables with dropped or empty samples are not used. The middle of the file is not read: a reordering depth that
    changes there (clips of different encoders joined without re-encoding) shows only when decoding reads it,
    hence `read_video_info`'s default of reading every packet for callers that do not decode.
    """
    dts, keyframes = [], []
    for position, entry in enumerate(stream.index_entries):
        if entry.is_discard or not entry.size:
            return None
        dts.append(entry.timestamp)
        if entry.is_keyframe:
            keyframes.append(position)
    if not keyframes or keyframes[0] != 0 or any(later <= earlier for earlier, later in zip(dts, dts[1:])):
        return None
    total = len(dts)
    # The head is the first two groups of pictures: the second keyframe tells whether they are closed.
    head_end = keyframes[2] if len(keyframes) > 2 else total
    head = _packets_from(container, stream, dts, 0, head_end)
    if head is None:
        return None
    if head_end == total:  # two groups of pictures or fewer: the packets read are the whole stream, exact
        head_pts = [pts for pts, _ in head]
        return PacketStamps(head_pts, [head_pts[j] for j in keyframes], max(head)[1])
    first = min(pts for pts, _ in head)
    delay = bisect_left(dts, first)
    if delay >= total or dts[delay] != first:
        return None
    shown = dts[delay:]  # PTS of the frames shown 0 .. total - delay - 1
    # A keyframe is shown where its decoding position says unless its group of pictures is open (x265's default).
    if sorted(pts for pts, _ in head) != shown[: len(head)] or head[keyframes[1]][0] != shown[keyframes[1]]:
        return None
    tail_start = keyframes[-1]
    if tail_start >= len(shown):
        return None
    try:
        container.seek(shown[tail_start], stream=stream, backward=True, any_frame=False)
    except Exception:  # av.FFmpegError: a container that cannot seek is read packet by packet
        return None
    tail = _packets_from(container, stream, dts, tail_start, total)
    if tail is None:
        return None
    tail_pts = sorted(pts for pts, _ in tail)
    known = len(shown) - tail_start
    # The last keyframe must be shown where its decoding position says (else the groups of pictures are open).
    if tail_pts[:known] != shown[tail_start:] or tail[0][0] != shown[tail_start]:
        return None
    pts = shown + tail_pts[known:]
    last_duration = max(tail)[1]
    return PacketStamps(pts, [pts[j] for j in keyframes], last_duration, from_container=True)


def _packets_from(container: Any, stream: Any, dts: list[int], start: int, end: int) -> list[tuple[int, int]] | None:
    """(PTS, duration) of the packets at decoding positions start .. end - 1, read from the current position (the
    start of the file, or a seek to the keyframe at `start`, which may land on an earlier keyframe), or None when
    they are not where the table says."""
    found: list[tuple[int, int]] = []
    position = None
    for packet in container.demux(stream):
        if not packet.size or packet.is_discard:
            continue
        if position is None:
            if packet.dts is None or packet.dts > dts[start]:
                return None
            if packet.dts < dts[start]:
                continue
            if not packet.is_keyframe:
                return None
            position = start
        if packet.pts is None or packet.dts != dts[position]:
            return None
        found.append((packet.pts, packet.duration or 0))
        position += 1
        if position == end:
            return found
    return None


@functools.cache
def torchcodec_available() -> bool:
    """True when torchcodec imports and loads its FFmpeg libraries (a broken install counts as absent).

    Recent torchcodec (0.17 here) imports without FFmpeg and sets `ffmpeg_major_version` to None when it finds no
    FFmpeg shared libraries it can load (`libavutil.so.N` etc. on the library path; PyAV's private copies do not
    count); older releases fail the import itself."""
    try:
        import torchcodec
        from torchcodec.decoders import VideoDecoder  # noqa: F401
    except Exception:  # ImportError, or OSError/RuntimeError when its FFmpeg libraries do not load
        return False
    return getattr(torchcodec, "ffmpeg_major_version", 0) is not None


def resolve_backend(backend: str | None) -> str:
    """The decoder `backend` means: None or "auto" is PyAV's seeking path, which was faster than torchcodec (0.17
    with FFmpeg 5.1) on 22 of the 24 measurements of the decode benchmark (docs/benchmarks.md; within the noise on
    the other two), with the same frames and less memory; torchcodec is used when asked for by name."""
    if backend is None or backend == AUTO_BACKEND:
        return PYAV_BACKEND
    return backend


def default_decoder_threads() -> int:
    """1 inside a PyTorch DataLoader worker (the workers already decode in parallel: FFmpeg's choice in each would
    start cores + 1 threads per worker), else 0 (FFmpeg's choice)."""
    try:
        from torch.utils.data import get_worker_info
    except ImportError:
        return 0
    return 1 if get_worker_info() is not None else 0


def decode_frames(
    path: str,
    indices: Sequence[int],
    index: StreamIndex | None,
    backend: str | None = None,
    *,
    threads: int | None = None,
    skip_nonref: bool = True,
) -> np.ndarray:
    """RGB frames (len(indices), H, W, 3) uint8 at `indices` (repeats allowed, any order) of the video at `path`.

    `index` comes from `video_sampling.read_video_info`; None (a stream without timestamps) decodes sequentially
    with a warning; a derived index (`from_container`) that disagrees with the packets raises `IndexMismatch`.
    `threads` (PyAV only): decoder threads, 0 for FFmpeg's choice (frame threading, one thread per core the process
    may use), 1 for one, None for `default_decoder_threads()`; `skip_nonref=False` decodes the non-reference frames
    on the way too (for comparison: the same frames, slower). Errors name the file.
    """
    if threads is None:
        threads = default_decoder_threads()
    if threads < 0:
        raise ValueError(f"threads must be >= 0 (0: FFmpeg's choice), got {threads} for '{path}'")
    backend = resolve_backend(backend)
    if not indices:
        raise ValueError(f"No frames requested from '{path}'.")
    if backend == TORCHCODEC_BACKEND:
        if not torchcodec_available():
            raise ImportError(
                f"Decoding video file '{path}' with backend 'torchcodec' needs torchcodec and FFmpeg 4-9 shared"
                " libraries it can load (libavutil.so.N and friends on the library path; PyAV's private copies do not"
                " count): install torchcodec and FFmpeg's shared libraries, or use the backend 'pyav' (same frames)."
            )
        return _decode_torchcodec(path, indices)
    if backend != PYAV_BACKEND:
        return _decode_with_transformers(path, indices, backend)
    try:
        import av
    except ImportError as err:
        raise ImportError(f"Decoding video file '{path}' needs PyAV: `pip install av`.") from err
    out = _FrameSlots(path, indices)
    try:
        if index is None:
            logger.warning(
                f"Video file '{path}' has no usable presentation timestamps, so its frames cannot be found by"
                " seeking; decoding it from the start (slow for long videos). Remux it (e.g. `ffmpeg -i IN -c copy"
                " OUT.mp4`) to restore them."
            )
            _decode_sequential(path, out, threads)
        else:
            try:
                _decode_by_seeking(path, out, index, threads, skip_nonref)
            except _SeekFailed as failure:
                if index.from_container:  # the derived index may be what is wrong: the caller rereads it first
                    raise IndexMismatch(f"Video file '{path}': {failure}") from failure
                logger.warning(
                    f"Could not seek in video file '{path}': {failure}. Decoding it from the start instead: exact"
                    f" frames, but the time grows with the video's length. {failure.advice}"
                )
                out.clear()
                _decode_sequential(path, out, threads)
    except av.FFmpegError as err:
        raise ValueError(f"Could not decode video file '{path}' (corrupt or truncated?): {err}") from err
    return out.frames()


class _FrameSlots:
    """The output array, filled frame by frame: memory is the kept frames, never the decoded ones."""

    def __init__(self, path: str, indices: Sequence[int]):
        self.path = path
        self.indices = [int(i) for i in indices]
        self.wanted = sorted(set(self.indices))
        self.slots: dict[int, list[int]] = {}
        for slot, frame_index in enumerate(self.indices):
            self.slots.setdefault(frame_index, []).append(slot)
        self.array: np.ndarray | None = None
        self.filled: set[int] = set()

    def put(self, frame_index: int, frame: Any) -> None:
        rgb = frame.to_ndarray(format="rgb24")
        if self.array is None:
            self.array = np.empty((len(self.indices), *rgb.shape), dtype=rgb.dtype)
        elif rgb.shape != self.array.shape[1:]:
            raise ValueError(
                f"Video file '{self.path}' changes size mid-stream (frame {frame_index} is {rgb.shape[:2]}, earlier"
                f" frames {self.array.shape[1:3]}); re-encode it at one size."
            )
        self.array[self.slots[frame_index]] = rgb
        self.filled.add(frame_index)

    def clear(self) -> None:
        self.filled.clear()

    def frames(self) -> np.ndarray:
        missing = [i for i in self.wanted if i not in self.filled]
        if missing or self.array is None:
            raise ValueError(
                f"Decoded only {len(self.filled)} of the {len(self.wanted)} frames expected from '{self.path}' (first"
                f" missing: frame {missing[0] if missing else self.wanted[0]}); the file may be truncated."
            )
        return self.array


def _open_video(path: str, threads: int) -> tuple[Any, Any]:
    """The container at `path` and its first video stream, its decoder set to `threads` threads."""
    import av

    container = av.open(path)
    try:
        stream = container.streams.video[0]
    except IndexError:
        container.close()
        raise ValueError(f"Video file '{path}' has no video stream.") from None
    # PyAV's default is slice threading, which does nothing for one-slice frames (most files); frame threading
    # decodes the next frames while a frame's references finish.
    stream.codec_context.thread_type = "AUTO"
    stream.codec_context.thread_count = threads
    return container, stream


def _decode_by_seeking(
    path: str, out: _FrameSlots, index: StreamIndex, threads: int = 0, skip_nonref: bool = True
) -> None:
    """Fill `out` by seeking to the keyframe before each wanted frame (unless already decoding its group of
    pictures) and decoding forward to the frame with its PTS."""
    import av

    if out.wanted[-1] >= len(index.pts):
        raise _SeekFailed(f"frame {out.wanted[-1]} is past the {len(index.pts)} frames of its index")
    wanted_pts = {index.pts[i] for i in out.wanted} if skip_nonref else None
    known_pts = frozenset(index.pts) if index.from_container else None
    container, stream = _open_video(path, threads)
    with container:
        frames: Iterator[Any] | None = None
        last_pts = None  # PTS of the last decoded frame
        for frame_index in out.wanted:
            target = index.pts[frame_index]
            at = bisect_right(index.keyframe_pts, target) - 1
            if at >= 0:
                keyframe = index.keyframe_pts[at]
            elif index.hidden_start:  # decoding from the keyframe its edit list hides shows frame 0 first
                keyframe = index.pts[0]
            else:
                raise _SeekFailed(
                    f"frame {frame_index} comes before its first keyframe (the file starts mid-way through a group"
                    " of pictures, as a cut without re-encoding leaves it)", START_ADVICE
                )
            # Decoding on is cheaper than seeking while no keyframe lies between the last frame and the target.
            landing = None
            if frames is None or last_pts is None or keyframe > last_pts:
                try:
                    container.seek(keyframe, stream=stream, backward=True, any_frame=False)
                except av.FFmpegError as err:
                    raise _SeekFailed(f"the container refused a seek to the keyframe at PTS {keyframe} ({err})") from err
                frames, landing = _frames_for(container, stream, wanted_pts, known_pts), keyframe
            for frame in frames:
                pts = frame.pts
                if pts is None:
                    raise _SeekFailed("a decoded frame has no timestamp")
                if landing is not None and pts >= landing:
                    # The first frame at or after the keyframe must be that keyframe, and one the decoder can
                    # start from (an IDR frame or a recovery point): else frames after it may use frames before.
                    if pts != landing:
                        raise _SeekFailed(
                            f"its index puts a keyframe at PTS {landing}, but the first frame decoded from there has"
                            f" PTS {pts}"
                        )
                    # (Frame 0 after a keyframe the edit list hides, at < 0, is shown first but is no keyframe.)
                    if at >= 0 and not frame.key_frame and _is_intra(frame):
                        raise _SeekFailed(
                            f"the frame its container flags as a keyframe (PTS {landing}) is an I-frame the decoder"
                            " cannot start from (an open group of pictures without a recovery point): frames decoded"
                            " from it could differ from a sequential decode",
                            REENCODE_ADVICE,
                        )
                    if at >= 0 and not frame.key_frame:
                        raise _SeekFailed(
                            f"its index flags the frame at PTS {landing} as a keyframe, but the decoder found a frame"
                            " that depends on earlier ones there"
                        )
                    landing = None
                last_pts = pts
                if pts == target:
                    out.put(frame_index, frame)
                    break
                if pts > target:
                    raise _SeekFailed(
                        f"its index puts frame {frame_index} at PTS {target}, but no decoded frame has that PTS"
                    )
            else:
                raise _SeekFailed(f"the stream ended before frame {frame_index}, which its index lists")


def _is_intra(frame: Any) -> bool:
    """An I-frame (PyAV gives FFmpeg's picture type as an int enum, AV_PICTURE_TYPE_I = 1)."""
    kind = frame.pict_type
    return getattr(kind, "name", None) == "I" or getattr(kind, "value", kind) == 1


def _frames_for(
    container: Any, stream: Any, wanted_pts: set[int] | None, known_pts: frozenset[int] | None = None
) -> Iterator[Any]:
    """Decoded frames from the current position on, in presentation order. Packets of non-reference frames (B-frames
    that no other frame uses) are skipped unless their PTS is in `wanted_pts` (None: none skipped): no other frame
    depends on them, so this cuts the decoding between a keyframe and a kept frame without changing a pixel. The
    setting is read per packet, by frame-threaded decoders too (FFmpeg copies it when a packet is submitted).
    `known_pts`: the PTS of a derived index, which every packet read must have (else `IndexMismatch`)."""
    codec = stream.codec_context
    for packet in container.demux(stream):
        if known_pts is not None and packet.size and packet.pts not in known_pts:
            raise _SeekFailed(f"a packet has PTS {packet.pts}, which its index does not list")
        if wanted_pts is not None:
            codec.skip_frame = "DEFAULT" if packet.pts is None or packet.pts in wanted_pts else "NONREF"
        yield from codec.decode(packet)


def _decode_sequential(path: str, out: _FrameSlots, threads: int = 0) -> None:
    """Fill `out` decoding from the start: frame i is the i-th decoded frame (the reference numbering)."""
    wanted, last = set(out.wanted), out.wanted[-1]
    container, stream = _open_video(path, threads)
    with container:
        for frame_index, frame in enumerate(container.decode(stream)):
            if frame_index in wanted:
                out.put(frame_index, frame)
            if frame_index >= last:
                break


def _decode_torchcodec(path: str, indices: Sequence[int]) -> np.ndarray:
    from torchcodec.decoders import VideoDecoder

    unique = sorted(set(int(i) for i in indices))
    try:
        decoder = VideoDecoder(path, seek_mode="exact", dimension_order="NHWC")
        batch = decoder.get_frames_at(indices=unique).data.numpy()
    except Exception as err:  # torchcodec raises RuntimeError/ValueError/IndexError for unreadable files
        raise ValueError(f"Could not decode video file '{path}' with torchcodec: {err}") from err
    if [int(i) for i in indices] == unique:  # the usual request: no copy of the frames
        return batch
    position = {frame_index: k for k, frame_index in enumerate(unique)}
    return batch[[position[int(i)] for i in indices]]


def _decode_with_transformers(path: str, indices: Sequence[int], backend: str) -> np.ndarray:
    """Decoders other than PyAV and torchcodec, through transformers' `load_video`."""
    unique = sorted(set(int(i) for i in indices))

    def keep_unique(metadata: VideoMetadata, **kwargs: Any) -> np.ndarray:
        return np.asarray(unique, dtype=int)

    try:
        frames, _ = load_video(path, backend=backend, sample_indices_fn=keep_unique)
    except ImportError:
        raise
    except Exception as err:  # decoders raise many types; all mean "this file cannot be decoded"
        raise ValueError(f"Could not decode video file '{path}' with backend {backend!r}: {err}") from err
    if len(frames) < len(unique):
        raise ValueError(
            f"Decoded only {len(frames)} of the {len(unique)} frames expected from '{path}'; the file may be truncated."
        )
    position = {frame_index: k for k, frame_index in enumerate(unique)}
    return np.asarray(frames)[[position[int(i)] for i in indices]]
