"""The paper's prompts and answer formats (supplement Tables 15-16) and the conversations built from them.

Training records follow the Grounding-FT layout: a user turn with the video and a randomly chosen template, an
assistant turn with the answer, and the video path in `videos`. Messages use transformers' structured content
(`{"type": "video"}` / `{"type": "text", ...}`), so each backbone's chat template renders them in its own layout.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from .input_checks import check_query


VIDEO_PLACEHOLDER = "<video>"

# Moment retrieval instructions (Table 15); a random one is used per training sample.
MR_TEMPLATES: tuple[str, ...] = (
    "<video>At what point in the video did the following events occur: {query}? Output the start and end timestamps.",
    "<video>What is the location of the moment: {query}?",
    "<video>Find when the following event happens in the video: {query}. Give me the start and end times.",
    "<video>Please indicate the start and end timestamps for the event: {query}.",
    "<video>Please predict start and end time of the following moment: {query}.",
    "<video>During which time interval does this happen in the video: {query}?",
    "<video>Locate the moment in the video where this occurs: {query}. Provide start and end times.",
    "<video>For the video, when does this event take place: {query}? Answer with start and end timestamps.",
    "<video>I want to know the start and end times of the following event in the video: {query}.",
    "<video>Could you tell me from what time to what time this happens: {query}?",
    "<video>Can you tell me the time window of this event: {query}?",
    "<video>Please find the timestamps that mark the occurrence of this event: {query}.",
    "<video>Identify the start and end of the following event in the video: {query}.",
)

# Highlight detection instructions (Table 16).
HD_TEMPLATES: tuple[str, ...] = (
    "<video>Please highlight the most exciting parts related to: {query}.",
    "<video>Find the most relevant or important moments for: {query}.",
    "<video>Which moments in the video best reflect: {query}?",
    "<video>Highlight the key segments that correspond to: {query}.",
    "<video>Show the most interesting clips about: {query}.",
    "<video>What are the highlight moments for: {query}?",
    "<video>Mark the time intervals that are most significant for: {query}.",
)

# Evaluation prompts (moment retrieval and NExT-GQA grounding; QVHighlights highlight detection).
GROUNDING_EVAL_PROMPT = (
    "Based on the video, please provide the start and end timestamps (in seconds) for the moment described by:"
    " '{query}'. Respond in the format 'X to Y seconds'. If unsure, make your best guess."
)
HIGHLIGHT_EVAL_PROMPT = "Please highlight the most important parts for the following event: {query}"

MR_ANSWER_TEMPLATE = "from {start}s to {end}s"
HD_ANSWER_PREFIX = "The highlights are: "
# Saliency level of a 2-s clip from the mean of its annotators' 0-4 scores, and the score a level stands for.
HD_LEVELS: tuple[str, ...] = ("very important", "important", "less important")
HD_LEVEL_SCORES: dict[str, int] = {"very important": 4, "important": 3, "less important": 2}
HD_CLIP_SECONDS = 2.0

Task = Literal["mr", "hd"]
PromptTask = Literal["mr", "hd", "qa"]  # qa: NExT-GQA's multiple-choice question

# Grounding-FT draws templates with seed 42; a shared generator keeps a run reproducible.
_TEMPLATE_RNG = random.Random(42)


def normalize_query(query: str) -> str:
    """Collapse whitespace and drop trailing periods (templates add their own punctuation)."""
    query = re.sub(r"\s+", " ", check_query(query)).strip().rstrip(".").strip()
    return check_query(query)


def format_seconds(value: float, decimals: int = 1) -> str:
    return f"{value:.{decimals}f}"


def format_mr_answer(start: float, end: float, decimals: int = 1) -> str:
    """`from {start}s to {end}s`, e.g. `from 20.8s to 30.0s`."""
    if start < 0 or end < start:
        raise ValueError(f"A moment needs 0 <= start <= end, got start={start}, end={end}.")
    return MR_ANSWER_TEMPLATE.format(start=format_seconds(start, decimals), end=format_seconds(end, decimals))


def highlight_level(mean_score: float) -> str:
    """`very important` (mean >= 3.5), `important` (>= 2.5) or `less important`."""
    if mean_score >= 3.5:
        return "very important"
    if mean_score >= 2.5:
        return "important"
    return "less important"


def format_hd_answer(
    relevant_clip_ids: Sequence[int],
    saliency_scores: Sequence[Sequence[float]],
    clip_seconds: float = HD_CLIP_SECONDS,
) -> str:
    """`The highlights are: very important from 96.0s to 98.0s, 98.0s to 100.0s; important from ...`.

    Each relevant clip is listed on its own under the level of its mean annotator score; empty levels are dropped.
    """
    if len(relevant_clip_ids) != len(saliency_scores) or not relevant_clip_ids:
        raise ValueError(
            f"Need one saliency score row per relevant clip, got {len(relevant_clip_ids)} clips and"
            f" {len(saliency_scores)} score rows."
        )
    by_level: dict[str, list[str]] = {level: [] for level in HD_LEVELS}
    for clip_id, scores in zip(relevant_clip_ids, saliency_scores):
        start, end = clip_id * clip_seconds, (clip_id + 1) * clip_seconds
        by_level[highlight_level(sum(scores) / len(scores))].append(f"{start:.1f}s to {end:.1f}s")
    parts = [f"{level} from {', '.join(clips)}" for level, clips in by_level.items() if clips]
    return HD_ANSWER_PREFIX + "; ".join(parts)


def _pick_template(templates: Sequence[str], template_index: int | None, rng: random.Random | None) -> str:
    if template_index is not None:
        if not 0 <= template_index < len(templates):
            raise ValueError(f"`template_index` must be in [0, {len(templates) - 1}], got {template_index}.")
        return templates[template_index]
    return (rng or _TEMPLATE_RNG).choice(list(templates))


def mr_instruction(query: str, template_index: int | None = None, rng: random.Random | None = None) -> str:
    """A moment-retrieval instruction with the `<video>` marker, e.g. `<video>What is the location of ...?`."""
    return _pick_template(MR_TEMPLATES, template_index, rng).format(query=normalize_query(query))


def hd_instruction(query: str, template_index: int | None = None, rng: random.Random | None = None) -> str:
    """A highlight-detection instruction with the `<video>` marker."""
    return _pick_template(HD_TEMPLATES, template_index, rng).format(query=normalize_query(query))


def grounding_eval_prompt(query: str) -> str:
    return GROUNDING_EVAL_PROMPT.format(query=check_query(query))


def highlight_eval_prompt(query: str) -> str:
    return HIGHLIGHT_EVAL_PROMPT.format(query=check_query(query))


def mcq_prompt(question: str, options: Sequence[str]) -> str:
    """Question, `Options:` with `(A) ...` lines, and `Please only give the best option.`."""
    lines = [check_query(question, "question"), "Options:"]
    for index, option in enumerate(options):
        if option:
            lines.append(f"({chr(ord('A') + index)}) {option[0].upper() + option[1:]}")
    return "\n".join(lines) + "\nPlease only give the best option."


def task_prompt(query: str, task: PromptTask, options: Sequence[str] | None = None) -> str:
    """The evaluation prompt of `task`: "mr" (one span), "hd" (highlights) or "qa" (pick one of `options`)."""
    if task == "mr":
        return grounding_eval_prompt(query)
    if task == "hd":
        return highlight_eval_prompt(query)
    if task == "qa":
        if not options:
            raise ValueError("The qa task needs answer options (e.g. NExT-GQA's a0..a4).")
        return mcq_prompt(query, options)
    raise ValueError(f"`task` must be 'mr', 'hd' or 'qa', got {task!r}.")


def _video_block(video: str | None) -> dict[str, Any]:
    # Without a path the processor call supplies the video; with one, the chat template may load it itself.
    return {"type": "video", "video": video} if video is not None else {"type": "video"}


def message_text(message: Any) -> str:
    """The text of one chat turn: its `content` string, or its text blocks joined by spaces (other blocks, such as
    videos, have none)."""
    content = message.get("content") if isinstance(message, Mapping) else None
    if isinstance(content, list):
        return " ".join(str(block.get("text") or "") for block in content if isinstance(block, Mapping))
    return str(content or "")


def user_turn(text: str, video: str | None = None) -> dict[str, Any]:
    """One user message: the video first, then `text` (the question VTS pools as its query)."""
    return {"role": "user", "content": [_video_block(video), {"type": "text", "text": text}]}


def assistant_turn(text: str) -> dict[str, Any]:
    """One assistant message holding `text` (the answer a training record teaches)."""
    return {"role": "assistant", "content": [{"type": "text", "text": text}]}


def user_content(instruction: str, video: str | None = None) -> list[dict[str, Any]]:
    """Structured user content from an instruction that may start with the `<video>` marker."""
    content: list[dict[str, Any]] = []
    text = instruction
    if text.startswith(VIDEO_PLACEHOLDER):
        text = text[len(VIDEO_PLACEHOLDER) :]
        content.append(_video_block(video))
    elif VIDEO_PLACEHOLDER in text:
        raise ValueError(f"The `{VIDEO_PLACEHOLDER}` marker must open the instruction, got: {instruction!r}")
    content.append({"type": "text", "text": text})
    return content


def _training_record(instruction: str, answer: str, video: str) -> dict[str, Any]:
    # user_content, not user_turn: the template's `<video>` marker decides whether the turn holds the video.
    return {
        "messages": [{"role": "user", "content": user_content(instruction)}, assistant_turn(answer)],
        "videos": [video],
    }


def build_mr_conversation(
    query: str,
    start: float,
    end: float,
    video: str,
    *,
    template_index: int | None = None,
    rng: random.Random | None = None,
    decimals: int = 1,
) -> dict[str, Any]:
    """A Grounding-FT moment-retrieval sample: `{"messages": [user, assistant], "videos": [video]}`."""
    return _training_record(mr_instruction(query, template_index, rng), format_mr_answer(start, end, decimals), video)


def build_hd_conversation(
    query: str,
    relevant_clip_ids: Sequence[int],
    saliency_scores: Sequence[Sequence[float]],
    video: str,
    *,
    template_index: int | None = None,
    rng: random.Random | None = None,
) -> dict[str, Any]:
    """A Grounding-FT highlight-detection sample from a QVHighlights record's clips and saliency scores."""
    answer = format_hd_answer(relevant_clip_ids, saliency_scores)
    return _training_record(hd_instruction(query, template_index, rng), answer, video)


def build_inference_messages(query: str, video: str | None = None, task: Task = "mr") -> list[dict[str, Any]]:
    """One user turn with the video and the evaluation prompt of `task` ("mr" grounding or "hd" highlights)."""
    if task not in ("mr", "hd"):  # qa needs its options: build it with `user_turn(task_prompt(q, "qa", options))`
        raise ValueError(f"`task` must be 'mr' or 'hd', got {task!r}.")
    return [user_turn(task_prompt(query, task), video)]


def build_inference_prompt(processor: Any, query: str, task: Task = "mr") -> str:
    """The evaluation prompt rendered by the processor's chat template, ending with the assistant header."""
    messages = build_inference_messages(query, None, task)
    return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def prepare_inference_inputs(
    processor: Any, query: str, video: Any, task: Task = "mr", **processor_kwargs: Any
) -> Any:
    """Model inputs (`BatchFeature`, PyTorch tensors) for one video and query, for either backbone."""
    prompt = build_inference_prompt(processor, query, task)
    processor_kwargs.setdefault("return_tensors", "pt")
    return processor(text=[prompt], videos=[video], **processor_kwargs)


def training_prompt_and_videos(processor: Any, record: dict[str, Any]) -> tuple[str, list[Any]]:
    """The full training text (user + answer) rendered by the processor's chat template, and the record's videos."""
    text = processor.apply_chat_template(record["messages"], tokenize=False)
    return text, list(record.get("videos") or [])
