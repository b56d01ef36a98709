"""Answer parsers on real-looking model outputs, including the ones that must fail."""

import ast
import itertools
import math
from pathlib import Path

import numpy as np
import pytest

from groundvts.processing.parsing import parse_hd_answer, parse_mr_answer, temporal_iou, to_seconds

METRICS_DIR = Path(__file__).resolve().parents[2] / "evaluate_metrics"


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


@pytest.mark.parametrize(
    ("answer", "raw", "window", "swapped", "clamped"),
    [
        # The paper's training answer, the official eval format, dashes and "between ... and ..." (field notes 3.3/3.4).
        ("from 6.0s to 12.0s", (6.0, 12.0), (6.0, 12.0), False, False),
        ("6.0 to 12.0 seconds", (6.0, 12.0), (6.0, 12.0), False, False),
        ("6 - 12", (6.0, 12.0), (6.0, 12.0), False, False),
        ("6-12s", (6.0, 12.0), (6.0, 12.0), False, False),
        ("6s-12s", (6.0, 12.0), (6.0, 12.0), False, False),
        ("between 6 and 12 seconds", (6.0, 12.0), (6.0, 12.0), False, False),
        # Signs are kept: a minus before a number is negative, a minus between two numbers separates them.
        ("from -3s to 4s", (-3.0, 4.0), (0.0, 4.0), False, True),
        ("from −3s to 4s", (-3.0, 4.0), (0.0, 4.0), False, True),  # U+2212 minus
        ("between -2 and -1 seconds", (-2.0, -1.0), (0.0, 0.0), False, True),  # all before the video: zero length
        ("5 - -3", (5.0, -3.0), (0.0, 5.0), True, True),
        ("The event starts at -1.5 and ends at 3", (-1.5, 3.0), (0.0, 3.0), False, True),
        # Decimals without a leading zero.
        ("from 0s to .5s", (0.0, 0.5), (0.0, 0.5), False, False),
        ("from .25 to 4.", (0.25, 4.0), (0.25, 4.0), False, False),
        # Beyond the duration (20 s): clamped, possibly to a zero-length span at the end.
        ("from 18s to 25s", (18.0, 25.0), (18.0, 20.0), False, True),
        ("from 30.5s to 41s", (30.5, 41.0), (20.0, 20.0), False, True),
        ("1:05 - 1:10", (65.0, 70.0), (20.0, 20.0), False, True),
        ("from 12s to 3s", (12.0, 3.0), (3.0, 12.0), True, False),
    ],
)
def test_moment_answer_grammar(answer, raw, window, swapped, clamped):
    parsed = parse_mr_answer(answer, 20.0)
    assert parsed is not None
    assert (parsed.raw_start, parsed.raw_end) == pytest.approx(raw)
    assert parsed.window == pytest.approx(window)
    assert (parsed.swapped, parsed.clamped) == (swapped, clamped)


def test_signed_and_bare_decimal_numbers():
    assert to_seconds("-3") == -3.0 and to_seconds(".5") == 0.5 and to_seconds("-1:05") == -65.0
    assert to_seconds("−2.5") == -2.5


def test_highlight_answer_grammar_with_signs_decimals_and_overflow():
    answer = (
        "The highlights are: very important from -2s to 2.0s, 2.0s to 4.0s; important from .5s to 1s;"
        " less important from 5s to 9s"
    )
    parsed = parse_hd_answer(answer, duration=6.0)
    assert [(w.start, w.end, w.level) for w in parsed.windows] == [
        (0.0, 2.0, "very important"),
        (2.0, 4.0, "very important"),
        (0.5, 1.0, "important"),
        (5.0, 6.0, "less important"),
    ]
    assert list(parsed.saliency_scores) == [4, 4, 2]
    assert parsed.clamped and not parsed.swapped


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


@pytest.mark.parametrize(("a", "b", "iou"), [
    ((0.0, 10.0), (0.0, 10.0), 1.0),
    ((0.0, 10.0), (5.0, 15.0), 5.0 / 15.0),
    ((2.0, 4.0), (0.0, 10.0), 0.2),
    ((0.0, 5.0), (5.0, 10.0), 0.0),  # touching
    ((0.0, 1.0), (3.0, 4.0), 0.0),
    ((3.0, 3.0), (3.0, 3.0), 0.0),  # empty union
    ((3.0, 3.0), (0.0, 10.0), 0.0),
])
def test_temporal_iou(a, b, iou):
    assert temporal_iou(a, b) == pytest.approx(iou) and temporal_iou(b, a) == pytest.approx(iou)


def test_temporal_iou_of_non_finite_bounds_is_zero():
    for bad in (math.nan, math.inf, -math.inf):
        assert temporal_iou((0.0, bad), (0.0, 10.0)) == 0.0
        assert temporal_iou((bad, 10.0), (0.0, 10.0)) == 0.0
        assert temporal_iou((0.0, 10.0), (bad, bad)) == 0.0


def _metric_temporal_iou(metric: str):
    """The metric script's own copy, compiled alone: the scripts stay free of groundvts imports."""
    path = METRICS_DIR / metric / f"{metric}.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    [function] = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "temporal_iou"]
    namespace: dict = {}
    exec(compile(ast.Module(body=[function], type_ignores=[]), str(path), "exec"), namespace)
    return namespace["temporal_iou"]


def test_moment_retrieval_computes_the_same_iou_in_float32():
    """The metric follows eval_auto's float32 arithmetic; on sorted finite windows it agrees to float32 precision."""
    path = METRICS_DIR / "moment_retrieval" / "moment_retrieval.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    [function] = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "iou_matrix"]
    namespace: dict = {"np": np}
    exec(compile(ast.Module(body=[function], type_ignores=[]), str(path), "exec"), namespace)
    values = (-1.0, 0.0, 1.0, 2.5, 4.0, 7.3)
    for a0, a1, b0, b1 in itertools.product(values, repeat=4):
        if a0 <= a1 and b0 <= b1:
            ours = float(namespace["iou_matrix"]([(a0, a1)], [(b0, b1)])[0, 0])
            assert ours == pytest.approx(temporal_iou((a0, a1), (b0, b1)), abs=1e-6), (a0, a1, b0, b1)


@pytest.mark.parametrize("metric", ["qvhighlights"])
def test_the_metrics_copy_the_same_definition(metric):
    theirs = _metric_temporal_iou(metric)
    assert "groundvts.processing.parsing.temporal_iou" in theirs.__doc__
    values = (math.nan, math.inf, -math.inf, -1.0, 0.0, 1.0, 2.5, 4.0)
    for a0, a1, b0, b1 in itertools.product(values, repeat=4):
        assert theirs((a0, a1), (b0, b1)) == temporal_iou((a0, a1), (b0, b1)), (a0, a1, b0, b1)
