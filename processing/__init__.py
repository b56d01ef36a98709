"""GroundVTS processors (video in, query mask, true time positions), the paper's prompts and answer parsers."""

from .parsing import HighlightPrediction, HighlightWindow, MomentPrediction, parse_hd_answer, parse_mr_answer
from .processing_groundvts_internvl import GroundVTSInternVLProcessor
from .processing_groundvts_qwen2_5_vl import GroundVTSQwen2_5_VLProcessor
from .processing_groundvts_qwen3_vl import GroundVTSQwen3VLProcessor
from .prompts import (
    HD_TEMPLATES,
    MR_TEMPLATES,
    build_hd_conversation,
    build_inference_messages,
    build_inference_prompt,
    build_mr_conversation,
    format_hd_answer,
    format_mr_answer,
    prepare_inference_inputs,
)


__all__ = [
    "GroundVTSInternVLProcessor",
    "GroundVTSQwen2_5_VLProcessor",
    "GroundVTSQwen3VLProcessor",
    "HD_TEMPLATES",
    "MR_TEMPLATES",
    "HighlightPrediction",
    "HighlightWindow",
    "MomentPrediction",
    "build_hd_conversation",
    "build_inference_messages",
    "build_inference_prompt",
    "build_mr_conversation",
    "format_hd_answer",
    "format_mr_answer",
    "parse_hd_answer",
    "parse_mr_answer",
    "prepare_inference_inputs",
]
