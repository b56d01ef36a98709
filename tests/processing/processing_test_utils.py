"""Small helpers shared by the processing tests."""


def video_turn(question: str, num_videos: int = 1) -> dict:
    """A user message with `num_videos` videos followed by the question text."""
    return {"role": "user", "content": [{"type": "video"}] * num_videos + [{"type": "text", "text": question}]}


def assistant_turn(answer: str) -> dict:
    return {"role": "assistant", "content": [{"type": "text", "text": answer}]}


def masked_token_ids(outputs, row: int = 0, key: str = "query_mask") -> list[int]:
    """The input ids of `row` where `outputs[key]` is 1."""
    ids, mask = outputs["input_ids"][row], outputs[key][row]
    return [int(token) for token, keep in zip(ids, mask) if int(keep)]


def plain_token_ids(tokenizer, text: str) -> list[int]:
    """How `text` tokenizes on its own (no special tokens)."""
    return tokenizer(text, add_special_tokens=False)["input_ids"]
