"""Code points <-> UTF-16 code units (review/offsets.py), checked against Python's own UTF-16 codec:
a UTF-16 offset is right when slicing the UTF-16 encoding there gives the same text as slicing
the str at the code-point offset."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from splitreason.review.offsets import OffsetError, Utf16Index, from_utf16, to_utf16

SAMPLE = Path(__file__).resolve().parents[1] / "splitreason" / "data" / "openr1_sample.jsonl"


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def utf16_slice(text: str, start: int, end: int) -> str:
    return text.encode("utf-16-le")[2 * start: 2 * end].decode("utf-16-le")


def test_bmp_text_is_unchanged():
    text = "Let x = 3, then x² + √x ≈ 10.7 — done."
    index = Utf16Index(text)
    assert [index.to_utf16(i) for i in range(len(text) + 1)] == list(range(len(text) + 1))
    assert [index.from_utf16(i) for i in range(len(text) + 1)] == list(range(len(text) + 1))


def test_every_offset_both_ways_around_astral_characters():
    text = "𝑥 + 𝑦 = 😀😀 so 𝟙 is the indicator; end"
    index = Utf16Index(text)
    assert index.utf16_length == utf16_len(text) == len(text) + 5  # five astral characters
    for offset in range(len(text) + 1):
        unit = index.to_utf16(offset)
        assert unit == utf16_len(text[:offset])
        assert index.from_utf16(unit) == offset
        assert utf16_slice(text, 0, unit) == text[:offset]


def test_an_offset_inside_a_surrogate_pair_is_refused():
    text = "ab𝑥cd😀"
    index = Utf16Index(text)
    # 'a'=0 'b'=1 '𝑥'=2..3 'c'=4 'd'=5 '😀'=6..7; 3 and 7 fall between the halves of a pair
    for inside in (3, 7):
        with pytest.raises(OffsetError, match="surrogate pair"):
            index.from_utf16(inside)
    valid = [u for u in range(index.utf16_length + 1) if u not in (3, 7)]
    assert [index.from_utf16(u) for u in valid] == list(range(len(text) + 1))


@pytest.mark.parametrize("offset", [-1, 7])
def test_offsets_outside_the_text_are_refused(offset):
    with pytest.raises(OffsetError, match="outside the text"):
        to_utf16("ab𝑥cd", offset if offset < 0 else 6)
    with pytest.raises(OffsetError, match="outside the text"):
        from_utf16("ab𝑥cd", offset)


def test_reversed_spans_are_refused():
    index = Utf16Index("𝑥yz")
    with pytest.raises(OffsetError, match="before its start"):
        index.span_to_utf16(2, 1)
    with pytest.raises(OffsetError, match="before its start"):
        index.span_from_utf16(3, 2)


def test_random_texts_round_trip():
    rng = random.Random(1234)
    alphabet = ["a", "Z", " ", "\n", "é", "√", "中", "𝑥", "𝟙", "😀", "𝜔", "\U0010FFFF"]
    for _ in range(200):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        index = Utf16Index(text)
        for _ in range(10):
            start = rng.randint(0, len(text))
            end = rng.randint(start, len(text))
            units = index.span_to_utf16(start, end)
            assert utf16_slice(text, *units) == text[start:end]
            assert index.span_from_utf16(*units) == (start, end)


def test_sample_traces_with_astral_characters():
    with open(SAMPLE, encoding="utf-8") as handle:
        generations = [g for line in handle for g in json.loads(line)["generations"]]
    traces = [g for g in generations if any(ord(c) > 0xFFFF for c in g)]
    assert len(traces) >= 3, "the bundled sample should hold traces with characters outside the BMP"
    for text in traces:
        index = Utf16Index(text)
        assert index.utf16_length == utf16_len(text)
        astral = [i for i, c in enumerate(text) if ord(c) > 0xFFFF]
        # a span on each astral character and on the text right after it (shifted without conversion)
        for position in astral:
            for start, end in ((position, position + 1), (position + 1, min(len(text), position + 40))):
                units = index.span_to_utf16(start, end)
                assert utf16_slice(text, *units) == text[start:end]
                assert index.span_from_utf16(*units) == (start, end)
        # the shift a naive conversion would make grows with every astral character before the offset
        last = astral[-1] + 1
        assert index.to_utf16(last) - last == len(astral)
