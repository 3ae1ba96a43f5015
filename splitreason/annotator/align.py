"""Map a judge's quoted excerpt back onto exact character offsets of the trace.

Three stages, cheapest first; the first that succeeds wins:

1. **exact** -- ``str.find`` of the stripped excerpt. When the excerpt occurs several times the
   *first* occurrence is taken, unless a ``hint`` (an offset the caller believes in) is given:
   then the occurrence nearest to the hint wins. Score 1.0.
2. **normalized** -- the same search on a normalized view of both texts (see `normalize`):
   whitespace runs collapsed, typographic quotes/dashes made ASCII, runs of backslashes read as
   one (an over-escaped ``\\\\frac`` is ``\\frac``), and whitespace next to punctuation or LaTeX
   delimiters ignored (``$ x = 1 $`` is ``$x=1$``). An offset map brings the match back to the
   original trace: ``start``/``end`` cover exactly the matched characters, never leading or
   trailing whitespace. Score `NORMALIZED_SCORE` (0.99).
3. **fuzzy** (bounded) -- never a scan of the whole trace. Up to `MAX_ANCHORS` short chunks
   ("anchors") spread over the normalized excerpt are looked up with ``str.find``; each hit
   votes for where the excerpt would start; the best few vote clusters (plus the hint, if any)
   become windows of about 1.5x the excerpt's length, and only there rapidfuzz aligns the
   excerpt (``Indel`` opcodes, i.e. the LCS alignment behind ``fuzz.ratio``). The aligned region
   is trimmed to the stretch that maximizes ``fuzz.ratio``; its score is ``fuzz.ratio / 100``.
   It is accepted only at ``>= fuzzy_threshold``; otherwise the excerpt is hallucinated and
   ``None`` is returned (never forced in). Excerpts shorter than `MIN_FUZZY_CHARS` normalized
   characters, longer than ``max_fuzzy_window`` or longer than the trace get no fuzzy stage.

Offsets are Python code points (end exclusive), so characters outside the BMP (``𝑥``) count
as one, as everywhere else in splitreason.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rapidfuzz import fuzz
from rapidfuzz.distance import Indel

from splitreason.judges.base import Excerpt
from splitreason.schemas.annotation import MatchKind

try:  # numpy (a dependency of `datasets`) builds the normalized view ~10x faster
    import numpy as _np
except ImportError:  # pragma: no cover - the pure-Python path is tested explicitly
    _np = None

__all__ = ["Alignment", "Aligner", "normalize", "NORMALIZED_SCORE", "MIN_FUZZY_CHARS"]

#: Score given to a match found only on the normalized view.
NORMALIZED_SCORE = 0.99
#: Excerpts shorter than this (normalized) must match exactly or normalized: fuzzy on tiny
#: strings is meaningless.
MIN_FUZZY_CHARS = 12
#: Default cap on the (normalized) excerpt length for the fuzzy stage; the judge schema caps
#: excerpts at 4000 characters, so every well-formed excerpt gets a fuzzy chance.
DEFAULT_MAX_FUZZY_WINDOW = 4096
#: Anchors (short chunks of the excerpt) looked up in the trace to find candidate regions.
MAX_ANCHORS = 24
#: Occurrences of one anchor taken into account (a very common chunk carries no information).
MAX_HITS_PER_ANCHOR = 16
#: Vote clusters turned into windows and aligned with rapidfuzz.
MAX_CANDIDATES = 3

_KIND_RANK = {"exact": 2, "normalized": 1, "fuzzy": 0}

# Typographic characters made ASCII, one code point for one (offsets are unchanged).
_TRANSLATION = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-",
    "\u2212": "-",
}
# Invisible characters dropped like whitespace.
_INVISIBLE = ("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff")
_BACKSLASH_RUN = re.compile(r"\\{2,}")


def normalize(text: str) -> str:
    """The normalized view used by stages 2 and 3.

    1. typographic quotes, primes and dashes become ASCII (``’`` -> ``'``, ``—`` -> ``-``);
    2. all whitespace (``str.isspace``) and zero-width characters are removed -- so whitespace
       differences of any kind, around LaTeX delimiters included, do not matter
       (``$ x = 1 $`` == ``$x=1$``, a reflowed paragraph == the original);
    3. each run of backslashes becomes one (``\\\\frac`` over-escaped by JSON == ``\\frac``; a
       LaTeX line break ``\\\\`` and its over-escaped ``\\\\\\\\`` both read ``\\``).
    """
    if not text.isascii():
        for char, ascii_char in _TRANSLATION.items():
            if char in text:
                text = text.replace(char, ascii_char)
        for char in _INVISIBLE:
            if char in text:
                text = text.replace(char, "")
    text = "".join(text.split())
    if "\\\\" in text:
        text = _BACKSLASH_RUN.sub(r"\\", text)
    return text


def _normalized_view(text: str) -> tuple[str, Sequence[int], Sequence[int]]:
    """``normalize(text)`` plus, for each of its characters, the original offset of that
    character (``starts``) and one past the last original character it stands for (``ends``:
    a collapsed backslash run ends at its last backslash)."""
    if _np is not None:
        return _normalized_view_numpy(text)
    return _normalized_view_python(text)


def _normalized_view_python(text: str) -> tuple[str, list[int], list[int]]:
    chars: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    invisible = set(_INVISIBLE)
    for i, char in enumerate(text):
        if char.isspace() or char in invisible:
            continue
        char = _TRANSLATION.get(char, char)
        if char == "\\" and chars and chars[-1] == "\\":
            ends[-1] = i + 1
            continue
        chars.append(char)
        starts.append(i)
        ends.append(i + 1)
    return "".join(chars), starts, ends


_ASCII_SPACE = (9, 10, 11, 12, 13, 28, 29, 30, 31, 32)
_NON_ASCII_REMOVED = [ord(c) for c in _INVISIBLE] + [
    c for c in range(128, 0x3001) if chr(c).isspace()
]


def _normalized_view_numpy(text: str) -> tuple[str, Any, Any]:
    np = _np
    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32).copy()
    removed = np.zeros(len(codes), dtype=bool)
    for code in _ASCII_SPACE:
        removed |= codes == code
    non_ascii = np.flatnonzero(codes > 127)
    if len(non_ascii):
        sub = codes[non_ascii]
        removed[non_ascii] = np.isin(sub, _NON_ASCII_REMOVED)
        for char, ascii_char in _TRANSLATION.items():
            sub[sub == ord(char)] = ord(ascii_char)
        codes[non_ascii] = sub
    kept = np.flatnonzero(~removed)
    chars = codes[kept]
    backslash = chars == 92
    repeat = np.zeros(len(chars), dtype=bool)
    repeat[1:] = backslash[1:] & backslash[:-1]
    keep = ~repeat
    starts = kept[keep]
    # end of each kept character: one past the last kept original character of its run
    last = np.flatnonzero(np.append(keep[1:], True))  # the last member of each run
    ends = kept[last] + 1
    norm = chars[keep].tobytes().decode("utf-32-le", "surrogatepass")
    return norm, starts, ends


@dataclass(frozen=True)
class Alignment:
    """Where an excerpt sits in the trace."""

    start: int  # Python code-point offset, end exclusive
    end: int
    score: float  # 1.0 exact; NORMALIZED_SCORE normalized; fuzzy = rapidfuzz ratio / 100
    match: MatchKind  # "exact" | "normalized" | "fuzzy"


class Aligner:
    """Aligns excerpts against one trace; build once per trace (precomputes normalized text + offset map).

    After a call that returns ``None``, `last_miss_score` holds the best fuzzy score seen (0.0
    when no candidate region existed): what `HallucinatedExcerpt.best_score` wants.
    """

    def __init__(
        self,
        text: str,
        *,
        fuzzy_threshold: float = 0.85,
        max_fuzzy_window: int = DEFAULT_MAX_FUZZY_WINDOW,
    ):
        if not 0.0 < fuzzy_threshold <= 1.0:
            raise ValueError(f"fuzzy_threshold must be in (0, 1], got {fuzzy_threshold}")
        self.text = text
        self.fuzzy_threshold = fuzzy_threshold
        self.max_fuzzy_window = max_fuzzy_window
        self.last_miss_score = 0.0
        # normalized view; _starts[i] / _ends[i]: original offsets covered by its character i
        self._norm, self._starts, self._ends = _normalized_view(text)

    def _norm_offset(self, orig: int) -> int:
        """Normalized offset of the first normalized character at or after original ``orig``."""
        return bisect_left(self._starts, orig)

    def _to_original(self, nstart: int, nend: int) -> tuple[int, int]:
        """Original ``[start, end)`` covering normalized characters ``[nstart, nend)`` exactly."""
        return int(self._starts[nstart]), int(self._ends[nend - 1])

    # ------------------------------------------------------------------ public API

    def align(self, excerpt: str, *, hint: int | None = None) -> Alignment | None:
        """Align one quote; ``hint`` is where the caller believes it starts (original offset)."""
        self.last_miss_score = 0.0
        found = self._align_cheap(excerpt, hint)
        if found is not None:
            return found
        found, best = self._align_fuzzy(normalize(excerpt), hint)
        if found is None:
            self.last_miss_score = best
        return found

    def align_excerpt(self, excerpt: Excerpt) -> Alignment | None:
        """Try excerpt.text (using excerpt.start as hint), then each of excerpt.alternatives; best wins.

        "Best" ranks by match kind first (exact > normalized > fuzzy), then by score, then by
        reading order (``text`` before the alternatives). Exact and normalized are tried on every
        reading before any fuzzy search runs, so a repaired reading that matches verbatim is
        found without paying for fuzzy matching of the broken one.
        """
        self.last_miss_score = 0.0
        readings = [excerpt.text]
        for alternative in excerpt.alternatives:
            if alternative not in readings:
                readings.append(alternative)
        hint = excerpt.start
        best: Alignment | None = None
        for reading in readings:
            found = self._align_cheap(reading, hint)
            if found is not None and (best is None or _better(found, best)):
                best = found
                if found.match == "exact":
                    return found
        if best is not None:
            return best
        miss = 0.0
        seen: set[str] = set()
        for reading in readings:
            normalized = normalize(reading)
            if normalized in seen:
                continue
            seen.add(normalized)
            found, score = self._align_fuzzy(normalized, hint)
            miss = max(miss, score)
            if found is not None and (best is None or _better(found, best)):
                best = found
        if best is None:
            self.last_miss_score = miss
        return best

    # ------------------------------------------------------------------ stages 1 and 2

    def _align_cheap(self, excerpt: str, hint: int | None) -> Alignment | None:
        stripped = excerpt.strip()
        if not stripped:
            return None
        text = self.text
        size = len(stripped)
        if hint is not None:
            lead = len(excerpt) - len(excerpt.lstrip())
            for at in (hint, hint + lead):
                if 0 <= at and text.startswith(stripped, at):
                    return Alignment(at, at + size, 1.0, "exact")
        at = _find_nearest(text, stripped, hint)
        if at >= 0:
            return Alignment(at, at + size, 1.0, "exact")

        normalized = normalize(stripped)
        if not normalized:
            return None
        nhint = None if hint is None else self._norm_offset(hint)
        nat = _find_nearest(self._norm, normalized, nhint)
        if nat < 0:
            return None
        start, end = self._to_original(nat, nat + len(normalized))
        return Alignment(start, end, NORMALIZED_SCORE, "normalized")

    # ------------------------------------------------------------------ stage 3

    def _align_fuzzy(self, quote: str, hint: int | None) -> tuple[Alignment | None, float]:
        """Fuzzy-align a *normalized* quote; returns (alignment or None, best score seen)."""
        norm = self._norm
        size = len(quote)
        if size < MIN_FUZZY_CHARS or size > self.max_fuzzy_window or size > len(norm):
            return None, 0.0

        nhint = None if hint is None else self._norm_offset(hint)
        windows = self._candidate_windows(quote, nhint)
        if not windows:
            return None, 0.0

        threshold = self.fuzzy_threshold
        best: tuple[float, int, int, int] | None = None  # (score, -distance, nstart, nend)
        best_score = 0.0
        for lo, hi in windows:
            region = _refine(quote, norm, lo, hi)
            if region is None:
                continue
            score, nstart, nend = region
            best_score = max(best_score, score)
            if score < threshold:
                continue
            distance = abs(nstart - nhint) if nhint is not None else nstart
            key = (round(score, 6), -distance, nstart, nend)
            if best is None or key[:2] > best[:2]:
                best = key
        if best is None:
            return None, best_score
        score, _, nstart, nend = best
        start, end = self._to_original(nstart, nend)
        return Alignment(start, end, score, "fuzzy"), best_score

    def _candidate_windows(self, quote: str, nhint: int | None) -> list[tuple[int, int]]:
        """Windows ``[lo, hi)`` of the normalized trace worth aligning, best first."""
        norm = self._norm
        size = len(quote)
        anchor_len = min(16, max(6, size // 4))
        count = min(MAX_ANCHORS, max(3, size // anchor_len))
        span = size - anchor_len
        positions = sorted({round(i * span / (count - 1)) for i in range(count)}) if count > 1 else [0]

        votes: list[tuple[int, int]] = []  # (estimated start, anchor index)
        find = norm.find
        for index, pos in enumerate(positions):
            anchor = quote[pos : pos + anchor_len]
            if anchor.isspace():
                continue
            at = find(anchor)
            hits = 0
            while at >= 0 and hits < MAX_HITS_PER_ANCHOR:
                votes.append((at - pos, index))
                hits += 1
                at = find(anchor, at + 1)

        pad = max(16, size // 4)
        windows: list[tuple[int, int]] = []
        if votes:
            votes.sort()
            tolerance = max(8, size // 8)
            clusters: list[tuple[int, int, int]] = []  # (support, lo, hi) of estimated starts
            lo = hi = votes[0][0]
            anchors = {votes[0][1]}
            for estimate, index in votes[1:]:
                if estimate - hi <= tolerance:
                    hi = estimate
                    anchors.add(index)
                else:
                    clusters.append((len(anchors), lo, hi))
                    lo = hi = estimate
                    anchors = {index}
            clusters.append((len(anchors), lo, hi))
            if nhint is not None:
                clusters.sort(key=lambda c: (-c[0], abs(c[1] - nhint)))
            else:
                clusters.sort(key=lambda c: (-c[0], c[1]))
            for _, lo, hi in clusters[:MAX_CANDIDATES]:
                windows.append((max(0, lo - pad), min(len(norm), hi + size + pad)))
        if nhint is not None and not any(lo <= nhint < hi for lo, hi in windows):
            windows.append((max(0, nhint - pad), min(len(norm), nhint + size + pad)))
        return windows


def _better(a: Alignment, b: Alignment) -> bool:
    return (_KIND_RANK[a.match], a.score) > (_KIND_RANK[b.match], b.score)


def _find_nearest(haystack: str, needle: str, hint: int | None) -> int:
    """First occurrence, or with a hint the occurrence starting nearest to it (-1 if none)."""
    if hint is None:
        return haystack.find(needle)
    hint = max(0, min(hint, len(haystack)))
    before = haystack.rfind(needle, 0, hint + len(needle))
    after = haystack.find(needle, hint + 1)
    if before < 0:
        return after
    if after < 0:
        return before
    return before if hint - before <= after - hint else after


def _refine(quote: str, norm: str, lo: int, hi: int) -> tuple[float, int, int] | None:
    """Best region of ``norm[lo:hi]`` for ``quote``: (ratio in [0, 1], start, end) in ``norm`` offsets.

    The LCS alignment of the quote against the whole window may pick up stray single-letter
    matches in the window's margins; its matching blocks are trimmed from either end while that
    raises ``2 * matched / (len(quote) + len(region))`` (the Indel ratio), then the region is
    extended over characters that still agree, and finally scored with ``fuzz.ratio``.
    """
    window = norm[lo:hi]
    blocks = [b for b in Indel.opcodes(quote, window).as_matching_blocks() if b.size]
    if not blocks:
        return None
    size = len(quote)
    first, last = 0, len(blocks) - 1
    matched = sum(b.size for b in blocks)

    def ratio(i: int, j: int, m: int) -> float:
        return 2.0 * m / (size + blocks[j].b + blocks[j].size - blocks[i].b)

    current = ratio(first, last, matched)
    while first < last:
        drop_first = ratio(first + 1, last, matched - blocks[first].size)
        drop_last = ratio(first, last - 1, matched - blocks[last].size)
        if drop_first >= drop_last and drop_first > current:
            matched -= blocks[first].size
            first += 1
            current = drop_first
        elif drop_last > current:
            matched -= blocks[last].size
            last -= 1
            current = drop_last
        else:
            break

    qa, wa = blocks[first].a, blocks[first].b
    qb, wb = blocks[last].a + blocks[last].size, blocks[last].b + blocks[last].size
    while qa > 0 and wa > 0 and quote[qa - 1] == window[wa - 1]:
        qa -= 1
        wa -= 1
    while qb < size and wb < len(window) and quote[qb] == window[wb]:
        qb += 1
        wb += 1
    while wa < wb and window[wa] == " ":
        wa += 1
    while wb > wa and window[wb - 1] == " ":
        wb -= 1
    if wb <= wa:
        return None
    score = fuzz.ratio(quote, window[wa:wb]) / 100.0
    return score, lo + wa, lo + wb
