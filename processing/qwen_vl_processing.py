"""What the two Qwen-VL GroundVTS processors (GroundVTS-Q on Qwen2.5-VL, GroundVTS-Q3 on Qwen3-VL) add to their stock
processor, in one place (Hub-facing, flat, relative imports only):

- videos as file paths, decoded frames, or frames + `video_metadata`, sampled at a target fps (default 2.0) or a
  fixed `num_frames`, within `min_frames`/`max_frames` (the cap binds `num_frames` too), keeping every kept frame's
  source index and true time (presentation times for variable-rate files), never the 24 fps fallback;
- `query_mask`, 1 exactly on the question text of the last user turn (what VTS pools as its query);
- `min_pixels`/`max_pixels` per call.
"""

from typing import Any

from transformers.processing_utils import ProcessingKwargs, VideosKwargs
from transformers.utils import logging

from .input_checks import check_positive, check_video_call_kwargs, check_videos_given
from .query_mask import build_query_mask, like_input_ids, request_alignment_outputs, special_token_strings
from .video_sampling import (
    FrameChoice,
    IndexChooser,
    SampledVideoMetadata,
    VideoMetadataInput,
    flatten_videos,
    planned_frame_count,
    prepare_videos,
    requested_frame_count,
    uniform_step_positions,
)


logger = logging.get_logger(__name__)

DEFAULT_FPS = 2.0
# The video arguments of a call that decide which frames are kept (`sample_videos`); the rest shape the pixels.
SAMPLING_KWARGS = (
    "video_metadata", "fps", "num_frames", "min_frames", "max_frames", "do_sample_frames", "video_backend",
)


class GroundVTSQwenVideosKwargs(VideosKwargs, total=False):
    """Video arguments of a processor call; `video_backend` picks the decoder for paths ("pyav", the default, or
    "torchcodec": the same frames, slower in our benchmark)."""

    video_backend: str
    video_metadata: VideoMetadataInput
    min_frames: int
    max_frames: int
    min_pixels: int
    max_pixels: int


class GroundVTSQwenProcessingKwargs(ProcessingKwargs, total=False):
    videos_kwargs: GroundVTSQwenVideosKwargs


class GroundVTSQwenVLProcessorMixin:
    """List it before the stock `Qwen*VLProcessor`."""

    valid_processor_kwargs = GroundVTSQwenProcessingKwargs
    # The per-frame pixel cap of the backbone's reference recipe, used unless the call or the saved video processor
    # config sets `cap_pixels_per_frame`: GroundVTS-Q's bounds pixels per frame only (`max_pixels`).
    default_cap_pixels_per_frame = False
    # Whether the video processor's `size["longest_edge"]` bounds the whole video (Qwen3-VL) rather than each frame.
    longest_edge_is_per_video = False

    def __call__(self, images=None, text=None, videos=None, **kwargs):
        """Stock Qwen2.5-VL outputs plus `query_mask` (same shape and type as `input_ids`)."""
        check_video_call_kwargs(kwargs)
        check_videos_given(text, videos, self.video_token)
        texts = None if text is None else ([text] if isinstance(text, str) else list(text))
        unrequested = request_alignment_outputs(kwargs) if texts is not None else []
        outputs = super().__call__(images=images, text=text, videos=videos, **kwargs)
        if texts is not None:
            masks = build_query_mask(
                texts,
                outputs["offset_mapping"],
                outputs.get("text_replacement_offsets"),
                special_token_strings(self.tokenizer, self.image_token, self.video_token),
            )
            self._check_video_rows_have_query(masks, outputs["input_ids"])
            outputs["query_mask"] = like_input_ids(masks, outputs["input_ids"])
        for key in unrequested:
            outputs.pop(key, None)
        return outputs

    def _check_video_rows_have_query(self, masks: list[list[int]], input_ids: Any) -> None:
        rows = input_ids.tolist() if hasattr(input_ids, "tolist") else input_ids
        for row_index, (mask, ids) in enumerate(zip(masks, rows)):
            if self.video_token_id in ids and not any(mask):
                raise ValueError(
                    f"Sample {row_index} has a video but no question text in its last user turn, so VTS has no query."
                    " Put the question as text in the last user message."
                )

    def _process_videos(self, videos, **kwargs):
        frames, metadata = self.sample_videos(videos, **{key: kwargs.pop(key, None) for key in SAMPLING_KWARGS})
        self._pixels_to_size(kwargs)
        unset_cap = getattr(self.video_processor, "cap_pixels_per_frame", None) is None
        if kwargs.get("cap_pixels_per_frame") is None and unset_cap:
            kwargs["cap_pixels_per_frame"] = self.default_cap_pixels_per_frame
        return super()._process_videos(frames, video_metadata=metadata, do_sample_frames=False, **kwargs)

    def sample_videos(
        self,
        videos: Any,
        video_metadata: VideoMetadataInput = None,
        *,
        fps: float | None = None,
        num_frames: int | None = None,
        min_frames: int | None = None,
        max_frames: int | None = None,
        do_sample_frames: bool | None = None,
        video_backend: str | None = None,
    ) -> tuple[list[Any], list[SampledVideoMetadata]]:
        """The frames a call with these video arguments keeps, and their metadata (source indices, true times),
        before resizing. Decode a video once and ask it several questions: pass the result back as
        `videos=frames, video_metadata=metadata` (sampled frames are used as given)."""
        if fps is not None and num_frames is not None:
            raise ValueError("`fps` and `num_frames` are mutually exclusive; pass only one.")
        target_fps = fps or getattr(self.video_processor, "fps", None) or DEFAULT_FPS
        choose = None
        if do_sample_frames is not False:
            choose = self._frame_chooser(target_fps, num_frames, min_frames, max_frames)
        # video_backend None: PyAV.
        frames, metadata = prepare_videos(videos, video_metadata, choose, assumed_fps=target_fps, backend=video_backend)
        _warn_capped(videos, metadata, num_frames, target_fps)
        return frames, metadata

    def _frame_chooser(
        self, target_fps: float, num_frames: int | None, min_frames: int | None, max_frames: int | None
    ) -> IndexChooser:
        frame_factor = self.video_processor.temporal_patch_size
        min_frames = min_frames or getattr(self.video_processor, "min_frames", None) or 4
        # The cap (paper: 128) lives in the saved video processor config; it bounds `num_frames` too.
        max_frames = max_frames or getattr(self.video_processor, "max_frames", None) or 768

        def choose(total: int, native_fps: float | None) -> FrameChoice:
            requested = requested_frame_count(
                total, native_fps or target_fps, target_fps=target_fps, num_frames=num_frames, min_frames=min_frames
            )
            count, capped = planned_frame_count(total, requested, max_frames, frame_factor)
            return FrameChoice(uniform_step_positions(total, count), requested, max_frames, capped)

        return choose

    def _pixels_to_size(self, kwargs: dict[str, Any]) -> None:
        """Accept `min_pixels`/`max_pixels` per call as the `size` bounds they mean (no deprecation warning)."""
        min_pixels, max_pixels = kwargs.pop("min_pixels", None), kwargs.pop("max_pixels", None)
        if min_pixels is None and max_pixels is None:
            return
        size = dict(kwargs.get("size") or self.video_processor.size)
        if min_pixels is not None:
            check_positive(min_pixels, "min_pixels")
            size["shortest_edge"] = min_pixels
        if max_pixels is not None:
            check_positive(max_pixels, "max_pixels")
            size["longest_edge"] = max_pixels
        if size["shortest_edge"] > size["longest_edge"]:
            raise ValueError(f"`min_pixels` ({size['shortest_edge']}) exceeds `max_pixels` ({size['longest_edge']}).")
        kwargs["size"] = size

    @property
    def model_input_names(self):
        return super().model_input_names + ["query_mask"]


def _warn_capped(
    videos: Any, metadata: list[SampledVideoMetadata], num_frames: int | None, target_fps: float
) -> None:
    """Say when max_frames made a video sparser than asked: every time for an explicit `num_frames`, once per
    setting for `fps` (long videos hit the cap by design; each video's metadata still says `frames_capped`)."""
    capped = [(index, meta) for index, meta in enumerate(metadata) if meta.frames_capped]
    if not capped:
        return
    if num_frames is None:
        logger.warning_once(
            f"Videos longer than max_frames={capped[0][1].max_frames} frames at {target_fps:g} fps are sampled more"
            " sparsely than asked (their `video_metadata` says `frames_capped=True`); raise `max_frames` in the call"
            " or the saved video processor config to change the cap."
        )
        return
    names = flatten_videos(videos)
    for index, meta in capped:
        name = f"'{names[index]}'" if isinstance(names[index], str) else f"video {index}"
        kept = len(meta.frames_indices)
        spacing = f" (one every {meta.duration / kept:.2f} s)" if meta.duration else ""
        logger.warning(
            f"{name}: `num_frames`={num_frames} exceeds max_frames={meta.max_frames}; sampled {kept} frames{spacing}."
            " Raise `max_frames` in the call or the saved video processor config if memory allows."
        )
