"""Span post-processing: snap aligned offsets to clean boundaries, merge overlapping spans."""

from __future__ import annotations

import unicodedata

from splitreason import THINK_CLOSE, THINK_OPEN
from splitreason.schemas.annotation import MATCH_RANK, Span

__all__ = ["snap_to_boundaries", "merge_spans", "MAX_SNAP_GROWTH", "THINK_TAGS"]

#: Snapping never moves ``start`` left, or ``end`` right, by more than this many characters;
#: a longer word (a hash, a digit string) may then stay split rather than swallow a paragraph.
MAX_SNAP_GROWTH = 40
#: Markers a span may neither contain nor cut.
THINK_TAGS = (THINK_OPEN, THINK_CLOSE)



def _is_word(char: str) -> bool:
    """Part of a word: letters and digits (any script, 𝑥 included) and combining marks."""
    return char.isalnum() or unicodedata.category(char).startswith("M")


def _odd_backslashes_before(text: str, end: int) -> bool:
    """Whether ``text[:end]`` ends in an odd run of backslashes (i.e. an unfinished escape)."""
    count = 0
    while end - count > 0 and text[end - count - 1] == "\\":
        count += 1
    return count % 2 == 1


def snap_to_boundaries(text: str, start: int, end: int) -> tuple[int, int]:
    """Move ``start`` left / ``end`` right so the span splits no word and no LaTeX command.

    - a word (a run of letters/digits, see `_is_word`) cut by either end is taken whole;
    - a LaTeX command is taken with its backslash and all its letters (``\\frac``, ``\\alpha``),
      a control symbol with its escaped character (``\\{``, ``\\\\``);
    - leading and trailing whitespace inside the span is trimmed;
    - each end moves outwards by at most `MAX_SNAP_GROWTH` characters;
    - ``<think>`` / ``</think>`` are never included nor cut: a tag at an end is clipped off,
      and a span that would contain a whole tag keeps its longer side of it.

    Returns offsets with ``0 <= start < end <= len(text)``; when snapping would leave nothing
    (or the input is not such a range) the input is returned unchanged.
    """
    n = len(text)
    if not (0 <= start < end <= n):
        return start, end
    s, e = start, end

    # 1. trim whitespace
    while s < e and text[s].isspace():
        s += 1
    while e > s and text[e - 1].isspace():
        e -= 1
    if s >= e:
        return start, end

    # 2. grow to word / command boundaries (bounded)
    lowest = max(0, start - MAX_SNAP_GROWTH)
    highest = min(n, end + MAX_SNAP_GROWTH)
    if s > 0 and _is_word(text[s]):
        while s > lowest and _is_word(text[s - 1]):
            s -= 1
    if s > lowest and _odd_backslashes_before(text, s):
        s -= 1  # include the backslash of "\frac" / "\{"
    if e < n and _is_word(text[e - 1]):
        while e < highest and _is_word(text[e]):
            e += 1
    if e < highest and _odd_backslashes_before(text, e):
        # the span ends on a bare backslash: take the command's letters or the escaped symbol
        if text[e].isalpha():
            while e < highest and text[e].isalpha():
                e += 1
        elif not text[e].isspace():
            e += 1

    # 3. never include or cut a <think> / </think> marker
    s, e = _clip_tags(text, s, e)

    # 4. trim whitespace again (clipping may have exposed some)
    while s < e and text[s].isspace():
        s += 1
    while e > s and text[e - 1].isspace():
        e -= 1
    if not (0 <= s < e <= n):
        return start, end
    return s, e


def _clip_tags(text: str, s: int, e: int) -> tuple[int, int]:
    longest = max(len(tag) for tag in THINK_TAGS)
    changed = True
    while changed and s < e:
        changed = False
        for tag in THINK_TAGS:
            at = text.find(tag, max(0, s - longest + 1), min(len(text), e + longest - 1))
            while at >= 0 and s < e:
                tag_end = at + len(tag)
                if tag_end > s and at < e:  # overlaps the span
                    if at <= s:  # the span starts inside (or on) the tag
                        s = tag_end
                    elif tag_end >= e:  # the span ends inside (or on) the tag
                        e = at
                    elif at - s >= e - tag_end:  # a whole tag inside: keep the longer side
                        e = at
                    else:
                        s = tag_end
                    changed = True
                at = text.find(tag, at + 1, min(len(text), e + longest - 1))
    return s, e


def merge_spans(spans: list[Span], text: str) -> list[Span]:
    """Sort spans and merge those that overlap or touch (``next.start <= current.end``).

    A merged span takes ``text[start:end]``, the length-weighted mean of the merged scores
    (weights are each input span's length), the distinct non-empty reasons joined with "; " in
    order of appearance, and the worst match kind (fuzzy < normalized < exact).
    """
    if not spans:
        return []
    ordered = sorted(spans, key=lambda span: (span.start, span.end))
    merged: list[Span] = []
    group: list[Span] = [ordered[0]]
    group_end = ordered[0].end
    for span in ordered[1:]:
        if span.start <= group_end:
            group.append(span)
            group_end = max(group_end, span.end)
        else:
            merged.append(_merge_group(group, text))
            group = [span]
            group_end = span.end
    merged.append(_merge_group(group, text))
    return merged


def _merge_group(group: list[Span], text: str) -> Span:
    if len(group) == 1 and text[group[0].start : group[0].end] == group[0].text:
        return group[0]
    start = min(span.start for span in group)
    end = max(span.end for span in group)
    weight = sum(span.end - span.start for span in group)
    score = sum(span.score * (span.end - span.start) for span in group) / weight
    reasons: list[str] = []
    for span in group:
        reason = span.reason.strip()
        if reason and reason not in reasons:
            reasons.append(reason)
    match = min((span.match for span in group), key=MATCH_RANK.__getitem__)  # the worst one
    signals = [span.signal for span in group]
    signal = (None if None in signals else
              round(sum(span.signal * (span.end - span.start) for span in group) / weight, 4))
    return Span(
        start=start,
        end=end,
        text=text[start:end],
        score=min(1.0, max(0.0, score)),
        reason="; ".join(reasons),
        match=match,
        signal=signal,
    )
