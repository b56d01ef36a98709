"""Turn the videos given to a processor (file paths, decoded frames, frames + metadata) into sampled frames
whose `VideoMetadata` tells the true time of every kept frame.

Why our own sampling instead of the video processors' `do_sample_frames`: transformers' video processors decode
paths with torchcodec only, and for frames without metadata they assume 24 fps, which collapses the timeline
(`second_per_grid_ts = 2 / 24`). Here every frame keeps its source index and the source fps, so
`VideoMetadata.sampled_fps` and `.timestamps` are exact.

Hub-facing helper: copied next to the processors by `save_pretrained`, so it imports nothing from `groundvts`.
"""

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields
from typing import Any

import numpy as np
from transformers.utils import logging
from transformers.video_utils import VideoMetadata, load_video, make_batched_videos

from .input_checks import check_positive


logger = logging.get_logger(__name__)

# What `video_metadata` may be in a processor call: like transformers', plus None entries for videos given as paths
# (or frames to be taken at the assumed fps) in a mixed batch.
MetadataEntry = VideoMetadata | dict | None
VideoMetadataInput = VideoMetadata | dict | list[MetadataEntry] | list[list[MetadataEntry]] | None

# (total number of source frames, source fps or None) -> indices of the frames to keep.
IndexChooser = Callable[[int, float | None], list[int]]

_METADATA_FIELDS = {f.name for f in fields(VideoMetadata)}


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
    wanted = total_frames / native_fps * target_fps
    count = min(max(wanted, min_frames), max_frames, total_frames)
    return uniform_step_indices(total_frames, whole_patches(count, frame_factor))


def whole_patches(count: float, frame_factor: int) -> int:
    """`count` floored to a multiple of `frame_factor`; 1 if that is 0 (the video processor pads it)."""
    paired = math.floor(count / frame_factor) * frame_factor
    return paired if paired > 0 else 1


def uniform_step_indices(total_frames: int, count: int) -> list[int]:
    """`count` indices at a constant step of total/count source frames, starting at frame 0."""
    count = min(count, total_frames)
    return [(k * total_frames) // count for k in range(count)]


def segment_center_indices(total_frames: int, count: int) -> list[int]:
    """The middle frame of each of `count` equal segments (InternVL policy).

    Short videos repeat frames so that every video yields exactly `count` frames.
    """
    return [((2 * k + 1) * total_frames) // (2 * count) for k in range(count)]


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


def align_metadata(video_metadata: Any, num_videos: int) -> list[VideoMetadata | None]:
    """One (copied) `VideoMetadata` or None per video."""
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


def _copy_metadata(entry: Mapping, index: int) -> VideoMetadata:
    if not isinstance(entry, Mapping):
        raise ValueError(f"`video_metadata[{index}]` must be a dict or VideoMetadata, got {type(entry).__name__}.")
    values = {key: entry[key] for key in entry if key in _METADATA_FIELDS and entry[key] is not None}
    values.setdefault("total_num_frames", None)
    metadata = VideoMetadata(**values)
    if metadata.fps is not None:
        check_positive(metadata.fps, f"video_metadata[{index}].fps")
    if metadata.frames_indices is not None:
        metadata.frames_indices = [int(i) for i in metadata.frames_indices]
    return metadata


def prepare_videos(
    videos: Any,
    video_metadata: Any = None,
    choose_indices: IndexChooser | None = None,
    assumed_fps: float | None = None,
    backend: str = "pyav",
) -> tuple[list[Any], list[VideoMetadata]]:
    """Sample every video; return the kept frames and their metadata (source fps, source indices).

    - path: decoded with transformers' `load_video` (only the kept frames are decoded);
    - frames + metadata with `frames_indices`: already sampled, used as given;
    - frames + metadata with `fps`: the frames are the whole video at that fps and get sampled;
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


def _sample_frames(
    video: Any,
    metadata: VideoMetadata | None,
    choose_indices: IndexChooser | None,
    assumed_fps: float | None,
    index: int,
) -> tuple[Any, VideoMetadata]:
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
        return video, metadata
    if metadata is None or metadata.fps is None:
        logger.warning_once(
            f"Video frames were given without `video_metadata` fps; assuming they were sampled at {assumed_fps} fps."
            " Pass `video_metadata={'fps': ..., 'total_num_frames': ...}` to state the real rate."
        )
        total = metadata.total_num_frames if metadata is not None and metadata.total_num_frames else num_frames
        metadata = VideoMetadata(total_num_frames=total, fps=assumed_fps)
    if metadata.total_num_frames is None:
        metadata.total_num_frames = num_frames
    if metadata.total_num_frames != num_frames:
        raise ValueError(
            f"`video_metadata[{index}]` says total_num_frames={metadata.total_num_frames} but video {index} has"
            f" {num_frames} frames; for frames sampled from a longer video also pass `frames_indices`."
        )
    indices = choose_indices(num_frames, metadata.fps) if choose_indices else list(range(num_frames))
    metadata.frames_indices = indices
    if metadata.fps:
        metadata.duration = num_frames / metadata.fps
    return video[indices], metadata


def probe_video_file(path: str) -> tuple[int, float, int, int]:
    """(frame count, fps, width, height) of the first video stream, with errors that name the file."""
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
            num_frames = stream.frames
            if not num_frames:
                # Some containers do not store a frame count: count the packets instead.
                num_frames = sum(1 for packet in container.demux(stream) if packet.size)
            width, height = stream.width, stream.height
    except av.FFmpegError as err:
        raise ValueError(f"Could not read video file '{path}' (corrupt or not a video?): {err}") from err
    if num_frames == 0:
        raise ValueError(f"Video file '{path}' has zero frames.")
    if not rate or float(rate) <= 0:
        raise ValueError(f"Could not determine the frame rate of video file '{path}'.")
    return int(num_frames), float(rate), int(width), int(height)


def _sample_file(path: str, choose_indices: IndexChooser | None, backend: str) -> tuple[Any, VideoMetadata]:
    if "://" not in path and not os.path.isfile(path):
        raise FileNotFoundError(f"Video file not found: '{path}'. Check the path (relative to {os.getcwd()}).")
    num_frames, fps, width, height = probe_video_file(path)
    indices = choose_indices(num_frames, fps) if choose_indices else list(range(num_frames))
    frames = decode_video_frames(path, indices, backend)
    metadata = VideoMetadata(
        total_num_frames=num_frames,
        fps=fps,
        width=width,
        height=height,
        duration=num_frames / fps,
        video_backend=backend,
        frames_indices=indices,
    )
    return frames, metadata


def decode_video_frames(path: str, indices: Sequence[int], backend: str = "pyav") -> Any:
    """Decode the frames at `indices` (repeats allowed) with transformers' `load_video`."""
    unique = sorted(set(indices))

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
    return frames[[position[i] for i in indices]]
