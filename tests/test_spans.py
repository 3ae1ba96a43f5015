"""Snapping spans to clean boundaries and merging overlapping spans."""

from __future__ import annotations

import pytest

from splitreason.annotator.spans import MAX_SNAP_GROWTH, merge_spans, snap_to_boundaries
from splitreason.schemas import Span


def _snap(text: str, fragment_start: int, fragment_end: int) -> str:
    start, end = snap_to_boundaries(text, fragment_start, fragment_end)
    assert 0 <= start < end <= len(text)
    return text[start:end]


# ---------------------------------------------------------------------------- snapping


def test_snap_extends_to_whole_words():
    text = "We compute the discriminant first."
    start = text.index("mpute")
    end = text.index("discriminant") + 4
    assert _snap(text, start, end) == "compute the discriminant"


def test_snap_keeps_clean_spans_unchanged():
    text = "We compute the discriminant first."
    start, end = text.index("compute"), text.index(" first")
    assert snap_to_boundaries(text, start, end) == (start, end)


def test_snap_trims_whitespace_inside_the_span():
    text = "Intro.\n\n  The key step.  \n\nOutro."
    start = text.index("\n\n")
    end = text.index("Outro")
    assert _snap(text, start, end) == "The key step."


@pytest.mark.parametrize(
    ("fragment", "expected"),
    [
        ("rac{1}{2}", "\\frac{1}{2}"),  # start inside the command's letters
        ("frac{1}{2}", "\\frac{1}{2}"),  # start right after the backslash
        ("{1}{2} + \\al", "{1}{2} + \\alpha"),  # end inside the command's letters
        ("{1}{2} + \\", "{1}{2} + \\alpha"),  # end right after the backslash
    ],
)
def test_snap_never_splits_a_latex_command(fragment, expected):
    text = "so $x = \\frac{1}{2} + \\alpha$ holds"
    start = text.index(fragment)
    assert _snap(text, start, start + len(fragment)) == expected


def test_snap_takes_control_symbols_whole():
    text = "the set $\\{1, 2\\}$ here"
    start = text.index("{1")
    assert _snap(text, start, text.index("\\}") + 1) == "\\{1, 2\\}"


def test_snap_does_not_take_a_line_break_as_a_command():
    text = "a \\\\ b next"
    # the span starts at "b", preceded by an even run of backslashes: nothing to include
    assert _snap(text, text.index("b"), len(text)) == "b next"


def test_snap_growth_is_bounded():
    word = "x" * 100
    text = f"start {word} end"
    middle = text.index(word) + 50
    start, end = snap_to_boundaries(text, middle, middle + 5)
    assert middle - start == MAX_SNAP_GROWTH and end - (middle + 5) == MAX_SNAP_GROWTH


def test_snap_handles_characters_outside_the_bmp():
    text = "let 𝑥𝑦𝑧 be the vector"
    start = text.index("𝑦")
    assert _snap(text, start, start + 1) == "𝑥𝑦𝑧"


def test_snap_clips_think_tags_at_either_end():
    text = "<think>\nFirst idea here.\n</think>\n\nAnswer."
    assert _snap(text, 0, text.index(".") + 1) == "First idea here."
    assert _snap(text, 3, text.index(".") + 1) == "First idea here."  # starts inside the tag
    assert _snap(text, text.index("First"), text.index("</think>") + 4) == "First idea here."
    assert _snap(text, text.index("First"), text.index("Answer")) == "First idea here."


def test_snap_never_crosses_a_think_tag():
    text = "<think>\nshort bit\n</think>\n\nThe final answer is 42, as computed above."
    start, end = snap_to_boundaries(text, text.index("short"), len(text))
    assert "</think>" not in text[start:end]
    assert text[start:end] == "The final answer is 42, as computed above."  # the longer side


def test_snap_returns_input_when_nothing_would_remain():
    text = "abc <think> def"
    start = text.index("<think>")
    assert snap_to_boundaries(text, start, start + len("<think>")) == (start, start + len("<think>"))
    assert snap_to_boundaries("a    b", 1, 4) == (1, 4)
    assert snap_to_boundaries("abc", 2, 2) == (2, 2)  # not a range: unchanged
    assert snap_to_boundaries("abc", 1, 10) == (1, 10)


def test_snap_at_text_edges():
    text = "word"
    assert snap_to_boundaries(text, 1, 3) == (0, 4)
    assert snap_to_boundaries(text, 0, 4) == (0, 4)


# ---------------------------------------------------------------------------- merging


TEXT = "0123456789 abcdefghij klmnopqrst uvwxyz ABCDEFGHIJ"


def _span(start: int, end: int, *, score: float = 1.0, reason: str = "", match: str = "exact") -> Span:
    return Span(start=start, end=end, text=TEXT[start:end], score=score, reason=reason, match=match)


def test_merge_sorts_and_keeps_disjoint_spans():
    spans = [_span(22, 32), _span(0, 10)]
    assert merge_spans(spans, TEXT) == [_span(0, 10), _span(22, 32)]


def test_merge_overlapping_spans():
    merged = merge_spans(
        [_span(11, 21, score=1.0, reason="hard step"), _span(15, 32, score=0.9, reason="case split", match="fuzzy")],
        TEXT,
    )
    assert len(merged) == 1
    span = merged[0]
    assert (span.start, span.end) == (11, 32) and span.text == TEXT[11:32]
    assert span.score == pytest.approx((10 * 1.0 + 17 * 0.9) / 27)
    assert span.reason == "hard step; case split"
    assert span.match == "fuzzy"


def test_merge_touching_spans_and_dedupes_reasons():
    merged = merge_spans(
        [
            _span(0, 5, reason="algebra"),
            _span(5, 10, reason="algebra", match="normalized"),
            _span(10, 21, reason=""),
        ],
        TEXT,
    )
    assert [(s.start, s.end) for s in merged] == [(0, 21)]
    assert merged[0].reason == "algebra" and merged[0].match == "normalized"
    assert merged[0].score == 1.0


def test_merge_contained_span_and_chains():
    merged = merge_spans([_span(0, 30), _span(5, 10), _span(29, 40), _span(45, 50)], TEXT)
    assert [(s.start, s.end) for s in merged] == [(0, 40), (45, 50)]
    for span in merged:
        assert span.text == TEXT[span.start : span.end]


def test_merge_empty():
    assert merge_spans([], TEXT) == []
