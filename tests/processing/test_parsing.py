"""Answer parsers on real-looking model outputs, including the ones that must fail."""

import pytest

from groundvts.processing.parsing import parse_hd_answer, parse_mr_answer, to_seconds


@pytest.mark.parametrize(
    ("answer", "duration", "window", "swapped", "clamped", "form"),
    [
        ("from 20.8s to 30.0s", 32.0, (20.8, 30.0), False, False, "span"),
        ("The event happens from 5 to 10 seconds.", 30.0, (5.0, 10.0), False, False, "span"),
        ("12.5 - 18 s", 30.0, (12.5, 18.0), False, False, "span"),
        ("between 3 and 7.25 seconds", 30.0, (3.0, 7.25), False, False, "span"),
        ("3 sec – 9 sec", 30.0, (3.0, 9.0), False, False, "span"),
        ("It starts at 0:05 and ends at 1:10", 80.0, (5.0, 70.0), False, False, "two_numbers"),
        ("from 0:05 to 1:10", 80.0, (5.0, 70.0), False, False, "span"),
        ("24.3 30.4", 31.0, (24.3, 30.4), False, False, "two_numbers"),
        ("Start: 12, end: 15", 31.0, (12.0, 15.0), False, False, "two_numbers"),
        ("from 30.0s to 20.8s", 32.0, (20.8, 30.0), True, False, "span"),
        ("from 25s to 40s", 32.0, (25.0, 32.0), False, True, "span"),
        ("from 40s to 50s", 32.0, (32.0, 32.0), False, True, "span"),
        ("In the first 6 seconds.", 30.0, (0.0, 6.0), False, False, "one_number"),
        ("during the last 4 seconds of the video", 30.0, (26.0, 30.0), False, False, "one_number"),
        ("at the very beginning, within 50 seconds", 30.0, (0.0, 30.0), False, True, "one_number"),
        ("from 10 to 20", None, (10.0, 20.0), False, False, "span"),
    ],
)
def test_moment_answers(answer, duration, window, swapped, clamped, form):
    parsed = parse_mr_answer(answer, duration)
    assert parsed is not None
    assert parsed.window == pytest.approx(window)
    assert (parsed.swapped, parsed.clamped, parsed.form) == (swapped, clamped, form)


@pytest.mark.parametrize(
    ("answer", "duration"),
    [
        ("I don't know.", 30.0),
        ("", 30.0),
        (None, 30.0),
        ("The person opens the door.", 30.0),
        ("around 12 seconds", 30.0),  # one number, no beginning/end word
        ("from the start until the end, about 5 s", 30.0),  # both words: ambiguous
        ("in the first 6 seconds", None),  # one number needs the duration
    ],
)
def test_unparsable_moment_answers(answer, duration):
    assert parse_mr_answer(answer, duration) is None


def test_raw_values_are_kept():
    assert parse_mr_answer("from 30s to -", 20.0) is None
    parsed = parse_mr_answer("from 9s to 4s", 6.0)
    assert (parsed.raw_start, parsed.raw_end, parsed.window) == (9.0, 4.0, (4.0, 6.0))


def test_bad_duration():
    with pytest.raises(ValueError, match="duration"):
        parse_mr_answer("1 to 2", 0)
    with pytest.raises(ValueError, match="duration"):
        parse_hd_answer("important from 1s to 2s", -5)


def test_clock_times():
    assert to_seconds("1:05") == 65.0 and to_seconds("1:02:03.5") == 3723.5 and to_seconds("7.5") == 7.5


def test_highlight_answer_with_levels():
    answer = (
        "The highlights are: very important from 96.0s to 98.0s, 98.0s to 100.0s; important from 10.0s to 12.0s;"
        " less important from 12.0s to 14.0s"
    )
    parsed = parse_hd_answer(answer, duration=101.0)
    assert [(w.start, w.end, w.level, w.score) for w in parsed.windows] == [
        (96.0, 98.0, "very important", 4),
        (98.0, 100.0, "very important", 4),
        (10.0, 12.0, "important", 3),
        (12.0, 14.0, "less important", 2),
    ]
    assert len(parsed.saliency_scores) == 51  # ⌈101 / 2⌉ clips
    expected = [0] * 51
    expected[5], expected[6], expected[48], expected[49] = 3, 2, 4, 4
    assert list(parsed.saliency_scores) == expected
    assert parsed.relevant_windows[0] == [96.0, 98.0, 4.0]
    assert not parsed.swapped and not parsed.clamped


def test_highlight_answer_variants():
    # The paper's table style with trailing commas, an untagged span, overlaps taking the highest level.
    answer = "The highlights are: important from 2s to 7s,; very important from 4s to 6s,; 8 - 9s"
    parsed = parse_hd_answer(answer, duration=10.0)
    assert [w.level for w in parsed.windows] == ["important", "very important", "very important"]
    assert list(parsed.saliency_scores) == [0, 3, 4, 3, 4]
    untagged = parse_hd_answer("from 0 to 3 seconds", duration=4.0)
    assert untagged.windows[0].level == "important" and list(untagged.saliency_scores) == [3, 3]
    clamped = parse_hd_answer("very important from 5s to 3s, 3s to 12s", duration=6.0)
    assert clamped.swapped and clamped.clamped and list(clamped.saliency_scores) == [0, 4, 4]
    assert parse_hd_answer("There are no highlights.", duration=10.0) is None
    assert parse_hd_answer("", duration=10.0) is None
