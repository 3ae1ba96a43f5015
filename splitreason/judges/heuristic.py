"""The offline, deterministic ``heuristic`` judge: rules instead of a model.

It needs no GPU, no network and no keys, so it is the default judge. It cuts the thinking part
of a trace into steps (sentences, lines, display-math blocks), scores each step for difficulty
with a few documented features (computation density, LaTeX operators, chained equalities,
multi-step manipulation words, case analysis, reflection / backtracking cues, minus filler,
restatement and summary), then greedily picks the highest-scoring steps, merging neighbours
into spans, until the chosen spans cover the target share of the trace's characters.

Everything is pure Python + precompiled ``re``; the per-trace cost is a handful of regex scans
over the thinking part plus one short Python loop over its steps. The rules are documented in
docs/heuristic_judge.md; change ``RULES_VERSION`` whenever a rule or a weight changes, because
it (with the parameters) is the judge's provenance hash.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from bisect import bisect_right
from itertools import repeat
from operator import mul, sub
from typing import Any

from splitreason.judges.base import Excerpt, Judge, Verdict
from splitreason.schemas import JudgeInfo, Trace, Usage

__all__ = ["RULES_VERSION", "HeuristicJudge", "select_spans"]

#: Bump on any change to a rule, a regex or a weight: it names the rule set in JudgeInfo.model.
RULES_VERSION = "rules-v1"

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"

# --------------------------------------------------------------------------------------------
# Segmentation
# --------------------------------------------------------------------------------------------

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


# A sentence: starts on a non-space, runs to the end of its line or to a run of . ! ? that is
# followed by whitespace (so 3.14, x.y and "?!" inside a word do not end it). Every boundary
# therefore lies on whitespace, a line end, a think tag or a display-math delimiter: a step
# never splits a word or a LaTeX command.
# The final look-behind backtracks over a line's trailing blanks, so no step ends on one.
_SENTENCE = re.compile(r"[^\s][^\n.!?]*(?:[.!?]+(?!\s)[^\n.!?]*)*[.!?]*(?<=\S)")
_NONSPACE_RUN = re.compile(r"\S+")

# --------------------------------------------------------------------------------------------
# Features
# --------------------------------------------------------------------------------------------

# Computation characters: digits and arithmetic / relation / script operators (ASCII and
# Unicode). Counted one by one: a single character class is the cheapest thing sre can count,
# and multi-digit numbers are more work than one-digit ones anyway.
_DENSE = re.compile(r"[0-9=+\-*/^_<>×÷·−±∓≤≥≠≈≡√∑∏∫∞]")


def _by_first_letter(alternatives: list[str]) -> str:
    """An alternation grouped by first character, "a(?:x|y)|b(?:z)": sre checks one literal
    per group instead of one per alternative. Each alternative must start with a literal."""
    groups: dict[str, list[str]] = {}
    for alternative in alternatives:
        groups.setdefault(alternative[0], []).append(alternative[1:])
    return "|".join(f"{re.escape(first)}(?:{'|'.join(rests)})" for first, rests in groups.items())


# LaTeX operators and commands that carry mathematical work (not spacing, fonts or delimiters).
_TEX_COMMANDS = (
    "frac dfrac tfrac sqrt sum prod int iint oint binom dbinom tbinom choose equiv pmod bmod mod "
    "cdot times div le leq ge geq ne neq approx pm mp log ln exp sin cos tan cot sec csc arcsin "
    "arccos arctan lim infty partial nabla lfloor lceil det gcd lcm max min implies iff "
    "Rightarrow Leftrightarrow cdots ldots overline vec angle triangle circ mid nmid "
    "subset subseteq cup cap in notin"
).split()
_TEX = re.compile(rf"\\(?:{_by_first_letter(_TEX_COMMANDS)})(?![A-Za-z])|[\^_]\{{")

_APOS = "['\u2019]"
# Cue phrases, matched on the lower-cased thinking part at the start of a word (after
# whitespace, "(", '"', "*" or a backslash). Each starts with a literal letter; the order
# within a kind does not matter, the order of the kinds does where two cues start at the same
# place (reflection before filler).
_CUE_PATTERNS: dict[str, list[str]] = {
    # strong reflection / backtracking
    "rs": [
        r"wait\b",
        r"hold on\b",
        r"but that contradicts\b",
        r"contradict\w*",
        r"double[- ]?check\w*",
        r"i (?:made|make|must have made|think i made) (?:a |an )?(?:mistake|error|miscalculation)",
        r"mistake\b",
        r"miscalculat\w*",
        r"miscount\w*",
        rf"no,? (?:that{_APOS}?s|that is|this is|it{_APOS}?s) (?:not |in)?(?:wrong|right|correct)",
        rf"that(?:{_APOS}?s| is) (?:wrong|incorrect|not right|not correct|impossible)",
        rf"this(?:{_APOS}?s| is) (?:wrong|incorrect|not right|not correct|impossible)",
        rf"that can(?:{_APOS}t|not) be\b",
        rf"doesn{_APOS}?t (?:make sense|add up|match|work)",
        r"on second thought\b",
        r"oops\b",
        r"re-?(?:check|compute|calculate|examine|evaluate|consider|verify|do|think|derive|count)\w*",
        r"let me try (?:again|another|a different)",
    ],
    # weak reflection: hesitation, self-checks, changes of approach
    "rw": [
        r"hmm+\b",
        r"actually\b",
        r"alternatively\b",
        r"let me (?:check|verify|confirm)\b",
        r"is that (?:right|correct)\b",
        r"not sure\b",
        r"confus\w*",
    ],
    # case analysis
    "case": [
        r"case\s*(?:\d+|[ivx]+\b|[a-d]\b)",
        r"sub-?cases?\b",
        r"first cases?\b",
        r"second cases?\b",
        r"third cases?\b",
        r"other cases?\b",
        r"remaining cases?\b",
        r"both cases\b",
        r"two cases\b",
        r"three cases\b",
        r"all cases\b",
        r"if\b[^.!?\n]{1,120}?\bthen\b",
        r"suppose\b",
        r"assume\b",
        r"otherwise\b",
        r"either\b",
    ],
    # multi-step manipulation verbs
    "man": [
        r"substitut\w*",
        r"plug\w*",
        r"expand\w*",
        r"factor\w*",
        r"simplif\w*",
        r"rearrang\w*",
        r"multipl\w*",
        r"divid\w*",
        r"subtract\w*",
        r"combin\w*",
        r"cancel\w*",
        r"complet\w* the square",
        r"solv\w*",
        r"comput\w*",
        r"calculat\w*",
        r"differentiat\w*",
        r"integrat\w*",
        r"isolat\w*",
        r"cross[- ]multipl\w*",
        r"compar\w*",
        r"apply\w*",
    ],
    # weak connectors of a derivation (\implies and \therefore count too)
    "con": [
        r"so\b",
        r"then\b",
        r"therefore\b",
        r"thus\b",
        r"hence\b",
        r"implies\b",
        r"gives\b",
        r"we get\b",
        r"that means\b",
    ],
    # filler and restatement openers
    "fil": [
        r"okay\b",
        r"ok\b",
        r"alright\b",
        r"all right\b",
        r"let me (?:think|see|start|begin|understand|read|parse|recall|visualize|try to)\b",
        r"the (?:problem|question) (?:says|states|asks|is asking|gives|tells|is)\b",
        rf"we(?:{_APOS}?re| are) (?:given|asked|told)\b",
        r"given that\b",
        r"i need to (?:find|figure out|determine|solve|show|prove)\b",
        r"we need to (?:find|figure out|determine|solve|show|prove)\b",
        rf"first,? (?:let me|i need|i should|let{_APOS}s)\b",
        r"i (?:remember|recall)\b",
    ],
    # the closing summary (\boxed counts: the prefix may be a backslash)
    "sum": [
        r"the (?:final )?answer (?:is|should be)\b",
        r"final answer\b",
        r"boxed\b",
        r"in conclusion\b",
        r"to summari[sz]e\b",
        r"summing up\b",
    ],
}
_CUE_KINDS = tuple(_CUE_PATTERNS)
_CUE_INDEX = {kind: i for i, kind in enumerate(_CUE_KINDS)}
_CUE_CAPS = (2, 2, 2, 3, 3, 2, 1)  # at most this many cues of each kind count in one step


def _build_cue_scanner() -> re.Pattern[str]:
    """One regex for every cue, without capturing groups (they make sre slow), led by a
    character set (so sre only tries word starts) and grouped by first letter (so it tries a
    handful of alternatives at each). The kind of a match is found afterwards (_cue_kind)."""
    patterns = [pattern for kind in _CUE_KINDS for pattern in _CUE_PATTERNS[kind]]
    return re.compile(rf"[ \t\n\r\f\v(\"*\\](?:{_by_first_letter(patterns)})")


_CUE_SCAN = _build_cue_scanner()
_CUE_CLASSIFY = [re.compile("|".join(_CUE_PATTERNS[k])) for k in _CUE_KINDS]
_CUE_KIND_CACHE: dict[str, int] = {}


def _cue_kind(cue: str) -> int:
    """Index of the first kind whose patterns match the whole cue (its first character is the
    one before the word): the kind the scan chose, since it tries the kinds in the same order."""
    kind = _CUE_KIND_CACHE.get(cue)
    if kind is None:
        kind = next(i for i, p in enumerate(_CUE_CLASSIFY) if p.fullmatch(cue, 1))
        if len(_CUE_KIND_CACHE) > 100_000:
            _CUE_KIND_CACHE.clear()
        _CUE_KIND_CACHE[cue] = kind
    return kind


_PROBLEM_TOKEN = re.compile(r"[a-z]{4,}|\d+")

# Weights (documented in docs/heuristic_judge.md).
W_DENSE = 6.0  # per computation character, divided by max(step length, DENSITY_FLOOR)
W_TEX = 20.0  # per LaTeX operator, same normalisation
DENSITY_FLOOR = 80  # short steps are not dense just because they are short
W_CHAIN = 0.5  # per '=' beyond the first (at most 4)
W_REFLECT_STRONG = 1.5
W_REFLECT_WEAK = 0.75
W_CASE = 1.0
W_MANIP = 0.6
W_CONNECT = 0.25
W_CONTEXT = 1.0  # the step right after a reflection cue re-computes (dense >= CONTEXT_MIN_COMP)
CONTEXT_MIN_COMP = 1.0
FILLER_FACTOR = 0.4  # filler / restatement opener and no reflection cue
SUMMARY_FACTOR = 0.5  # "the answer is", \boxed, "in conclusion"
RESTATE_FACTOR = 0.35  # mostly the problem's own words (only when the problem is known)
RESTATE_MIN_TOKENS = 6
RESTATE_SHARE = 0.6

# Names used in reasons, in a fixed order for ties.
_FEATURE_NAMES = (
    "reflection cue",
    "re-computation after reflection",
    "dense computation",
    "LaTeX operators",
    "chained equalities",
    "case analysis",
    "multi-step manipulation",
)
_REASON_MIN = 0.5
_NEG_POSITIONS = tuple(range(0, -len(_FEATURE_NAMES), -1))
_REASON_MAX_FEATURES = 3


def _think_bounds(text: str) -> tuple[int, int]:
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


def _segment(text: str, lo: int, hi: int, max_chars: int, min_chars: int) -> tuple[list[int], list[int], bytearray]:
    """Cut text[lo:hi] into steps. Returns starts, ends and `link` (link[i] = 1 when step i may
    be merged with step i-1: only whitespace lies between them). Steps never contain a think
    tag, never start or end on whitespace, and are at most max_chars long (a single token
    longer than that stays whole; it is never selected)."""
    # Stray tags inside the thinking part are hard barriers.
    regions = []
    pos = lo
    if text.find("<think>", lo, hi) >= 0 or text.find("</think>", lo, hi) >= 0:
        for m in _TAG.finditer(text, lo, hi):
            regions.append((pos, m.start()))
            pos = m.end()
    regions.append((pos, hi))

    # Atomic pieces: display-math blocks and sentences; `brk` marks a piece after a barrier.
    pieces: list[tuple[int, int]] = []
    barriers = set()
    sentence_iter = _SENTENCE.finditer
    for r_lo, r_hi in regions:
        barriers.add(len(pieces))
        cursor = r_lo
        for d_start, d_end in _display_blocks(text, r_lo, r_hi):
            if cursor < d_start:
                pieces.extend([x.span() for x in sentence_iter(text, cursor, d_start)])
            pieces.append((d_start, d_end))
            cursor = d_end
        if cursor < r_hi:
            pieces.extend([x.span() for x in sentence_iter(text, cursor, r_hi)])
    ps = [x[0] for x in pieces]
    pe = [x[1] for x in pieces]
    brk = [False] * len(pieces)
    for k in barriers:
        if k < len(brk):
            brk[k] = True

    # Oversized pieces are cut at whitespace into chunks of at most max_chars.
    if max(map(sub, pe, ps), default=0) > max_chars:
        ps2: list[int] = []
        pe2: list[int] = []
        brk2: list[bool] = []
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
                    b = False
                    cs, ce = ts, te
            ps2.append(cs)
            pe2.append(ce)
            brk2.append(b)
        ps, pe, brk = ps2, pe2, brk2

    # Pieces shorter than min_chars are merged into their neighbours (forward first), so that
    # "Wait." joins the re-computation that follows it.
    starts: list[int] = []
    ends: list[int] = []
    link = bytearray()
    n = len(ps)
    i = 0
    while i < n:
        s, e, b = ps[i], pe[i], brk[i]
        i += 1
        while e - s < min_chars and i < n and not brk[i] and pe[i] - s <= max_chars:
            e = pe[i]
            i += 1
        if e - s < min_chars and starts and not b and e - starts[-1] <= max_chars:
            ends[-1] = e  # a short tail joins the previous step
            continue
        starts.append(s)
        ends.append(e)
        link.append(0 if b else 1)
    return starts, ends, link


def _score_steps(
    text: str,
    lo: int,
    hi: int,
    starts: list[int],
    ends: list[int],
    link: bytearray,
    min_chars: int,
    problem_tokens: frozenset[str] | None,
) -> tuple[list[float], list[list[float]]]:
    """Score every step. Returns the scores and, per feature of _FEATURE_NAMES, the list of
    each step's (factor-weighted) contribution, from which the reasons are written."""
    n = len(starts)
    zero = [0.0] * n
    if not n:
        return zero, [zero] * len(_FEATURE_NAMES)
    # Cue counts: one scan over the lower-cased thinking part, padded with a blank so that a cue
    # at its very start has a "preceding" character (match.start() is then the cue's offset in
    # the body). str.lower() keeps offsets unless the text holds one of the rare characters
    # whose lower case is longer (e.g. U+0130); those are left as they are.
    body = text[lo:hi]
    low = body.lower()
    if len(low) != len(body):
        low = "".join(ch if len(ch.lower()) != 1 else ch.lower() for ch in body)
    low = " " + low
    cues: dict[int, list[int]] = {}
    kind_of = _CUE_KIND_CACHE.get
    for at, cue in [(m.start(), m.group()) for m in _CUE_SCAN.finditer(low)]:
        at += lo
        k = bisect_right(starts, at) - 1
        if k >= 0 and at < ends[k]:
            kind = kind_of(cue)
            if kind is None:
                kind = _cue_kind(cue)
            counts = cues.get(k)
            if counts is None:
                counts = cues[k] = [0] * len(_CUE_KINDS)
            counts[kind] += 1

    # Computation features, one C call per step and count, then list arithmetic.
    spans = list(zip(starts, ends))
    dense_findall = _DENSE.findall
    tex_findall = _TEX.findall
    count = text.count
    floor = DENSITY_FLOOR
    norms = [e - s if e - s > floor else floor for s, e in spans]
    f_dense = [W_DENSE * len(dense_findall(text, s, e)) / norm for (s, e), norm in zip(spans, norms)]
    f_tex = [W_TEX * len(tex_findall(text, s, e)) / norm for (s, e), norm in zip(spans, norms)]
    f_chain = [W_CHAIN * min(q - 1, 4) if q > 1 else 0.0 for q in [count("=", s, e) for s, e in spans]]
    scores = [a + b + c for a, b, c in zip(f_dense, f_tex, f_chain)]
    f_reflect = zero.copy()
    f_context = zero.copy()
    f_case = zero.copy()
    f_manip = zero.copy()
    factors: dict[int, float] = {}

    # Cue features, only where there are cues.
    for i, counts in cues.items():
        rs, rw, case, man, con, fil, summ = map(min, counts, _CUE_CAPS)
        reflect = W_REFLECT_STRONG * rs + W_REFLECT_WEAK * rw
        f_reflect[i] = reflect
        f_case[i] = W_CASE * case
        f_manip[i] = W_MANIP * man + W_CONNECT * con
        scores[i] += reflect + f_case[i] + f_manip[i]
        if reflect:
            # Context: the next step re-computes right after a reflection cue.
            j = i + 1
            if j < n and link[j] and f_dense[j] + f_tex[j] >= CONTEXT_MIN_COMP:
                f_context[j] = W_CONTEXT
                scores[j] += W_CONTEXT
        elif fil or summ:
            factors[i] = (FILLER_FACTOR if fil else 1.0) * (SUMMARY_FACTOR if summ else 1.0)

    # Restatement: in the first quarter, steps that mostly use the problem's own words.
    if problem_tokens:
        restate_until = lo + (hi - lo) // 4
        findall = _PROBLEM_TOKEN.findall
        for i in range(bisect_right(starts, restate_until)):
            if f_reflect[i]:
                continue
            toks = findall(low, starts[i] - lo + 1, ends[i] - lo + 1)
            if len(toks) >= RESTATE_MIN_TOKENS:
                shared = sum(map(problem_tokens.__contains__, toks))
                if shared >= RESTATE_SHARE * len(toks):
                    factors[i] = factors.get(i, 1.0) * RESTATE_FACTOR

    features = [f_reflect, f_context, f_dense, f_tex, f_chain, f_case, f_manip]
    for i, factor in factors.items():
        scores[i] *= factor
        for values in features:
            values[i] *= factor
    # Steps shorter than min_chars (only in a thinking part shorter than that) are never chosen.
    for i, (s, e) in enumerate(spans):
        if e - s < min_chars:
            scores[i] = 0.0
    return scores, features


def _reason(features: list[list[float]], first: int, last: int) -> str:
    """Name the features that made steps first..last hard: each feature's strongest
    contribution in the span (so long spans do not list everything), the top three above
    _REASON_MIN, ties in the fixed order of _FEATURE_NAMES."""
    best = [max(values[first : last + 1]) for values in features]
    ranked = sorted(zip(best, _NEG_POSITIONS), reverse=True)
    names = [_FEATURE_NAMES[-j] for v, j in ranked[:_REASON_MAX_FEATURES] if v >= _REASON_MIN]
    if not names and ranked[0][0] > 0:
        names = [_FEATURE_NAMES[-ranked[0][1]]]
    return "; ".join(names) if names else "computation"


def select_spans(
    text: str,
    target_coverage: float,
    *,
    max_span_chars: int = 1200,
    min_span_chars: int = 40,
    problem: str | None = None,
) -> list[tuple[int, int, str]]:
    """Return sorted, non-overlapping (start, end, reason) spans covering about
    `target_coverage` of `text`'s characters, all inside the thinking part.

    `problem`, when given, lets steps that mostly repeat the problem's words score low.
    Offsets are Python code points. Deterministic: the same input gives the same spans.
    """
    if not isinstance(target_coverage, (int, float)) or math.isnan(target_coverage):
        raise ValueError(f"target_coverage must be a number in [0, 1], got {target_coverage!r}")
    if not 0.0 <= target_coverage <= 1.0:
        raise ValueError(f"target_coverage must be in [0, 1], got {target_coverage}")
    target = target_coverage * len(text)
    if target <= 0:
        return []
    lo, hi = _think_bounds(text)
    if hi - lo < min_span_chars:
        return []
    starts, ends, link = _segment(text, lo, hi, max_span_chars, min_span_chars)
    n = len(starts)
    if not n:
        return []
    problem_tokens = frozenset(_PROBLEM_TOKEN.findall(problem.lower())) if problem else None
    scores, features = _score_steps(text, lo, hi, starts, ends, link, min_span_chars, problem_tokens)

    # Greedy: best score first, ties by position. A chosen step joins its chosen neighbours
    # (only whitespace between) while the run stays within max_span_chars.
    order = sorted(range(n), key=scores.__getitem__, reverse=True)  # stable: ties by position
    chosen = bytearray(n)
    joined = bytearray(n)  # joined[i]: step i belongs to the same span as step i-1
    run_lo = list(range(n))  # valid at the last step of a run: its first step
    run_hi = list(range(n))  # valid at the first step of a run: its last step
    covered = 0
    for i in order:
        if scores[i] <= 0.0:
            break  # the rest score no better: featureless steps are never chosen
        if ends[i] - starts[i] > max_span_chars:
            continue  # a single unbreakable token longer than the cap
        first = last = i
        if i > 0 and chosen[i - 1] and link[i] and ends[i] - starts[run_lo[i - 1]] <= max_span_chars:
            first = run_lo[i - 1]
        if i + 1 < n and chosen[i + 1] and link[i + 1] and ends[run_hi[i + 1]] - starts[first] <= max_span_chars:
            last = run_hi[i + 1]
        added = ends[last] - starts[first]
        if first < i:
            added -= ends[i - 1] - starts[first]
        if last > i:
            added -= ends[last] - starts[i + 1]
        new_covered = covered + added
        if new_covered > target and new_covered - target >= target - covered:
            continue  # overshoots more than it helps: try a smaller step
        chosen[i] = 1
        if first < i:
            joined[i] = 1
        if last > i:
            joined[i + 1] = 1
        run_hi[first] = last
        run_lo[last] = first
        covered = new_covered
        if covered >= target:
            break

    out: list[tuple[int, int, str]] = []
    i = chosen.find(1)
    while i >= 0:
        j = i
        while j + 1 < n and joined[j + 1]:  # joined implies chosen
            j += 1
        out.append((starts[i], ends[j], _reason(features, i, j)))
        i = chosen.find(1, j + 1)
    return out


class HeuristicJudge(Judge):
    """Rule-based judge: offline, deterministic, free; the default."""

    concurrent = False

    def __init__(self, name: str = "heuristic", *, max_span_chars: int = 1200, min_span_chars: int = 40):
        super().__init__(name)
        if min_span_chars < 1:
            raise ValueError(f"min_span_chars must be at least 1, got {min_span_chars}")
        if max_span_chars < min_span_chars:
            raise ValueError(f"max_span_chars ({max_span_chars}) must be at least min_span_chars ({min_span_chars})")
        self.max_span_chars = max_span_chars
        self.min_span_chars = min_span_chars

    @property
    def params(self) -> dict[str, Any]:
        return {"max_span_chars": self.max_span_chars, "min_span_chars": self.min_span_chars}

    @property
    def info(self) -> JudgeInfo:
        blob = json.dumps({"rules": RULES_VERSION, "params": self.params}, sort_keys=True)
        return JudgeInfo(
            name=self.name,
            backend="heuristic",
            model=RULES_VERSION,
            prompt_hash=hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16],
            params=self.params,
        )

    def select_spans(self, text: str, target_coverage: float, problem: str | None = None) -> list[tuple[int, int, str]]:
        """Synchronous core, for benchmarks: (start, end, reason) spans of `text`."""
        return select_spans(
            text,
            target_coverage,
            max_span_chars=self.max_span_chars,
            min_span_chars=self.min_span_chars,
            problem=problem,
        )

    async def judge(self, trace: Trace, target_coverage: float) -> Verdict:
        text = trace.text
        spans = self.select_spans(text, target_coverage, problem=trace.problem)
        excerpts = [Excerpt(text=text[s:e], reason=reason, start=s) for s, e, reason in spans]
        return Verdict(excerpts=excerpts, usage=Usage(), requests=0, cache_hits=0)
