"""The offline, deterministic ``heuristic`` judge: rules instead of a model.

It needs no GPU, no network and no keys, so it is the default judge. It cuts the thinking part
of a trace into steps (sentences, lines, display-math blocks), scores each step for difficulty
with a few documented features (computation density, LaTeX operators, chained equalities,
case analysis, multi-step manipulation words, reflection / backtracking cues; filler,
restatement and summary score low), then greedily takes the highest-scoring steps, merging
neighbours into spans, until the spans cover the target share of the trace's characters.
The rules are documented in docs/heuristic_judge.md.

Speed (it is benchmarked at hundreds of ~12k-character traces per second on one core): pure
Python + precompiled ``re``, no per-character Python loop. Per trace it runs a few regex scans
over the thinking part, and counts per step in C over a one-byte-per-character view of the
text (``str.encode("latin-1", "replace")`` keeps code-point offsets: every character outside
Latin-1 becomes one "?"), then loops in Python over the steps only.

Change ``RULES_VERSION`` whenever a rule, a pattern or a weight changes: with the parameters it
is the judge's provenance (JudgeInfo.model and prompt_hash).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from bisect import bisect_right
from operator import sub
from typing import Any

from splitreason import THINK_CLOSE, THINK_OPEN
from splitreason.judges.base import Excerpt, Judge, Verdict
from splitreason.schemas import JudgeInfo, Trace, Usage

__all__ = ["RULES_VERSION", "HeuristicJudge", "select_spans"]

#: Names the rule set (JudgeInfo.model). Bump on any change to a rule, a pattern or a weight.
RULES_VERSION = "rules-v1"


# Weights (docs/heuristic_judge.md explains each).
W_DENSE = 6.0  # per computation character, divided by max(step length, DENSITY_FLOOR)
W_TEX = 20.0  # per LaTeX operator, same normalisation
DENSITY_FLOOR = 80  # a short step is not dense just because it is short
W_CHAIN = 0.5  # per "=" beyond the first, at most 4 of them
W_REFLECT_STRONG = 1.5  # "Wait", "I made a mistake", "that contradicts", "let me double-check"
W_REFLECT_WEAK = 0.75  # "Hmm", "actually", "alternatively", "let me check"
W_CASE = 1.0  # "Case 1", "if ... then", "suppose", "otherwise"
W_MANIP = 0.6  # "substitute", "expand", "factor", "simplify", "solve", "compute"
W_CONNECT = 0.25  # "so", "then", "therefore", "thus", "hence"
W_CONTEXT = 1.0  # the step right after a reflection cue re-computes ...
CONTEXT_MIN_COMP = 1.0  # ... i.e. its computation score is at least this
FILLER_FACTOR = 0.4  # "Okay, so", "Let me think", "the problem says", unless a strong reflection cue
SUMMARY_FACTOR = 0.5  # "the answer is", \boxed, "in conclusion", unless a strong reflection cue
OVERSHOOT = 0.1  # the first pass of the selection stays within target * (1 + OVERSHOOT)
RESTATE_FACTOR = 0.35  # mostly the problem's own words (early in the thinking, problem known)
RESTATE_MIN_TOKENS = 6  # distinct content tokens in the step
RESTATE_SHARE = 0.6  # share of them found in the problem
RESTATE_WINDOW = (0.1, 1500)  # looked for in the first max(10 %, 1500 characters) of the thinking

# --------------------------------------------------------------------------------------------
# Segmentation (on the str)
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

# A sentence starts on a non-space and runs to the end of its line or to a run of . ! ? that
# is followed by whitespace (so 3.14, x.y and "?!" inside a word do not end it); the final
# look-behind backtracks over a line's trailing blanks. Every boundary therefore lies on
# whitespace, a think tag or a display-math delimiter: a step never splits a word or a LaTeX
# command, and never starts or ends on whitespace.
_SENTENCE = re.compile(r"[^\s][^\n.!?]*(?:[.!?]+(?!\s)[^\n.!?]*)*[.!?]*(?<=\S)")
_NONSPACE_RUN = re.compile(r"\S+")

# --------------------------------------------------------------------------------------------
# Features (on the one-byte-per-character view)
# --------------------------------------------------------------------------------------------


def _by_first_letter(alternatives: list[str]) -> str:
    """An alternation grouped by first character, "a(?:x|y)|b(?:z)": sre checks one literal
    per group instead of one per alternative. Each alternative must start with a literal."""
    groups: dict[str, list[str]] = {}
    for alternative in alternatives:
        groups.setdefault(alternative[0], []).append(alternative[1:])
    return "|".join(f"{re.escape(first)}(?:{'|'.join(rests)})" for first, rests in groups.items())


# Character classes, counted per step with bytes.count: 1 = computation character (digit or
# operator), 2 = "=" (computation too, and counted for chained equalities), 3 = LaTeX operator
# (marked on the backslash of a command below, or on the brace of ^{ and _{).
_DENSE_CHARS = "0123456789+-*/^_<>\u00d7\u00f7\u00b7\u00b1"  # ASCII and Latin-1: × ÷ · ±
_TEX_MARK = b"\x03"
_CLASS = bytes(
    1 if chr(byte) in _DENSE_CHARS else 2 if byte == ord("=") else 3 if byte == _TEX_MARK[0] else 0
    for byte in range(256)
)
# Operators beyond Latin-1 (rarer; looked for only when the text has such characters).
_UNICODE_OPS = re.compile("[\u2212\u2213\u2264\u2265\u2260\u2248\u2261\u221a\u2211\u220f\u222b\u221e]")

# LaTeX operators and commands that carry mathematical work (not spacing, fonts, delimiters).
_TEX_COMMANDS = (
    "frac dfrac tfrac sqrt sum prod int iint oint binom dbinom tbinom choose equiv pmod bmod mod "
    "cdot times div le leq ge geq ne neq approx pm mp log ln exp sin cos tan cot sec csc arcsin "
    "arccos arctan lim infty partial nabla lfloor lceil det gcd lcm max min implies iff "
    "Rightarrow Leftrightarrow cdots ldots overline vec angle triangle circ mid nmid "
    "subset subseteq cup cap in notin"
).split()
# Matches only the backslash (the name is a look-ahead), so substituting _TEX_MARK for it keeps
# every offset.
_TEX_BACKSLASH = re.compile(rf"\\(?=(?:{_by_first_letter(_TEX_COMMANDS)})(?![A-Za-z]))".encode())

# Cue phrases, matched on a lower-cased view where whitespace, "(", '"', "*" and "\" all became
# a blank, at the start of a word (after that blank). Each starts with a literal letter; the
# order within a kind does not matter, the order of the kinds does where two cues start at the
# same place (reflection first, filler and summary last). A right single quote (U+2019) is a
# "?" in the byte view, so apostrophes are written ['?].
_APOS = "['?]"
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
        r"case *(?:[0-9]+|[ivx]+\b|[a-d]\b)",
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
        r"if\b[^.!?]{1,120}?\bthen\b",
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
    # the closing summary (\boxed too: the backslash became a blank)
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
_CUE_CAPS = (2, 2, 2, 3, 3, 2, 1)  # at most this many cues of each kind count in one step

# The lower-cased, blank-normalised view for the cue scan.
_BLANKED = b"\t\n\r\f\v(\"*\\"
_CUE_VIEW = bytes.maketrans(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZ" + _BLANKED, b"abcdefghijklmnopqrstuvwxyz" + b" " * len(_BLANKED)
)

# One regex for every cue: no capturing groups (they make sre slow), a literal blank first (so
# sre only tries word starts) and grouped by first letter (so it tries few alternatives at
# each). The kind of a match is found afterwards, by _cue_kind.
_CUE_SCAN = re.compile(
    f" (?:{_by_first_letter([p for kind in _CUE_KINDS for p in _CUE_PATTERNS[kind]])})".encode()
)
_CUE_CLASSIFY = [re.compile("|".join(_CUE_PATTERNS[kind]).encode()) for kind in _CUE_KINDS]
_CUE_KIND_CACHE: dict[bytes, int] = {}

# Content tokens of the lower-cased view: words of four letters or more, and numbers.
_WORD = re.compile(rb"[0-9a-z](?:(?<=[a-z])[a-z]{3,}|(?<=[0-9])[0-9]*)")

# Feature names, as written in reasons (ties are broken in this order).
_FEATURE_NAMES = (
    "reflection cue",
    "re-computation after reflection",
    "dense computation",
    "LaTeX operators",
    "chained equalities",
    "case analysis",
    "multi-step manipulation",
)
_NEG_POSITIONS = tuple(range(0, -len(_FEATURE_NAMES), -1))
_REASON_MIN = 0.5
_REASON_MAX_FEATURES = 3


def _cue_kind(cue: bytes) -> int:
    """Index of the first kind whose patterns match the whole cue (after its leading blank):
    the kind the scan chose, since the scan tries the kinds in the same order."""
    kind = _CUE_KIND_CACHE.get(cue)
    if kind is None:
        kind = next(i for i, p in enumerate(_CUE_CLASSIFY) if p.fullmatch(cue, 1))
        if len(_CUE_KIND_CACHE) > 100_000:
            _CUE_KIND_CACHE.clear()
        _CUE_KIND_CACHE[cue] = kind
    return kind


def _tokens(low: bytes, start: int, end: int) -> frozenset[bytes]:
    """The distinct content tokens of low[start:end]."""
    return frozenset(_WORD.findall(low, start, end))


def _byte_view(text: str) -> bytes:
    """One byte per code point: Latin-1 as is, anything else "?" (offsets are unchanged)."""
    return text.encode("latin-1", "replace")


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


def _segment(text: str, lo: int, hi: int, max_chars: int, min_chars: int) -> tuple[list[int], list[int], bytearray]:
    """Cut text[lo:hi] into steps. Returns their starts, ends and `link` (link[i] = 1 when
    step i may join step i-1 in a span: only whitespace lies between them).

    Steps never contain a think tag and never start or end on whitespace. A piece longer than
    max_chars is cut at whitespace (a single token longer than that stays whole and is never
    chosen); pieces shorter than min_chars join the next piece (or the previous one)."""
    # Stray tags inside the thinking part are barriers.
    regions = []
    pos = lo
    if text.find(THINK_OPEN, lo, hi) >= 0 or text.find(THINK_CLOSE, lo, hi) >= 0:
        for m in _TAG.finditer(text, lo, hi):
            regions.append((pos, m.start()))
            pos = m.end()
    regions.append((pos, hi))

    # Atomic pieces: display-math blocks and sentences.
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
    n = len(pieces)
    ps = [p[0] for p in pieces]
    pe = [p[1] for p in pieces]
    brk = bytearray(n + 1)
    for k in barriers:
        brk[k] = 1

    # Oversized pieces are cut at whitespace into chunks of at most max_chars.
    if n and max(map(sub, pe, ps)) > max_chars:
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
        ps, pe, n = ps2, pe2, len(ps2)
        brk = brk2 + b"\x00"

    # Short pieces join their neighbours: the next pieces of the same paragraph first (so
    # "Wait." goes with the re-computation after it), else the previous step of the same
    # paragraph, else across a paragraph break (a blank line), next first.
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
    return starts, ends, link


def _score_steps(
    text: str,
    view: bytes,
    lo: int,
    hi: int,
    starts: list[int],
    ends: list[int],
    link: bytearray,
    min_chars: int,
    problem_tokens: frozenset[bytes] | None,
) -> tuple[list[float], list[list[float]]]:
    """Score every step. Returns the scores and, for each feature of _FEATURE_NAMES, the list
    of every step's (factor-weighted) contribution, from which the reasons are written."""
    n = len(starts)
    zero = [0.0] * n
    spans = list(zip(starts, ends))

    # Computation: classify every character in C, then three counts per step.
    marked = _TEX_BACKSLASH.sub(_TEX_MARK, view).replace(b"^{", b"^\x03").replace(b"_{", b"_\x03")
    classes: bytes | bytearray = marked.translate(_CLASS)
    if view.count(63) != text.count("?"):  # characters beyond Latin-1: add their operators
        classes = bytearray(classes)
        for m in _UNICODE_OPS.finditer(text, lo, hi):
            classes[m.start()] = 1
    count = classes.count
    n_ops = [count(1, s, e) for s, e in spans]
    n_eq = [count(2, s, e) for s, e in spans]
    n_tex = [count(3, s, e) for s, e in spans]
    floor = DENSITY_FLOOR
    norms = [e - s if e - s > floor else floor for s, e in spans]
    f_dense = [W_DENSE * (a + q) / m for a, q, m in zip(n_ops, n_eq, norms)]
    f_tex = [W_TEX * x / m for x, m in zip(n_tex, norms)]
    f_chain = [W_CHAIN * (q - 1 if q < 5 else 4) if q > 1 else 0.0 for q in n_eq]
    scores = [a + b + c for a, b, c in zip(f_dense, f_tex, f_chain)]

    # Cues: one scan over the lower-cased view of the thinking part, padded with a blank so that
    # a cue at its very start has one too (then match.start() is the cue's offset from lo).
    low = b" " + view[lo:hi].translate(_CUE_VIEW)
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

    f_reflect = zero.copy()
    f_context = zero.copy()
    f_case = zero.copy()
    f_manip = zero.copy()
    factors: dict[int, float] = {}
    strong: set[int] = set()  # steps with a strong reflection cue: never filler or restatement
    for i, counts in cues.items():
        rs, rw, case, man, con, fil, summ = map(min, counts, _CUE_CAPS)
        reflect = W_REFLECT_STRONG * rs + W_REFLECT_WEAK * rw
        f_reflect[i] = reflect
        f_case[i] = W_CASE * case
        f_manip[i] = W_MANIP * man + W_CONNECT * con
        scores[i] += reflect + f_case[i] + f_manip[i]
        if reflect:
            j = i + 1  # context: the next step re-computes right after the reflection
            if j < n and link[j] and f_dense[j] + f_tex[j] >= CONTEXT_MIN_COMP:
                f_context[j] = W_CONTEXT
                scores[j] += W_CONTEXT
        if rs:
            strong.add(i)
        elif fil or summ:  # "Hmm, let me think" is still filler
            factors[i] = (FILLER_FACTOR if fil else 1.0) * (SUMMARY_FACTOR if summ else 1.0)

    # Restatement: early steps that mostly use the problem's own words.
    if problem_tokens:
        window = max(int((hi - lo) * RESTATE_WINDOW[0]), RESTATE_WINDOW[1])
        for i in range(bisect_right(starts, lo + window)):
            if i in strong:
                continue
            toks = _tokens(low, starts[i] - lo + 1, ends[i] - lo + 1)
            if len(toks) >= RESTATE_MIN_TOKENS and len(toks & problem_tokens) >= RESTATE_SHARE * len(toks):
                factors[i] = factors.get(i, 1.0) * RESTATE_FACTOR

    features = [f_reflect, f_context, f_dense, f_tex, f_chain, f_case, f_manip]
    for i, factor in factors.items():
        scores[i] *= factor
        for values in features:
            values[i] *= factor
    # Steps shorter than min_chars (only in a thinking part that short) are never chosen.
    if min(map(sub, ends, starts)) < min_chars:
        for i, (s, e) in enumerate(spans):
            if e - s < min_chars:
                scores[i] = 0.0
    return scores, features


def _reason(features: list[list[float]], first: int, last: int) -> str:
    """Name the features that made steps first..last hard: each feature's strongest
    contribution in the span (so long spans do not list everything), the top three from
    _REASON_MIN up, ties in the order of _FEATURE_NAMES."""
    best = [max(values[first : last + 1]) for values in features]
    ranked = sorted(zip(best, _NEG_POSITIONS), reverse=True)
    names = [_FEATURE_NAMES[-j] for v, j in ranked[:_REASON_MAX_FEATURES] if v >= _REASON_MIN]
    if not names:
        names = [_FEATURE_NAMES[-ranked[0][1]]]
    return "; ".join(names)


def select_spans(
    text: str,
    target_coverage: float,
    *,
    max_span_chars: int = 1200,
    min_span_chars: int = 40,
    problem: str | None = None,
) -> list[tuple[int, int, str]]:
    """Sorted, non-overlapping (start, end, reason) spans of `text`, inside its thinking part,
    covering about `target_coverage` of all its characters (end exclusive, code points).

    `problem`, when given, lets steps that mostly repeat the problem's words score low.
    Deterministic: the same arguments always give the same spans.
    """
    if isinstance(target_coverage, bool) or not isinstance(target_coverage, (int, float)):
        raise ValueError(f"target_coverage must be a number in [0, 1], got {target_coverage!r}")
    if math.isnan(target_coverage) or not 0.0 <= target_coverage <= 1.0:
        raise ValueError(f"target_coverage must be in [0, 1], got {target_coverage}")
    target = target_coverage * len(text)
    lo, hi = _think_bounds(text)
    if target <= 0 or hi - lo < min_span_chars:
        return []
    starts, ends, link = _segment(text, lo, hi, max_span_chars, min_span_chars)
    n = len(starts)
    if not n:
        return []
    view = _byte_view(text)
    problem_tokens = _tokens(_byte_view(problem).translate(_CUE_VIEW), 0, len(problem)) if problem else None
    scores, features = _score_steps(text, view, lo, hi, starts, ends, link, min_span_chars, problem_tokens)

    # Greedy: best score first (sorted is stable, so ties go by position). A chosen step joins
    # its chosen neighbours (only whitespace between) while the span stays within the cap;
    # otherwise it starts a span of its own. A step that would overshoot the target is taken
    # only if it brings the coverage closer to the target and, in a first pass, keeps it
    # within OVERSHOOT of it; a second pass, when the first falls short (every remaining step
    # is too long), drops that last condition.
    order = sorted(range(n), key=scores.__getitem__, reverse=True)
    chosen = bytearray(n)
    joined = bytearray(n)  # joined[i]: step i is in the same span as step i-1
    run_lo = list(range(n))  # at the last step of a span: its first step
    run_hi = list(range(n))  # at the first step of a span: its last step
    upper = target * (1.0 + OVERSHOOT)
    covered = 0
    for closest in (False, True):
        for i in order:
            if scores[i] <= 0.0:
                break  # the rest score no better: featureless steps are never chosen
            if chosen[i] or ends[i] - starts[i] > max_span_chars:
                continue  # (a single unbreakable token longer than the cap)
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
            if new_covered > target and (
                new_covered - target >= target - covered or (new_covered > upper and not closest)
            ):
                continue  # overshoots by more than it helps (or, in the first pass, too far)
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
    """Rule-based judge: offline, deterministic, free; the default judge."""

    concurrent = False
    samples_differ = False  # the same rules give the same spans every time

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
        # There is no prompt: the hash covers the rules version and the parameters instead.
        blob = json.dumps({"rules": RULES_VERSION, "params": self.params}, sort_keys=True)
        return JudgeInfo(
            name=self.name,
            backend="heuristic",
            model=RULES_VERSION,
            prompt_hash=hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16],
            params=self.params,
        )

    def select_spans(self, text: str, target_coverage: float, problem: str | None = None) -> list[tuple[int, int, str]]:
        """The synchronous core (for benchmarks): (start, end, reason) spans of `text`."""
        return select_spans(
            text,
            target_coverage,
            max_span_chars=self.max_span_chars,
            min_span_chars=self.min_span_chars,
            problem=problem,
        )

    async def judge(self, trace: Trace, target_coverage: float, sample: int = 0) -> Verdict:
        text = trace.text
        spans = self.select_spans(text, target_coverage, problem=trace.problem)
        excerpts = [Excerpt(text=text[s:e], reason=reason, start=s) for s, e, reason in spans]
        return Verdict(excerpts=excerpts, usage=Usage(), requests=0, cache_hits=0)
