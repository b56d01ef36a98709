"""trainers/rewards.py: grounding rewards in TRL's reward-function form, on the edge cases an RL run meets."""

import pytest

from groundvts.trainers.rewards import format_reward, highlight_reward, temporal_iou_reward


def test_temporal_iou_reward_scores_the_answers_own_span():
    completions = [
        "From 2.0 seconds to 6.0 seconds.",           # exact
        "It happens from 4 to 8 seconds.",            # half overlap: IoU 2 / 6
        [{"role": "assistant", "content": "3.0 - 5.0"}],  # conversational completion
        "From 8.0 to 3.0 seconds.",                   # reversed: no credit
        "I cannot tell.",                             # unparsable: no credit
        "From 2.0 to 40.0 seconds.",                  # past the video: scored as given (no clamping)
    ]
    truth = [[2.0, 6.0]] * len(completions)
    rewards = temporal_iou_reward(completions, window=truth, duration=[30.0] * len(completions))
    assert rewards == pytest.approx([1.0, 2 / 6, 0.5, 0.0, 0.0, 4 / 38])


def test_format_reward_wants_a_span_in_order():
    assert format_reward(["from 1 to 2 seconds", "from 5 to 2", "no idea", [{"role": "assistant", "content": [
        {"type": "text", "text": "0.5 to 1.5"}]}]]) == [1.0, 0.0, 0.0, 1.0]


def test_highlight_reward_is_clip_f1():
    text = "very important from 0 to 4 seconds; less important from 10 to 12 seconds."  # clips 0, 1 and 5
    rewards = highlight_reward([text, "nothing", text], relevant_clip_ids=[[0, 1], [0], []], duration=[20, 20, 20])
    assert rewards == pytest.approx([2 * 2 / (3 + 2), 0.0, 0.0])


def test_missing_columns_and_bad_rows_are_named():
    with pytest.raises(ValueError, match="`window` column"):
        temporal_iou_reward(["from 1 to 2"])
    with pytest.raises(ValueError, match="completion 1: the true window"):
        temporal_iou_reward(["from 1 to 2", "from 1 to 2"], window=[[0, 1], [5, 2]])
    with pytest.raises(ValueError, match="2 values for 1 completions"):
        temporal_iou_reward(["from 1 to 2"], window=[[0, 1], [0, 1]])
    with pytest.raises(ValueError, match="completion 0"):
        format_reward([42])


def test_rows_of_the_other_task_get_none_so_mixed_data_works():
    from groundvts.trainers.rewards import format_reward, highlight_reward, temporal_iou_reward

    answers = ["From 2.0 to 4.0 seconds.", "The highlights are from 0 to 4 seconds, very good."]
    windows, clips = [[2.0, 4.0], None], [None, [0, 1]]
    assert temporal_iou_reward(answers, window=windows) == [1.0, None]
    assert format_reward(answers, window=windows) == [1.0, None]
    assert highlight_reward(answers, relevant_clip_ids=clips, duration=[10.0, 10.0])[0] is None
