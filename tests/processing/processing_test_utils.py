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


TOKENS_PER_SECOND = 2  # as in the released Qwen2.5-VL checkpoints


def build_rope_model(processor):
    """Stock Qwen2.5-VL model on a tiny config matching `processor`'s token ids, only used for `get_rope_index`."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLModel

    from groundvts.processing.tiny import special_token_ids

    ids = special_token_ids(processor)
    config = Qwen2_5_VLConfig(
        text_config={
            "hidden_size": 16,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "intermediate_size": 32,
            "vocab_size": ids["vocab_size"],
            "rope_parameters": {"rope_type": "default", "mrope_section": [1, 1, 2], "rope_theta": 10000.0},
            "bos_token_id": ids["bos_token_id"],
            "eos_token_id": ids["eos_token_id"],
            "pad_token_id": ids["pad_token_id"],
        },
        vision_config={
            "depth": 1,
            "hidden_size": 16,
            "num_heads": 2,
            "intermediate_size": 32,
            "out_hidden_size": 16,
            "tokens_per_second": TOKENS_PER_SECOND,
            "fullatt_block_indexes": [0],
        },
        image_token_id=ids["image_token_id"],
        video_token_id=ids["video_token_id"],
        vision_start_token_id=ids["vision_start_token_id"],
        vision_end_token_id=ids["vision_end_token_id"],
    )
    return Qwen2_5_VLModel(config).eval()


def video_temporal_ids(rope_model, outputs, row: int = 0) -> list[int]:
    """The M-RoPE temporal id of each temporal grid of the (only) video of `row`, counted from the video's start,
    as the stock `get_rope_index` computes it from `second_per_grid_ts` and `tokens_per_second`."""
    position_ids, _ = rope_model.get_rope_index(
        outputs["input_ids"],
        outputs["mm_token_type_ids"],
        video_grid_thw=outputs["video_grid_thw"],
        second_per_grid_ts=outputs["second_per_grid_ts"],
        attention_mask=outputs["attention_mask"],
    )
    is_video = outputs["mm_token_type_ids"][row] == 2
    start = int(position_ids[0, row, int(is_video.nonzero()[0]) - 1]) + 1  # right after the preceding text token
    temporal = position_ids[0, row, is_video]
    grid_t, grid_h, grid_w = outputs["video_grid_thw"][row].tolist()
    per_grid = grid_h * grid_w // 4  # merged tokens per temporal grid (spatial merge 2 x 2)
    return [int(temporal[g * per_grid]) - start for g in range(grid_t)]


def qwen_frame_brightness(outputs, processor) -> list[float]:
    """Mean normalised value of every sampled frame of a one-video Qwen batch, read back from
    `pixel_values_videos` (rows are patches of (channel, temporal, row, col) values, grid after grid)."""
    video = processor.video_processor
    grid_t = int(outputs["video_grid_thw"][0][0])
    pixels = outputs["pixel_values_videos"].reshape(grid_t, -1, 3, video.temporal_patch_size, video.patch_size ** 2)
    return pixels.float().mean(dim=(1, 2, 4)).flatten().tolist()
