"""Steps of a reasoning trace: the units every span-marking judge chooses from.

The thinking part of a trace (after `<think>`, up to `</think>`) is cut into steps: display-math
blocks kept whole, the rest cut into sentences; oversized pieces are cut at whitespace and short
ones join their neighbours. Every boundary lies on whitespace, a think tag or a display-math
delimiter, so a span made of whole steps never splits a word or a LaTeX command, never starts or
ends on whitespace, and never contains or cuts a think tag. The heuristic judge scores these
steps with rules; the model-grounded judges score them with a model's signal; both then fill the
target coverage with `judges/selection.py`. docs/heuristic_judge.md documents the rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from operator import sub

from splitreason import THINK_CLOSE, THINK_OPEN

__all__ = ["Steps", "segment", "think_bounds"]

_TAG = re.compile(r"</?think>")

# Display-math blocks are kept whole: \[ ... \], $$ ... $$ and the display environments.
# One regex per kind, each led by a literal so that sre skips ahead with a fast literal search.
# The look-behinds keep the LaTeX line break `\\[2pt]` (and `\$$`) from opening a block.
# Bodies are bounded so that an unterminated opener costs at most a bounded scan.
_DISPLAY = (
    re.compile(r"\\\[(?<!\\\\\[).{0,4000}?\\\]", re.S),
    re.compile(r"\$\$(?<!\\\$\$).{0,4000}?\$\$", re.S),
    re.compile(
        r"\\begin\{(align|aligned|alignat|equation|gather|multline|eqnarray|displaymath)(\*?)\}"
        r".{0,4000}?\\end\{\1\2\}",
        re.S,
    ),
)

# A sentence starts on a non-space and runs to the end of its line or to a run of . ! ? that
# is followed by whitespace (so 3.14, x.y and "?!" inside a word do not end it); the final
# look-behind backtracks over a line's trailing blanks. Every boundary therefore lies on
# whitespace, a think tag or a display-math delimiter: a step never splits a word or a LaTeX
# command, and never starts or ends on whitespace.
_SENTENCE = re.compile(r"[^\s][^\n.!?]*(?:[.!?]+(?!\s)[^\n.!?]*)*[.!?]*(?<=\S)")
_NONSPACE_RUN = re.compile(r"\S+")


@dataclass
class Steps:
    """Steps of text[lo:hi], in order: step i is text[starts[i]:ends[i]]; link[i] = 1 when step i
    may join step i-1 in one span (only whitespace lies between them, no barrier)."""

    starts: list[int]
    ends: list[int]
    link: bytearray

    def __len__(self) -> int:
        return len(self.starts)


def think_bounds(text: str) -> tuple[int, int]:
    """The thinking part: after the first <think> up to the next </think>; the whole text if
    there are no tags; everything before </think> when only the closing tag is present."""
    open_at = text.find(THINK_OPEN)
    close_at = text.find(THINK_CLOSE)
    if open_at >= 0 and (close_at < 0 or open_at < close_at):
        start = open_at + len(THINK_OPEN)
        close_at = text.find(THINK_CLOSE, start)
        return start, (close_at if close_at >= 0 else len(text))
    if close_at >= 0:
        return 0, close_at
    return 0, len(text)


def _display_blocks(text: str, lo: int, hi: int) -> list[tuple[int, int]]:
    """Sorted, non-overlapping display-math blocks of text[lo:hi] (the first one wins)."""
    found: list[tuple[int, int]] = []
    for pattern in _DISPLAY:
        found.extend([m.span() for m in pattern.finditer(text, lo, hi)])
    found.sort()
    blocks: list[tuple[int, int]] = []
    end = -1
    for start, stop in found:
        if start >= end:
            blocks.append((start, stop))
            end = stop
    return blocks


def segment(text: str, lo: int, hi: int, max_chars: int, min_chars: int) -> Steps:
    """Cut text[lo:hi] into steps (see `Steps`).

    Steps never contain a think tag and never start or end on whitespace. A piece longer than
    max_chars is cut at whitespace (a single token longer than that stays whole and is never
    chosen); pieces shorter than min_chars join the next piece (or the previous one)."""
    ps, pe, brk = _pieces(text, lo, hi)
    if ps and max(map(sub, pe, ps)) > max_chars:
        ps, pe, brk = _cut_oversized(text, ps, pe, brk, max_chars)
    return _join_short(text, ps, pe, brk, max_chars, min_chars)


def _pieces(text: str, lo: int, hi: int) -> tuple[list[int], list[int], bytearray]:
    """Atomic pieces (display-math blocks and sentences) as starts, ends and a barrier flag per
    piece (1 where a region between stray think tags begins: steps never cross a tag)."""
    regions = []
    pos = lo
    if text.find(THINK_OPEN, lo, hi) >= 0 or text.find(THINK_CLOSE, lo, hi) >= 0:
        for m in _TAG.finditer(text, lo, hi):
            regions.append((pos, m.start()))
            pos = m.end()
    regions.append((pos, hi))

    pieces: list[tuple[int, int]] = []
    barriers = []  # index of the first piece of each region
    sentences = _SENTENCE.finditer
    for r_lo, r_hi in regions:
        barriers.append(len(pieces))
        cursor = r_lo
        for d_start, d_end in _display_blocks(text, r_lo, r_hi):
            if cursor < d_start:
                pieces.extend([m.span() for m in sentences(text, cursor, d_start)])
            pieces.append((d_start, d_end))
            cursor = d_end
        if cursor < r_hi:
            pieces.extend([m.span() for m in sentences(text, cursor, r_hi)])
    brk = bytearray(len(pieces) + 1)
    for k in barriers:
        brk[k] = 1
    return [p[0] for p in pieces], [p[1] for p in pieces], brk


def _cut_oversized(text: str, ps: list[int], pe: list[int], brk: bytearray,
                   max_chars: int) -> tuple[list[int], list[int], bytearray]:
    """Pieces longer than max_chars cut at whitespace into chunks of at most max_chars (the first
    chunk keeps the piece's barrier flag)."""
    ps2: list[int] = []
    pe2: list[int] = []
    brk2 = bytearray()
    for s, e, b in zip(ps, pe, brk):
        if e - s <= max_chars:
            ps2.append(s)
            pe2.append(e)
            brk2.append(b)
            continue
        cs = ce = -1
        for m in _NONSPACE_RUN.finditer(text, s, e):
            ts, te = m.span()
            if cs < 0:
                cs, ce = ts, te
            elif te - cs <= max_chars:
                ce = te
            else:
                ps2.append(cs)
                pe2.append(ce)
                brk2.append(b)
                b = 0
                cs, ce = ts, te
        ps2.append(cs)
        pe2.append(ce)
        brk2.append(b)
    return ps2, pe2, brk2 + b"\x00"


def _join_short(text: str, ps: list[int], pe: list[int], brk: bytearray, max_chars: int, min_chars: int) -> Steps:
    """Short pieces join their neighbours: the next pieces of the same paragraph first (so "Wait."
    goes with the re-computation after it), else the previous step of the same paragraph, else
    across a paragraph break (a blank line), next first."""
    n = len(ps)
    starts: list[int] = []
    ends: list[int] = []
    link = bytearray()
    newlines = text.count
    i = 0
    while i < n:
        s, e, b = ps[i], pe[i], brk[i]
        i += 1
        if e - s >= min_chars:
            starts.append(s)
            ends.append(e)
            link.append(0 if b else 1)
            continue
        while e - s < min_chars and i < n and not brk[i] and pe[i] - s <= max_chars and newlines("\n", e, ps[i]) < 2:
            e = pe[i]
            i += 1
        if e - s < min_chars and starts and not b and e - starts[-1] <= max_chars and newlines("\n", ends[-1], s) < 2:
            ends[-1] = e
            continue
        while e - s < min_chars and i < n and not brk[i] and pe[i] - s <= max_chars:
            e = pe[i]
            i += 1
        if e - s < min_chars and starts and not b and e - starts[-1] <= max_chars:
            ends[-1] = e
            continue
        starts.append(s)
        ends.append(e)
        link.append(0 if b else 1)
    return Steps(starts, ends, link)
