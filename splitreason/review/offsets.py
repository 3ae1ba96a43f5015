"""Offsets in Python code points <-> offsets in UTF-16 code units, for one text.

splitreason counts offsets in code points (`len(str)`); Argilla's web UI counts UTF-16 code
units (JavaScript string indices). They differ after every character outside the Basic
Multilingual Plane (U+10000 and above: emoji, mathematical letters such as 𝑥 or 𝟙), which takes
two UTF-16 units (a surrogate pair) but one code point. Without conversion every span after such
a character is shifted by one per character.

`Utf16Index(text)` records where those characters are once, then converts any number of offsets
with a binary search each. A UTF-16 offset that falls between the two halves of a surrogate pair
names no character boundary and is refused (`OffsetError`), as is any offset outside the text.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right


class OffsetError(ValueError):
    """An offset that is outside the text or splits a character; the message says which."""


def _is_astral(char: str) -> bool:
    return ord(char) > 0xFFFF


class Utf16Index:
    """Offset conversion for one text (both directions, validated)."""

    def __init__(self, text: str):
        self.text = text
        # Code-point positions of characters that take two UTF-16 units, in order.
        self._astral = [i for i, char in enumerate(text) if _is_astral(char)]
        # The UTF-16 offset of each of them: the k-th one is pushed k units to the right.
        self._astral_utf16 = [position + rank for rank, position in enumerate(self._astral)]
        self.length = len(text)
        self.utf16_length = self.length + len(self._astral)

    def to_utf16(self, offset: int) -> int:
        """The UTF-16 offset of code-point offset `offset` (0..len(text))."""
        if not 0 <= offset <= self.length:
            raise OffsetError(f"offset {offset} is outside the text (0..{self.length} code points)")
        return offset + bisect_left(self._astral, offset)

    def from_utf16(self, offset: int) -> int:
        """The code-point offset of UTF-16 offset `offset`; refused inside a surrogate pair."""
        if not 0 <= offset <= self.utf16_length:
            raise OffsetError(f"UTF-16 offset {offset} is outside the text (0..{self.utf16_length} code units)")
        before = bisect_right(self._astral_utf16, offset - 1)  # pairs that start before `offset`
        if before and self._astral_utf16[before - 1] == offset - 1:
            position = self._astral[before - 1]
            raise OffsetError(f"UTF-16 offset {offset} falls inside the surrogate pair of "
                              f"{self.text[position]!r} (code point {position})")
        return offset - before

    def span_to_utf16(self, start: int, end: int) -> tuple[int, int]:
        if end < start:
            raise OffsetError(f"span end {end} is before its start {start}")
        return self.to_utf16(start), self.to_utf16(end)

    def span_from_utf16(self, start: int, end: int) -> tuple[int, int]:
        if end < start:
            raise OffsetError(f"span end {end} is before its start {start}")
        return self.from_utf16(start), self.from_utf16(end)


def to_utf16(text: str, offset: int) -> int:
    """One-off conversion; build a `Utf16Index` to convert many offsets of one text."""
    return Utf16Index(text).to_utf16(offset)


def from_utf16(text: str, offset: int) -> int:
    return Utf16Index(text).from_utf16(offset)
