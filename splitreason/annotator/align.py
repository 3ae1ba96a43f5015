"""Map a judge's quoted excerpt back onto exact character offsets of the trace.

Three stages, cheapest first; the first that succeeds wins:

1. **exact** -- ``str.find`` of the stripped excerpt. When the excerpt occurs several times the
   *first* occurrence is taken, unless a ``hint`` (an offset the caller believes in) is given:
   then the occurrence nearest to the hint wins. Score 1.0.
2. **normalized** -- the same search on a normalized view of both texts (see `normalize`):
   typographic quotes/dashes made ASCII, all whitespace dropped (so reflowed lines, doubled
   spaces and spaces around LaTeX delimiters -- ``$ x = 1 $`` vs ``$x=1$`` -- do not matter),
   and each run of backslashes read as one (an over-escaped ``\\\\frac`` is ``\\frac``). A
   per-character offset map brings the match back to the original trace: ``start``/``end``
   cover exactly the matched characters, never leading or trailing whitespace. Same rule for
   repeated occurrences. Score `NORMALIZED_SCORE` (0.99).
3. **fuzzy** (bounded) -- never a scan of the whole trace. Up to `MAX_ANCHORS` chunks of
   `ANCHOR_CHARS` characters ("anchors") spread over the normalized excerpt are looked up with
   ``str.find``; each hit votes for where the excerpt would start (anchors found more than
   `MAX_HITS_PER_ANCHOR` times are stock phrases and do not vote). The best-supported vote
   clusters (plus the hint, if any) become windows of the excerpt's length plus 10 % on each
   side. One bit-parallel LCS per window (``Indel.similarity``, no traceback) bounds the best
   ratio any region inside it could reach; windows that cannot reach the threshold are dropped,
   and the best `MAX_REFINED` others are aligned with rapidfuzz (``Indel`` opcodes: the LCS
   alignment behind ``fuzz.ratio``). The aligned region is trimmed to the stretch that
   maximizes the ratio, and scored ``fuzz.ratio(excerpt, region) / 100`` (both normalized; a
   typo in the excerpt's very first or last character leaves that character out of the region,
   which `snap_to_boundaries` restores with its word). It is accepted only at
   ``>= fuzzy_threshold``; otherwise the excerpt is hallucinated and ``None`` is returned (never
   forced in). Excerpts shorter than `MIN_FUZZY_CHARS` normalized characters, longer than
   ``max_fuzzy_window`` or longer than the (normalized) trace get no fuzzy stage. With several
   acceptable regions the best score wins, then the one nearest the hint, then the earliest.

A judge's excerpt usually costs microseconds (exact), tens of microseconds (normalized) or
well under a millisecond (fuzzy, not found) on a 50k-character trace; building an `Aligner`
costs about 1 ms per 50k characters. See ``benchmarks/bench_alignment.py``.

Offsets are Python code points (end exclusive), so characters outside the BMP (``𝑥``) count
as one, as everywhere else in splitreason.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from functools import cached_property
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np  # builds the normalized view ~10x faster than a Python loop
from rapidfuzz import fuzz
from rapidfuzz.distance import Indel

from splitreason.judges.base import Excerpt
from splitreason.schemas.annotate import AnnotateSettings
from splitreason.schemas.annotation import MATCH_RANK, MatchKind

#: The least fuzzy alignment score for a quote (declared once, in AnnotateSettings).
DEFAULT_FUZZY_THRESHOLD: float = AnnotateSettings.default("fuzzy_threshold")

__all__ = ["Alignment", "Aligner", "MIN_FUZZY_CHARS", "NORMALIZED_SCORE", "normalize"]

#: Score given to a match found only on the normalized view.
NORMALIZED_SCORE = 0.99
#: Excerpts shorter than this (normalized) must match exactly or normalized: fuzzy on tiny
#: strings is meaningless.
MIN_FUZZY_CHARS = 12
#: Default cap on the (normalized) excerpt length for the fuzzy stage; the judge schema caps
#: excerpts at 4000 characters, so every well-formed excerpt gets a fuzzy chance.
DEFAULT_MAX_FUZZY_WINDOW = 4096
#: Anchors (short chunks of the normalized excerpt, overlapping for short excerpts) looked up
#: in the trace to find candidate regions.
MAX_ANCHORS = 16
ANCHOR_CHARS = 12
#: Votes collected from over-frequent anchors when no informative anchor matched at all.
MAX_FALLBACK_VOTES = 512
#: An anchor found more often than this carries no information and does not vote.
MAX_HITS_PER_ANCHOR = 16
#: Vote clusters turned into windows (ranked by a cheap Indel similarity) ...
MAX_CANDIDATES = 8
#: ... of which this many are aligned in full (opcodes) and scored.
MAX_REFINED = 3

# Unmatched characters at either end of a fuzzy quote tried as substitutions (typos).
_EDGE_TYPOS = 8


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


# Non-ASCII code points removed: str.isspace() ones plus _INVISIBLE, as closed ranges.
_NON_ASCII_REMOVED = ((0x85, 0x85), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200D),
                      (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x2060), (0x3000, 0x3000),
                      (0xFEFF, 0xFEFF))


def _normalized_view(text: str) -> tuple[str, Sequence[int], Sequence[int]]:
    """``normalize(text)`` plus, for each of its characters, the original offset of that
    character (``starts``) and one past the last original character it stands for (``ends``:
    a collapsed backslash run ends at its last backslash)."""
    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32).copy()
    removed = ((codes >= 9) & (codes <= 13)) | ((codes >= 28) & (codes <= 32))  # ASCII isspace
    non_ascii = np.flatnonzero(codes > 127)
    if len(non_ascii):
        sub = codes[non_ascii]
        gone = np.zeros(len(sub), dtype=bool)
        for low, high in _NON_ASCII_REMOVED:
            gone |= (sub >= low) & (sub <= high)
        removed[non_ascii] = gone
        for char, ascii_char in _TRANSLATION.items():
            sub[sub == ord(char)] = ord(ascii_char)
        codes[non_ascii] = sub
    kept = np.flatnonzero(~removed)
    if not len(kept):
        return "", kept, kept
    chars = codes[kept]
    backslash = chars == 92
    repeat = np.zeros(len(chars), dtype=bool)
    repeat[1:] = backslash[1:] & backslash[:-1]
    keep = ~repeat
    starts = kept[keep]
    # one past the last original character of each run (a kept character + its repeats)
    ends = kept[np.flatnonzero(np.append(keep[1:], True))] + 1
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

    ``fuzzy_threshold``: lowest fuzzy score accepted. ``max_fuzzy_window``: longest excerpt
    (in normalized characters) given a fuzzy search; longer ones match exactly/normalized or not
    at all. After a call that returns ``None``, `last_miss_score` holds the best fuzzy score
    seen (0.0 when no candidate region existed): what `HallucinatedExcerpt.best_score` wants.
    (`last_miss_score` is per instance: do not share one Aligner between threads that read it.)
    """

    def __init__(
        self,
        text: str,
        *,
        fuzzy_threshold: float = DEFAULT_FUZZY_THRESHOLD,
        max_fuzzy_window: int = DEFAULT_MAX_FUZZY_WINDOW,
    ):
        if not 0.0 < fuzzy_threshold <= 1.0:
            raise ValueError(f"fuzzy_threshold must be in (0, 1], got {fuzzy_threshold}")
        self.text = text
        self.fuzzy_threshold = fuzzy_threshold
        self.max_fuzzy_window = max_fuzzy_window
        self.last_miss_score = 0.0

    @cached_property
    def _view(self) -> tuple:
        """Normalized text and, per normalized character i, the original [_starts[i], _ends[i]).

        Built on first need: quotes found verbatim (every heuristic-judge excerpt, most LLM ones)
        never pay for it.
        """
        return _normalized_view(self.text)

    @property
    def _norm(self) -> str:
        return self._view[0]

    @property
    def _starts(self):
        return self._view[1]

    @property
    def _ends(self):
        return self._view[2]

    def _norm_offset(self, orig: int) -> int:
        """Normalized offset of the first normalized character at or after original ``orig``."""
        return bisect_left(self._starts, orig)

    def _to_original(self, nstart: int, nend: int) -> tuple[int, int]:
        """Original ``[start, end)`` covering normalized characters ``[nstart, nend)`` exactly."""
        return int(self._starts[nstart]), int(self._ends[nend - 1])

    # ------------------------------------------------------------------ public API

    def align(self, excerpt: str, *, hint: int | None = None) -> Alignment | None:
        """Align one quote; ``hint`` is where the caller believes it starts (original offset)."""
        return self.align_excerpt(Excerpt(text=excerpt, start=hint))

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
        starts = self._candidate_starts(quote, nhint)
        if not starts:
            return None, 0.0

        # Cheap ranking without traceback: the LCS of the quote with each tight window gives its
        # ratio to the whole window (a real score: the window is a region too) and an upper
        # bound on the ratio of any region inside it (2 * lcs / (size + lcs)).
        threshold = self.fuzzy_threshold
        slack = max(12, size // 10)
        windows = []
        best_score = 0.0
        for estimate in starts:
            lo = max(0, estimate - slack)
            hi = min(len(norm), estimate + size + slack)
            lcs = Indel.similarity(quote, norm[lo:hi]) / 2
            whole = 2 * lcs / (size + hi - lo)
            best_score = max(best_score, whole)
            if 2 * lcs / (size + lcs) >= threshold:
                # equally good windows (copies of a passage): the one nearest the hint first
                distance = abs(lo + slack - nhint) if nhint is not None else lo
                windows.append((-round(whole, 3), distance, lo, hi))
        windows.sort()

        best: tuple[float, int, float, int, int] | None = None  # (rounded score, -distance, score, nstart, nend)
        for _, _, lo, hi in windows[:MAX_REFINED]:
            region = _refine(quote, norm, lo, hi)
            if region is None:
                continue
            score, nstart, nend = region
            best_score = max(best_score, score)
            if score < threshold:
                continue
            distance = abs(nstart - nhint) if nhint is not None else nstart
            key = (round(score, 6), -distance, score, nstart, nend)
            if best is None or key[:2] > best[:2]:
                best = key
        if best is None:
            return None, best_score
        _, _, score, nstart, nend = best
        start, end = self._to_original(nstart, nend)
        return Alignment(start, end, score, "fuzzy"), best_score

    def _candidate_starts(self, quote: str, nhint: int | None) -> list[int]:
        """Likely start offsets of ``quote`` in the normalized trace, from anchor votes."""
        norm = self._norm
        size = len(quote)
        anchor_len = min(ANCHOR_CHARS, max(6, size // 4))
        count = min(MAX_ANCHORS, max(4, size // 6))
        span = size - anchor_len
        positions = sorted({i * span // (count - 1) for i in range(count)})

        votes: list[tuple[int, int]] = []  # (estimated start, anchor index)
        common: list[tuple[int, str]] = []  # anchors found too often to be informative
        find = norm.find
        for index, pos in enumerate(positions):
            anchor = quote[pos : pos + anchor_len]
            hits: list[tuple[int, int]] = []
            at = find(anchor)
            while at >= 0:
                if len(hits) == MAX_HITS_PER_ANCHOR:
                    common.append((pos, anchor))
                    hits = []
                    break
                hits.append((at - pos, index))
                at = find(anchor, at + 1)
            votes.extend(hits)
        if not votes:
            # only stock phrases matched: where several of them line up is all we have
            for index, (pos, anchor) in enumerate(common):
                at = find(anchor)
                while at >= 0 and len(votes) < MAX_FALLBACK_VOTES:
                    votes.append((at - pos, index))
                    at = find(anchor, at + 1)

        starts: list[int] = []
        if votes:
            votes.sort()
            tolerance = max(6, size // 20)
            clusters: list[tuple[int, int]] = []  # (support: distinct anchors, median estimate)
            group = [votes[0]]
            for vote in votes[1:]:
                if vote[0] - group[-1][0] <= tolerance:
                    group.append(vote)
                else:
                    clusters.append((len({i for _, i in group}), group[len(group) // 2][0]))
                    group = [vote]
            clusters.append((len({i for _, i in group}), group[len(group) // 2][0]))
            clusters.sort(key=lambda c: -c[0])
            starts = [estimate for _, estimate in clusters[:MAX_CANDIDATES]]
        if nhint is not None and not any(abs(s - nhint) <= size // 10 + 12 for s in starts):
            starts.append(nhint)
        return starts


def _better(a: Alignment, b: Alignment) -> bool:
    return (MATCH_RANK[a.match], a.score) > (MATCH_RANK[b.match], b.score)


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
    extended over characters that still agree (and over a few more taken as typos when that
    raises the ratio), and finally scored with ``fuzz.ratio``.
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
    if wb <= wa:
        return None
    score = fuzz.ratio(quote, window[wa:wb])
    # A typo in the quote's first / last few characters stops the extension above: try taking
    # the unmatched ends as substitutions, keep whatever raises the ratio.
    head, tail = qa, size - qb
    options = []
    if 0 < head <= _EDGE_TYPOS and wa >= head:
        options.append((wa - head, wb))
    if 0 < tail <= _EDGE_TYPOS and len(window) - wb >= tail:
        options.append((wa, wb + tail))
    if len(options) == 2:
        options.append((wa - head, wb + tail))
    for start, end in options:
        candidate = fuzz.ratio(quote, window[start:end])
        if candidate > score:
            score, wa, wb = candidate, start, end
    return score / 100.0, lo + wa, lo + wb
