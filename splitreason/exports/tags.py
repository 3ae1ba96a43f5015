"""Insert and remove the offload tags. Removing both tag strings gives the original trace exactly."""

from __future__ import annotations

from collections.abc import Sequence

from splitreason import CLOSE_TAG, OPEN_TAG
from splitreason.schemas import Span
from splitreason.schemas.review import ReviewedSpan


def insert_tags(text: str, spans: Sequence[Span | ReviewedSpan]) -> str:
    """Wrap each span (sorted, non-overlapping) in <bigmodel> ... </bigmodel>."""
    pieces: list[str] = []
    cursor = 0
    for span in sorted(spans, key=lambda span: span.start):
        if span.start < cursor:
            raise ValueError(f"overlapping spans at {span.start}")
        pieces += [text[cursor : span.start], OPEN_TAG, text[span.start : span.end], CLOSE_TAG]
        cursor = span.end
    pieces.append(text[cursor:])
    return "".join(pieces)


def strip_tags(text: str) -> str:
    return text.replace(OPEN_TAG, "").replace(CLOSE_TAG, "")
