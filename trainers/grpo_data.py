"""Stage-4 prompts from SFT records: the answer comes out of the prompt and becomes the reward's truth.

A Grounding-FT record (`groundvts build-data`, the synthetic benchmark's data, or your own messages+videos file) is
`{"messages": [user, assistant], "videos": [...], ...}`. GRPO needs the question alone, with the truth in columns
the rewards read:

- moment retrieval (`task` "mr", or any answer that names a span): `window` = the answer's `[start, end]`;
- highlight detection (`task` "hd"): `relevant_clip_ids` = the 2-s clips the answer rates above 0, and `duration`.

The truth is read back from the answer with the evaluation's parsers, which is exact for answers our builder wrote
(it writes numbers with one decimal). Records that already have `prompt` and `window` / `relevant_clip_ids` pass
through. A record whose truth cannot be read is reported by its source and skipped or refused, like the data
problems of the other stages.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from groundvts.processing.parsing import parse_hd_answer, parse_mr_answer
from groundvts.processing.prompts import HD_CLIP_SECONDS

from .collator import clean_messages
from .rewards import GROUNDING_REWARDS, completion_text, highlight_reward

TRUTH_COLUMNS = ("window", "relevant_clip_ids")


class GRPODataError(ValueError):
    """Records that cannot become stage-4 prompts; the message lists them by source."""


def grpo_row(record: Mapping[str, Any]) -> dict[str, Any]:
    """One stage-4 row: `prompt` (the turns before the last answer), `videos`, the truth columns, `duration`.
    Raises ValueError saying what is missing."""
    if "prompt" in record and any(record.get(key) is not None for key in TRUTH_COLUMNS):
        return {**record, "prompt": clean_messages(record["prompt"])}
    messages = clean_messages(record.get("messages") or [])
    answers = [index for index, message in enumerate(messages) if message["role"] == "assistant"]
    if not answers:
        raise ValueError("no assistant turn to read the true span from (and no `prompt` + `window` columns)")
    last = answers[-1]
    answer = completion_text(messages[last: last + 1])
    duration = record.get("duration")
    row = {key: value for key, value in record.items() if key != "messages"}
    row.update(prompt=messages[:last], window=None, relevant_clip_ids=None)
    if record.get("task") == "hd":
        if duration is None:
            raise ValueError("a highlight record needs its `duration` to place the 2-s clips")
        parsed = parse_hd_answer(answer, float(duration), HD_CLIP_SECONDS)
        if parsed is None:
            raise ValueError(f"the highlight answer {answer!r} names no clips")
        row["relevant_clip_ids"] = [clip for clip, level in enumerate(parsed.saliency_scores) if level > 0]
        return row
    parsed = parse_mr_answer(answer)
    if parsed is None or parsed.raw_end < parsed.raw_start:
        raise ValueError(f"the answer {answer!r} names no span (start <= end) to reward against")
    row["window"] = [parsed.raw_start, parsed.raw_end]
    return row


def to_grpo_dataset(dataset: Any, policy: str = "error", log: Callable[[str], None] | None = None) -> Any:
    """`dataset` (a `datasets.Dataset` of SFT records) as stage-4 rows. `policy` "error" refuses the whole set when
    a record's truth cannot be read (listing them by `source`, or by index); "skip" drops them, each one logged."""
    import datasets

    rows, bad = [], []
    for index, record in enumerate(dataset):
        try:
            rows.append(grpo_row(record))
        except ValueError as error:
            bad.append(f"{record.get('source') or f'#{index}'}: {error}")
    if bad and (policy == "error" or not rows):
        listed = "\n".join(f"  {line}" for line in bad[:20]) + (f"\n  ... and {len(bad) - 20} more" if len(bad) > 20 else "")
        raise GRPODataError(
            f"{len(bad)} of {len(bad) + len(rows)} records cannot be stage-4 prompts:\n{listed}\n"
            + ("Fix them, or set data.bad_records=skip to train without them." if rows else "No record is usable.")
        )
    for line in bad:
        (log or print)(f"skipped {line}")
    return datasets.Dataset.from_list(rows)


def default_rewards(dataset: Any) -> list[Callable[..., list[float | None]]]:
    """The rewards a dataset's truth calls for: temporal IoU + format where rows have a `window`, highlight F1
    where rows have `relevant_clip_ids`."""
    def used(column: str) -> bool:
        return column in dataset.column_names and any(value is not None for value in dataset[column])

    rewards: list[Callable[..., list[float | None]]] = []
    if used("window"):
        rewards.extend(GROUNDING_REWARDS)
    if used("relevant_clip_ids"):
        rewards.append(highlight_reward)
    if not rewards:
        raise GRPODataError(
            f"No row has a value in the truth columns {list(TRUTH_COLUMNS)} (columns: {dataset.column_names}); "
            "build the dataset with `to_grpo_dataset`, or pass your own `reward_funcs`."
        )
    return rewards
