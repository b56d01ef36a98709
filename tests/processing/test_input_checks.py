"""Argument checks name the bad input."""

import pytest

from groundvts.processing.input_checks import (
    check_keep_ratio,
    check_positive,
    check_query,
    check_video_call_kwargs,
    kept_token_count,
)


@pytest.mark.parametrize("rho", [0, 0.0, -0.5, 1.01, 2, True, "0.5", None])
def test_keep_ratio_outside_0_1_is_rejected(rho):
    with pytest.raises(ValueError, match=r"keep_ratio.*\(0, 1\]"):
        check_keep_ratio(rho)


def test_keep_ratio_and_kept_tokens():
    assert check_keep_ratio(1) == 1.0 and check_keep_ratio(0.5) == 0.5
    assert kept_token_count(10, 0.7) == 7  # not 8 from 0.7 * 10 = 7.000000000000001
    assert kept_token_count(5, 0.5) == 3 and kept_token_count(0, 0.5) == 0 and kept_token_count(4, 1.0) == 4


@pytest.mark.parametrize("value", [0, -1, float("nan"), float("inf"), "2", True])
def test_positive_numbers(value):
    with pytest.raises(ValueError, match="`fps` must be a number > 0"):
        check_positive(value, "fps")


def test_query_and_call_kwargs():
    assert check_query("  a dog runs ") == "a dog runs"
    with pytest.raises(ValueError, match="`query` is empty"):
        check_query(" \n ")
    with pytest.raises(ValueError, match="`query` must be a string"):
        check_query(None)
    check_video_call_kwargs({"fps": 1.0, "videos_kwargs": {"num_frames": 4}})
    with pytest.raises(ValueError, match="`max_frames`"):
        check_video_call_kwargs({"videos_kwargs": {"max_frames": 0}})
