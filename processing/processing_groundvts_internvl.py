"""GroundVTS processor for InternVL3.5-HF backbones (GroundVTS-I).

On top of `InternVLProcessor` it
- takes videos as file paths, decoded frames, or frames + `video_metadata` and keeps a fixed number of frames
  (default 16, the middle frame of equal segments of time, variable-rate files by their presentation timestamps;
  short videos repeat frames; `max_frames` caps the count), resized to the image tile size;
- can label frames with their time (`frame_timestamps=True`; off by default, as in the paper);
- returns `mm_token_type_ids` (0 text, 1 still-image tokens, 2 `<IMG_CONTEXT>` tokens of video frames),
  `video_num_frames` (frames per video, in order of appearance across the batch) and `query_mask` (1 exactly on
  the question text of the last user turn).

Hub-facing: saved next to the weights with its flat helpers and loaded with
`AutoProcessor.from_pretrained(repo, trust_remote_code=True)`.
"""

import math
from typing import Any

from transformers.models.internvl.processing_internvl import InternVLProcessor
from transformers.processing_utils import ProcessingKwargs, VideosKwargs
from transformers.utils import logging

from .input_checks import check_video_call_kwargs, check_videos_given
from .query_mask import (
    build_query_mask,
    like_input_ids,
    request_alignment_outputs,
    special_token_strings,
    tokens_in_replacements,
)
from .video_sampling import (
    FrameChoice,
    SampledVideoMetadata,
    VideoMetadataInput,
    planned_frame_count,
    prepare_videos,
    requested_frame_count,
    segment_center_positions,
)


logger = logging.get_logger(__name__)

DEFAULT_NUM_FRAMES = 16
# The video arguments of a call that decide which frames are kept (`sample_videos`); the rest shape the pixels.
SAMPLING_KWARGS = ("video_metadata", "fps", "num_frames", "max_frames", "do_sample_frames", "video_backend")
_METADATA_KEY = "groundvts_video_metadata"

TEXT_TOKEN_TYPE, IMAGE_TOKEN_TYPE, VIDEO_TOKEN_TYPE = 0, 1, 2


class GroundVTSInternVLVideosKwargs(VideosKwargs, total=False):
    """Video arguments of a processor call.

    `video_backend` picks the decoder for paths ("pyav", the default, or "torchcodec": the same frames, slower in
    our benchmark); `frame_timestamps` writes each frame's time in its label ("Frame3 at 4.5s: ...");
    `max_frames` caps `num_frames` / `fps` sampling (default: the video processor's `max_frames` when its config
    sets one, else no cap).
    """

    video_backend: str
    video_metadata: VideoMetadataInput
    frame_timestamps: bool
    max_frames: int


class GroundVTSInternVLProcessingKwargs(ProcessingKwargs, total=False):
    videos_kwargs: GroundVTSInternVLVideosKwargs


class GroundVTSInternVLProcessor(InternVLProcessor):
    valid_processor_kwargs = GroundVTSInternVLProcessingKwargs

    def __call__(self, images=None, text=None, videos=None, **kwargs):
        """Stock InternVL outputs plus `mm_token_type_ids`, `video_num_frames` (with videos) and `query_mask`."""
        if text is None:
            raise ValueError("`text` is required: pass the prompt rendered with `apply_chat_template`.")
        check_video_call_kwargs(kwargs)
        check_videos_given(text, videos, self.video_token)
        texts = [text] if isinstance(text, str) else list(text)
        unrequested = request_alignment_outputs(kwargs)
        want_metadata = kwargs.get("return_metadata") or (kwargs.get("videos_kwargs") or {}).get("return_metadata")
        outputs = super().__call__(images=images, text=text, videos=videos, **kwargs)
        metadata = outputs.pop(_METADATA_KEY, None)
        if want_metadata and metadata is not None:
            outputs["video_metadata"] = metadata
        input_ids = outputs["input_ids"]
        offsets = _rows(outputs["offset_mapping"])
        replacements = outputs.get("text_replacement_offsets") or [[] for _ in texts]
        token_types = self._token_types(_rows(input_ids), offsets, replacements)
        masks = build_query_mask(
            texts, offsets, replacements, special_token_strings(self.tokenizer, self.image_token, self.video_token)
        )
        for row_index, (mask, types) in enumerate(zip(masks, token_types)):
            if VIDEO_TOKEN_TYPE in types and not any(mask):
                raise ValueError(
                    f"Sample {row_index} has a video but no question text in its last user turn, so VTS has no query."
                    " Put the question as text in the last user message."
                )
        outputs["mm_token_type_ids"] = like_input_ids(token_types, input_ids)
        outputs["query_mask"] = like_input_ids(masks, input_ids)
        for key in unrequested:
            outputs.pop(key, None)
        return outputs

    def _token_types(
        self, input_ids: list[list[int]], offsets: list[list[list[int]]], replacements: list[list[dict[str, Any]]]
    ) -> list[list[int]]:
        """Type per token: `<IMG_CONTEXT>` inside a video expansion is 2; image tokens inside an image expansion 1."""
        image_ids = set(self.image_token_ids)
        all_types = []
        for ids, row_offsets, row_replacements in zip(input_ids, offsets, replacements):
            in_video = tokens_in_replacements(row_offsets, row_replacements, "video")
            in_image = tokens_in_replacements(row_offsets, row_replacements, "image")
            types = []
            for token_id, video_hit, image_hit in zip(ids, in_video, in_image):
                if video_hit and token_id == self.image_token_id:
                    types.append(VIDEO_TOKEN_TYPE)
                elif image_hit and token_id in image_ids:
                    types.append(IMAGE_TOKEN_TYPE)
                else:
                    types.append(TEXT_TOKEN_TYPE)
            all_types.append(types)
        return all_types

    def _process_videos(self, videos, **kwargs):
        label_times = bool(kwargs.pop("frame_timestamps", False))
        frames, metadata = self.sample_videos(videos, **{key: kwargs.pop(key, None) for key in SAMPLING_KWARGS})
        counts = [len(video) for video in frames]
        if len(set(counts)) > 1:
            raise ValueError(
                f"All videos of one call need the same number of frames for InternVL, got {counts}; sample them"
                " (default) or pass equally long frame arrays."
            )
        if "size" not in kwargs and (tile_size := self._tile_size()) is not None:
            # The vision tower expects frames at the image tile size (448 px for InternVL3.5), not the video
            # processor's default.
            kwargs["size"] = tile_size
        processed = self.video_processor(frames, video_metadata=metadata, do_sample_frames=False, **kwargs)
        processed["video_num_frames"] = counts
        # InternVLProcessor drops `video_metadata` from its outputs; carry it under our own key to `__call__`.
        processed[_METADATA_KEY] = metadata
        replacements = [
            self.video_frame_lines(count, _frame_times(meta) if label_times else None)
            for count, meta in zip(counts, metadata)
        ]
        return processed, replacements

    def sample_videos(
        self,
        videos: Any,
        video_metadata: VideoMetadataInput = None,
        *,
        fps: float | None = None,
        num_frames: int | None = None,
        max_frames: int | None = None,
        do_sample_frames: bool | None = None,
        video_backend: str | None = None,
    ) -> tuple[list[Any], list[SampledVideoMetadata]]:
        """The frames a call with these video arguments keeps, and their metadata (source indices, true times),
        before resizing. Decode a video once and ask it several questions: pass the result back as
        `videos=frames, video_metadata=metadata` (sampled frames are used as given)."""
        if fps is not None and num_frames is not None:
            raise ValueError("`fps` and `num_frames` are mutually exclusive; pass only one.")
        max_frames = max_frames or getattr(self.video_processor, "max_frames", None)
        num_frames = num_frames or getattr(self.video_processor, "num_frames", None) or DEFAULT_NUM_FRAMES

        def choose(total: int, native_fps: float | None) -> FrameChoice:
            if fps is not None and native_fps:
                requested = max(1, int(requested_frame_count(total, native_fps, target_fps=fps)))
            else:
                requested = num_frames
            # Segment centres repeat frames of short videos, so only the cap (not the source) bounds the count.
            count, capped = planned_frame_count(math.inf, requested, max_frames)
            return FrameChoice(segment_center_positions(total, count), requested, max_frames, capped)

        # video_backend None: PyAV.
        frames, metadata = prepare_videos(
            videos, video_metadata, None if do_sample_frames is False else choose, backend=video_backend
        )
        for meta in metadata:
            if meta.frames_capped:
                logger.warning(
                    f"InternVL video sampling asked for {meta.requested_frames:g} frames but max_frames="
                    f"{meta.max_frames}; sampled {len(meta.frames_indices)} (`video_metadata` says `frames_capped`)."
                )
        return frames, metadata

    def _tile_size(self) -> dict[str, int] | None:
        size = getattr(self.image_processor, "size", None)
        height, width = _size_get(size, "height"), _size_get(size, "width")
        return {"height": height, "width": width} if height and width else None

    def video_frame_lines(self, num_frames: int, timestamps: list[float] | None = None) -> str:
        """The text a video expands to: one `FrameN: <img>…</img>` line per frame, optionally with its time."""
        context = self.image_token * self.image_seq_length
        lines = []
        for index in range(num_frames):
            label = f"Frame{index + 1}" if timestamps is None else f"Frame{index + 1} at {timestamps[index]:.1f}s"
            lines.append(f"{label}: {self.start_image_token}{context}{self.end_image_token}")
        return "\n".join(lines)

    def replace_video_token(self, video_inputs: dict, video_idx: int, **kwargs) -> str:
        return self.video_frame_lines(int(video_inputs["video_num_frames"][video_idx]))

    @property
    def model_input_names(self):
        return super().model_input_names + ["mm_token_type_ids", "video_num_frames", "query_mask"]


def _frame_times(metadata: SampledVideoMetadata) -> list[float]:
    if not metadata.fps:
        raise ValueError(
            "`frame_timestamps=True` needs the video fps: pass a file path or `video_metadata` with `fps`."
        )
    return metadata.timestamps


def _size_get(size: Any, key: str) -> int | None:
    if size is None:
        return None
    if isinstance(size, dict):
        return size.get(key)
    return getattr(size, key, None)


def _rows(value: Any) -> list:
    return value.tolist() if hasattr(value, "tolist") else value


GroundVTSInternVLProcessor.register_for_auto_class("AutoProcessor")

__all__ = ["GroundVTSInternVLProcessor"]
