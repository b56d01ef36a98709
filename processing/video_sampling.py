"""Turn the videos given to a processor (file paths, decoded frames, frames + metadata) into sampled frames
whose `VideoMetadata` tells the true time of every kept frame.

Why our own sampling instead of the video processors' `do_sample_frames`: transformers' video processors decode
paths with torchcodec only, and for frames without metadata they assume 24 fps, which collapses the timeline
(`second_per_grid_ts = 2 / 24`). Here every frame keeps its source index and the source fps, so
`VideoMetadata.sampled_fps` and `.timestamps` are exact.

Variable frame rate: a file's frame times are read from its presentation timestamps (PTS × time_base). When they
stray from `index / fps` by half a frame or more, frames are chosen at evenly spaced *times* (the frame on screen at
each time), `fps` becomes the average rate (frames / duration) so that `sampled_fps` is the real spacing, and
`SampledVideoMetadata.timestamps` reports the true time of every kept frame. Constant-rate files keep index sampling.

Decoding a file costs what it keeps: the frame indices are chosen first, from the metadata and packet timestamps
alone, and `video_decoding` then seeks to each kept frame (never a list of all decoded frames).

Hub-facing helper: copied next to the processors by `save_pretrained`, so it imports nothing from `groundvts`.
"""

import math
import os
import statistics
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from fractions import Fraction
from typing import Any

import numpy as np
from transformers.utils import logging
from transformers.video_utils import VideoMetadata, make_batched_videos

from .input_checks import check_positive
from .video_decoding import (
    START_ADVICE,
    IndexMismatch,
    StreamIndex,
    decode_frames,
    read_packet_stamps,
    resolve_backend,
    stream_index,
)


logger = logging.get_logger(__name__)

# What `video_metadata` may be in a processor call: like transformers', plus None entries for videos given as paths
# (or frames to be taken at the assumed fps) in a mixed batch.
MetadataEntry = VideoMetadata | dict | None
VideoMetadataInput = VideoMetadata | dict | list[MetadataEntry] | list[list[MetadataEntry]] | None

# A frame's time may stray this many frame intervals from index / fps before a file counts as variable-rate.
CONSTANT_RATE_TOLERANCE = 0.5
# Slack (s) when looking up the frame on screen at a time, so float rounding never picks the previous frame.
_TIME_EPSILON = 1e-6


@dataclass
class SampledVideoMetadata(VideoMetadata):
    """`VideoMetadata` that knows the true time of every frame and how the frame count was chosen.

    - `frame_times`: presentation time (s, first frame at 0) of every source frame, for variable-rate video; None
      for constant rate, where frame i is at i / fps. With it, `fps` is the average rate (frames / duration).
    - `requested_frames`: frames the call asked for (duration × fps, at least min_frames, or num_frames);
      `max_frames`: the cap in force; `frames_capped`: True when the cap lowered the count below the request
      (the video was sampled more sparsely than asked).
    """

    frame_times: list[float] | None = None
    requested_frames: float | None = None
    max_frames: int | None = None
    frames_capped: bool = False

    @property
    def timestamps(self) -> list[float]:
        """Seconds of the kept frames (their presentation times for variable-rate video)."""
        if self.frame_times is None:
            return super().timestamps
        if self.frames_indices is None:
            raise ValueError("Cannot tell video `timestamps` without `frames_indices`.")
        return [self.frame_times[index] for index in self.frames_indices]


@dataclass(frozen=True)
class FrameChoice:
    """A chooser's pick, plus what was asked for, so the metadata can say when a cap bit.

    `positions` are where the kept frames sit in source-frame units (e.g. k · total / count): their floor is the
    source index for constant-rate video; for variable-rate video position × duration / total is the time whose
    on-screen frame is kept, so evenly spaced positions give evenly spaced times.
    """

    positions: list[Fraction]
    requested_frames: float | None = None
    max_frames: int | None = None
    frames_capped: bool = False


# (total number of source frames, source fps or None) -> indices of the frames to keep, or a FrameChoice.
IndexChooser = Callable[[int, float | None], "list[int] | FrameChoice"]

_METADATA_FIELDS = {f.name for f in fields(SampledVideoMetadata)}


def fps_sample_indices(
    total_frames: int,
    native_fps: float,
    target_fps: float,
    *,
    min_frames: int = 4,
    max_frames: int = 768,
    frame_factor: int = 2,
) -> list[int]:
    """Indices for sampling `target_fps` frames per second (Qwen2.5-VL policy).

    The count is clipped to [min_frames, max_frames] and to the number of source frames, then floored to a
    multiple of `frame_factor` (frames are paired into one temporal patch). Frames are taken at a constant step
    of total/count source frames from frame 0, so the real sampled rate is count / total * native_fps and
    frame k sits at k / sampled_fps seconds (up to the rounding of the index to a source frame).
    """
    requested = requested_frame_count(total_frames, native_fps, target_fps=target_fps, min_frames=min_frames)
    count, _ = planned_frame_count(total_frames, requested, max_frames, frame_factor)
    return uniform_step_indices(total_frames, count)


def requested_frame_count(
    total_frames: int,
    native_fps: float,
    *,
    target_fps: float | None = None,
    num_frames: int | None = None,
    min_frames: int = 0,
) -> float:
    """Frames a call asks for: `num_frames`, else the video's duration × `target_fps`, at least `min_frames`."""
    if num_frames is not None:
        return num_frames
    if target_fps is None:
        raise ValueError("Pass `target_fps` or `num_frames` to plan the frame count.")
    return max(total_frames / native_fps * target_fps, min_frames)


def planned_frame_count(
    total_frames: int, requested: float, max_frames: int | None, frame_factor: int = 1
) -> tuple[int, bool]:
    """(frames to keep, whether `max_frames` lowered the count): `requested` clipped to the cap and to the source
    frames, floored to a multiple of `frame_factor`."""
    cap = math.inf if max_frames is None else max_frames
    capped = min(requested, total_frames) > cap
    return whole_patches(min(requested, cap, total_frames), frame_factor), capped


def whole_patches(count: float, frame_factor: int) -> int:
    """`count` floored to a multiple of `frame_factor`; 1 if that is 0 (the video processor pads it)."""
    paired = math.floor(count / frame_factor) * frame_factor
    return paired if paired > 0 else 1


def uniform_step_positions(total_frames: int, count: int) -> list[Fraction]:
    """`count` positions at a constant step of total/count source frames, starting at frame 0 (exact)."""
    count = min(count, total_frames)
    return [Fraction(k * total_frames, count) for k in range(count)]


def uniform_step_indices(total_frames: int, count: int) -> list[int]:
    """`count` indices at a constant step of total/count source frames, starting at frame 0."""
    return [math.floor(position) for position in uniform_step_positions(total_frames, count)]


def segment_center_positions(total_frames: int, count: int) -> list[Fraction]:
    """The middles of `count` equal segments of `total_frames` source frames (exact)."""
    return [Fraction((2 * k + 1) * total_frames, 2 * count) for k in range(count)]


def segment_center_indices(total_frames: int, count: int) -> list[int]:
    """The middle frame of each of `count` equal segments (InternVL policy).

    Short videos repeat frames so that every video yields exactly `count` frames.
    """
    return [math.floor(position) for position in segment_center_positions(total_frames, count)]


def flatten_videos(videos: Any) -> list[Any]:
    """One entry per video: a path string or an array/tensor of frames (T, ...)."""
    if videos is None or (isinstance(videos, (list, tuple)) and len(videos) == 0):
        raise ValueError("`videos` is empty; pass a video path, an array of frames, or a list of them.")
    try:
        batch = make_batched_videos(videos)
    except (ValueError, TypeError, IndexError) as err:
        raise ValueError(
            f"Could not read `videos` ({type(videos).__name__}): pass paths, arrays (frames, H, W, C) or lists of"
            f" frames. ({err})"
        ) from err
    for index, video in enumerate(batch):
        if isinstance(video, (list, tuple)):
            raise ValueError(
                f"Video {index} is a list of image files; decode the frames first and pass them as an array."
            )
    return batch


def align_metadata(video_metadata: Any, num_videos: int) -> list[SampledVideoMetadata | None]:
    """One (copied) `SampledVideoMetadata` or None per video."""
    if video_metadata is None:
        return [None] * num_videos
    if isinstance(video_metadata, Mapping):
        entries = [video_metadata]
    else:
        entries = []
        for item in video_metadata:
            entries.extend(item if isinstance(item, (list, tuple)) else [item])
    if len(entries) != num_videos:
        raise ValueError(f"Got {num_videos} videos but {len(entries)} `video_metadata` entries; pass one per video.")
    return [None if entry is None else _copy_metadata(entry, index) for index, entry in enumerate(entries)]


def _copy_metadata(entry: Mapping, index: int) -> SampledVideoMetadata:
    if not isinstance(entry, Mapping):
        raise ValueError(f"`video_metadata[{index}]` must be a dict or VideoMetadata, got {type(entry).__name__}.")
    values = {key: entry[key] for key in entry if key in _METADATA_FIELDS and entry[key] is not None}
    values.setdefault("total_num_frames", None)
    metadata = SampledVideoMetadata(**values)
    if metadata.fps is not None:
        check_positive(metadata.fps, f"video_metadata[{index}].fps")
    if metadata.frames_indices is not None:
        metadata.frames_indices = [int(i) for i in metadata.frames_indices]
    if metadata.frame_times is not None:
        metadata.frame_times = _checked_frame_times(metadata.frame_times, f"video_metadata[{index}].frame_times")
    return metadata


def _checked_frame_times(times: Sequence[float], name: str) -> list[float]:
    values = [float(t) for t in times]
    if not values or not all(math.isfinite(t) for t in values):
        raise ValueError(f"`{name}` must be a non-empty list of finite seconds, one per source frame.")
    if any(later < earlier for earlier, later in zip(values, values[1:])):
        raise ValueError(f"`{name}` must not decrease: list the frames in presentation order.")
    return [t - values[0] for t in values]  # the first frame is at 0 s, as for index / fps


def prepare_videos(
    videos: Any,
    video_metadata: Any = None,
    choose_indices: IndexChooser | None = None,
    assumed_fps: float | None = None,
    backend: str | None = None,
) -> tuple[list[Any], list[SampledVideoMetadata]]:
    """Sample every video; return the kept frames and their metadata (source fps, source indices, true times).

    - path: only the kept frames are decoded (`video_decoding`: seeking, by PyAV, or torchcodec for `backend`
      "torchcodec"); frame times come from the file's presentation timestamps;
    - frames + metadata with `frames_indices`: already sampled, used as given;
    - frames + metadata with `fps`: the frames are the whole video at that fps and get sampled;
    - frames + metadata with `frame_times` (one per frame): a variable-rate video, sampled by time;
    - frames alone: assumed to be recorded at `assumed_fps` (a warning says so) and get sampled.
    `choose_indices=None` keeps every frame. Metadata given for a path is ignored (the file's own is used).
    """
    batch = flatten_videos(videos)
    metadata_list = align_metadata(video_metadata, len(batch))
    all_frames, all_metadata = [], []
    for index, (video, metadata) in enumerate(zip(batch, metadata_list)):
        if isinstance(video, str):
            frames, metadata = _sample_file(video, choose_indices, backend)
        else:
            frames, metadata = _sample_frames(video, metadata, choose_indices, assumed_fps, index)
        all_frames.append(frames)
        all_metadata.append(metadata)
    return all_frames, all_metadata


def frames_shown_at(frame_times: Sequence[float], times: Sequence[float]) -> list[int]:
    """Index of the frame on screen at each of `times`: the last frame that starts at or before it."""
    return [max(bisect_right(frame_times, t + _TIME_EPSILON) - 1, 0) for t in times]


def timeline_duration(frame_times: Sequence[float], last_frame_duration: float | None = None) -> float:
    """Length of a video whose frames start at `frame_times`: the last start plus the last frame's own duration,
    else the median gap between frames."""
    if not last_frame_duration or last_frame_duration <= 0:
        gaps = [later - earlier for earlier, later in zip(frame_times, frame_times[1:]) if later > earlier]
        if not gaps:
            raise ValueError("Cannot tell how long the last frame lasts: pass at least two distinct frame times.")
        last_frame_duration = statistics.median(gaps)
    return frame_times[-1] + last_frame_duration


def _choose(choose_indices: IndexChooser | None, metadata: SampledVideoMetadata) -> list[int]:
    """Source indices to keep; records the request and cap of a `FrameChoice` on `metadata`."""
    total = metadata.total_num_frames
    if choose_indices is None:
        return list(range(total))
    choice = choose_indices(total, metadata.fps)
    if isinstance(choice, FrameChoice):
        metadata.requested_frames, metadata.max_frames = choice.requested_frames, choice.max_frames
        metadata.frames_capped = choice.frames_capped
        choice = choice.positions
    if metadata.frame_times is None:
        return [math.floor(position) for position in choice]
    # Positions count `total` evenly spaced slots of the duration; with a variable rate each becomes the frame on
    # screen at that time, so the kept frames stay evenly spaced in time (what sampled_fps tells the model).
    slot = metadata.duration / total
    return frames_shown_at(metadata.frame_times, [float(position) * slot for position in choice])


def _sample_frames(
    video: Any,
    metadata: SampledVideoMetadata | None,
    choose_indices: IndexChooser | None,
    assumed_fps: float | None,
    index: int,
) -> tuple[Any, SampledVideoMetadata]:
    num_frames = len(video)
    if num_frames == 0:
        raise ValueError(f"Video {index} has zero frames; pass at least one frame.")
    if metadata is not None and metadata.frames_indices is not None:
        if len(metadata.frames_indices) != num_frames:
            raise ValueError(
                f"`video_metadata[{index}].frames_indices` lists {len(metadata.frames_indices)} frames but video"
                f" {index} has {num_frames}."
            )
        if metadata.total_num_frames is None:
            metadata.total_num_frames = max(metadata.frames_indices) + 1
        if metadata.frame_times is not None and len(metadata.frame_times) != metadata.total_num_frames:
            raise ValueError(
                f"`video_metadata[{index}].frame_times` lists {len(metadata.frame_times)} times but the video has"
                f" total_num_frames={metadata.total_num_frames}; give one time per source frame."
            )
        return video, metadata
    if metadata is not None and metadata.frame_times is not None:
        if len(metadata.frame_times) != num_frames:
            raise ValueError(
                f"`video_metadata[{index}].frame_times` lists {len(metadata.frame_times)} times but video {index}"
                f" has {num_frames} frames; give one time per frame."
            )
        fallback = 1 / metadata.fps if metadata.fps else None
        try:
            metadata.duration = timeline_duration(metadata.frame_times, fallback)
        except ValueError as err:
            raise ValueError(f"`video_metadata[{index}]`: {err} Or pass `fps`.") from err
        metadata.fps = num_frames / metadata.duration  # the average rate: sampled_fps is then the real spacing
    elif metadata is None or metadata.fps is None:
        logger.warning_once(
            f"Video frames were given without `video_metadata` fps; assuming they were sampled at {assumed_fps} fps."
            " Pass `video_metadata={'fps': ..., 'total_num_frames': ...}` to state the real rate."
        )
        total = metadata.total_num_frames if metadata is not None and metadata.total_num_frames else num_frames
        metadata = SampledVideoMetadata(total_num_frames=total, fps=assumed_fps)
    if metadata.total_num_frames is None:
        metadata.total_num_frames = num_frames
    if metadata.total_num_frames != num_frames:
        raise ValueError(
            f"`video_metadata[{index}]` says total_num_frames={metadata.total_num_frames} but video {index} has"
            f" {num_frames} frames; for frames sampled from a longer video also pass `frames_indices`."
        )
    if metadata.frame_times is None and metadata.fps:
        metadata.duration = num_frames / metadata.fps
    indices = _choose(choose_indices, metadata)
    metadata.frames_indices = indices
    return video[indices], metadata


@dataclass(frozen=True)
class VideoFileInfo:
    """The first video stream of a file, as sampling sees it."""

    num_frames: int
    fps: float  # frames per second; the average rate (num_frames / duration) for variable-rate video
    width: int
    height: int
    duration: float
    frame_times: list[float] | None  # presentation times (s) of every frame when they are not index / fps
    # Every frame's PTS and the keyframes', for decoding by seeking; None when the packets lack timestamps.
    stream_index: StreamIndex | None = field(default=None, repr=False, compare=False)


def read_video_info(path: str, container_index: bool = False) -> VideoFileInfo:
    """Frame count, rate, size, duration and (for variable-rate files) every frame's presentation time.

    Times are PTS × time_base of the stream's frames in presentation order, the first frame at 0, read from every
    packet. `container_index=True` derives them from the container's sample table instead where it can (MP4/MOV:
    milliseconds instead of reading the whole file; see `video_decoding.read_packet_stamps`): its first and last
    groups of pictures are checked, its middle only when `decode_frames` reads it, which the processors do. A file
    whose frames all sit within half a frame of index / fps counts as constant-rate (`frame_times` None) and keeps
    its stated rate. Errors name the file.
    """
    try:
        import av
    except ImportError as err:  # optional for callers who only pass decoded frames
        raise ImportError(f"Reading video file '{path}' needs PyAV: `pip install av`.") from err

    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise ValueError(f"Video file '{path}' has no video stream (no frames to read).")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            header_frames, time_base = stream.frames, stream.time_base
            # In MP4/MOV a sample is one frame: the packets decoders see are the frames, whatever the header says.
            one_frame_per_packet = "mp4" in container.format.name or "mov" in container.format.name
            packets = read_packet_stamps(container, stream, container_index)
            stamps, last_duration = packets.pts, packets.last_duration
            width, height = stream.width, stream.height
    except av.FFmpegError as err:
        raise ValueError(f"Could not read video file '{path}' (corrupt or not a video?): {err}") from err
    if packets.before_first_keyframe:
        raise ValueError(
            f"Video file '{path}' starts {packets.before_first_keyframe} frames before its first keyframe (it was cut"
            " without re-encoding): decoders cannot show those frames, so its frame count and times would be wrong."
            f" {START_ADVICE}"
        )
    # The packets tell the frame count where the header cannot: some containers store none, a fragmented MP4's counts
    # its first fragment only, and an edit list's hidden frames count in it.
    stamped = all(pts is not None for pts in stamps)
    trust_packets = not header_frames or packets.hidden or (one_frame_per_packet and stamped)
    num_frames = len(stamps) if trust_packets else int(header_frames)
    if num_frames == 0:
        raise ValueError(f"Video file '{path}' has zero frames.")
    frame_times = _presentation_times(stamps, time_base, num_frames, path)
    index = stream_index(packets) if frame_times is not None else None
    fps = float(rate) if rate and float(rate) > 0 else None
    if frame_times is not None and (fps is None or not _fits_constant_rate(frame_times, fps)):
        last = float(last_duration * time_base) if last_duration and time_base else (1 / fps if fps else None)
        try:
            duration = timeline_duration(frame_times, last)
        except ValueError as err:
            raise ValueError(f"Could not determine the frame rate of video file '{path}': {err}") from err
        return VideoFileInfo(num_frames, num_frames / duration, int(width), int(height), duration, frame_times, index)
    if fps is None:
        no_stamps = " and its frames carry no timestamps" if frame_times is None else ""
        raise ValueError(
            f"Could not determine the frame rate of video file '{path}': no rate in its header{no_stamps}."
        )
    return VideoFileInfo(num_frames, fps, int(width), int(height), num_frames / fps, None, index)


def _presentation_times(stamps: list[int | None], time_base: Any, num_frames: int, path: str) -> list[float] | None:
    """Seconds of every frame in presentation order from packet PTS, or None (with a warning) when unusable."""
    if time_base is None or any(pts is None for pts in stamps) or len(stamps) != num_frames:
        logger.warning(
            f"Video file '{path}' lacks usable presentation timestamps ({sum(pts is not None for pts in stamps)} of"
            f" {len(stamps)} packets stamped, {num_frames} frames); assuming a constant frame rate. Remux it (e.g."
            " `ffmpeg -i IN -c copy OUT.mp4`) if its frame rate varies."
        )
        return None
    ordered = sorted(stamps)
    return [float((pts - ordered[0]) * time_base) for pts in ordered]


def _fits_constant_rate(frame_times: Sequence[float], fps: float) -> bool:
    """True when every frame starts within CONSTANT_RATE_TOLERANCE frame intervals of index / fps."""
    return all(abs(t * fps - i) <= CONSTANT_RATE_TOLERANCE for i, t in enumerate(frame_times))


def probe_video_file(path: str) -> tuple[int, float, int, int]:
    """(frame count, fps, width, height) of the first video stream, with errors that name the file.

    For a variable-rate file fps is the average rate; `read_video_info` also gives the frame times. Read from the
    sample table where it can be (these four depend only on its checked ends: the frame count, the first and last
    timestamps).
    """
    info = read_video_info(path, container_index=True)
    return info.num_frames, info.fps, info.width, info.height


def _sample_file(
    path: str, choose_indices: IndexChooser | None, backend: str | None
) -> tuple[Any, SampledVideoMetadata]:
    if "://" not in path and not os.path.isfile(path):
        raise FileNotFoundError(f"Video file not found: '{path}'. Check the path (relative to {os.getcwd()}).")
    backend = resolve_backend(backend)
    return _with_checked_info(path, lambda info: _sample_with_index(path, choose_indices, backend, info))


def _sample_with_index(
    path: str, choose_indices: IndexChooser | None, backend: str, info: VideoFileInfo
) -> tuple[Any, SampledVideoMetadata]:
    metadata = SampledVideoMetadata(
        total_num_frames=info.num_frames,
        fps=info.fps,
        width=info.width,
        height=info.height,
        duration=info.duration,
        video_backend=backend,
        frame_times=info.frame_times,
    )
    metadata.frames_indices = _choose(choose_indices, metadata)
    frames = decode_frames(path, metadata.frames_indices, info.stream_index, backend)
    return frames, metadata


def _with_checked_info(path: str, use: Callable[[VideoFileInfo], Any]) -> Any:
    """`use(info)` with the info read from the sample table; where decoding finds the table wrong (`IndexMismatch`),
    again with the info read from every packet, with a warning."""
    try:
        return use(read_video_info(path, container_index=True))
    except IndexMismatch as mismatch:
        logger.warning(
            f"The sample table of video file '{path}' did not match its packets ({mismatch.__cause__ or mismatch});"
            " reading every packet's timestamps instead and choosing the frames again (slower for long videos,"
            " same result as for a file without a usable table)."
        )
        return use(read_video_info(path))


def decode_video_frames(path: str, indices: Sequence[int], backend: str | None = None) -> np.ndarray:
    """Decode the frames at `indices` (repeats allowed) of the video at `path`, seeking to each (see
    `video_decoding`)."""
    return _with_checked_info(path, lambda info: decode_frames(path, indices, info.stream_index, backend))
