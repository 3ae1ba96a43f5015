"""The heuristic judge's rules: the features that make a step hard, and their weights.

Each step of the thinking part (judges/steps.py) is scored from a few documented features
(computation density, LaTeX operators, chained equalities, case analysis, multi-step
manipulation words, reflection / backtracking cues); filler, restatement and the closing summary
score low. docs/heuristic_judge.md explains every rule and weight.

Speed: pure Python + precompiled ``re``, no per-character Python loop. Per trace a few regex
scans over the thinking part, and counts per step in C over a one-byte-per-character view of the
text (``str.encode("latin-1", "replace")`` keeps code-point offsets: every character outside
Latin-1 becomes one "?"), then a loop in Python over the steps only.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from operator import sub

from pydantic import BaseModel, ConfigDict, Field

from splitreason.judges.steps import Steps

__all__ = ["HeuristicSettings", "byte_view", "problem_tokens", "reason_for", "score_steps"]


class HeuristicSettings(BaseModel):
    """Every parameter of the heuristic judge, in one place. The span sizes may be set per judge;
    the weights are the rule set named by `RULES_VERSION` (bump it when one changes)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_span_chars: int = Field(1200, ge=1, description="Longest span; longer steps are cut at whitespace.")
    min_span_chars: int = Field(40, ge=1, description="Shorter steps join their neighbours.")
    dense: float = Field(6.0, description="Per computation character, divided by max(step length, density_floor).")
    tex: float = Field(20.0, description="Per LaTeX operator, same normalisation.")
    density_floor: int = Field(80, description="A short step is not dense just because it is short.")
    chain: float = Field(0.5, description="Per '=' beyond the first, at most 4 of them.")
    reflect_strong: float = Field(1.5, description="'Wait', 'I made a mistake', 'that contradicts', 'let me double-check'.")
    reflect_weak: float = Field(0.75, description="'Hmm', 'actually', 'alternatively', 'let me check'.")
    case: float = Field(1.0, description="'Case 1', 'if ... then', 'suppose', 'otherwise'.")
    manipulation: float = Field(0.6, description="'substitute', 'expand', 'factor', 'simplify', 'solve', 'compute'.")
    connector: float = Field(0.25, description="'so', 'then', 'therefore', 'thus', 'hence'.")
    context: float = Field(1.0, description="The step right after a reflection cue that re-computes ...")
    context_min_computation: float = Field(1.0, description="... i.e. its computation score is at least this.")
    filler_factor: float = Field(0.4, description="'Okay, so', 'Let me think', 'the problem says', unless a strong cue.")
    summary_factor: float = Field(0.5, description="'the answer is', \\boxed, 'in conclusion', unless a strong cue.")
    overshoot: float = Field(0.1, description="The selection's first pass stays within target x (1 + overshoot).")
    restate_factor: float = Field(0.35, description="Mostly the problem's own words, early in the thinking.")
    restate_min_tokens: int = Field(6, description="Distinct content tokens a restated step has at least.")
    restate_share: float = Field(0.6, description="Share of them found in the problem.")
    restate_window_share: float = Field(0.1, description="Restatements are looked for in the first max(this share,")
    restate_window_chars: int = Field(1500, description="... this many characters) of the thinking part.")

    def model_post_init(self, _context) -> None:
        if self.max_span_chars < self.min_span_chars:
            raise ValueError(f"max_span_chars ({self.max_span_chars}) must be at least min_span_chars "
                             f"({self.min_span_chars})")


DEFAULTS = HeuristicSettings()

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


def byte_view(text: str) -> bytes:
    """One byte per code point: Latin-1 as is, anything else "?" (offsets are unchanged)."""
    return text.encode("latin-1", "replace")


def score_steps(
    text: str,
    view: bytes,
    lo: int,
    hi: int,
    steps: Steps,
    settings: HeuristicSettings,
    problem_tokens: frozenset[bytes] | None,
) -> tuple[list[float], list[list[float]]]:
    """Score every step. Returns the scores and, for each feature of _FEATURE_NAMES, the list
    of every step's (factor-weighted) contribution, from which the reasons are written."""
    starts, ends = steps.starts, steps.ends
    s = settings
    spans = list(zip(starts, ends))
    f_dense, f_tex, f_chain = _computation(text, view, lo, hi, spans, s)
    scores = [a + b + c for a, b, c in zip(f_dense, f_tex, f_chain)]
    # A blank before the lower-cased thinking part, so that a cue at its very start has one too.
    low = b" " + view[lo:hi].translate(_CUE_VIEW)
    cues = _cue_counts(low, lo, starts, ends)
    f_reflect, f_context, f_case, f_manip, factors, strong = _cue_features(cues, steps, f_dense, f_tex, scores, s)
    if problem_tokens:
        _restatement(factors, strong, low, lo, hi, starts, ends, problem_tokens, s)

    features = [f_reflect, f_context, f_dense, f_tex, f_chain, f_case, f_manip]
    for i, factor in factors.items():
        scores[i] *= factor
        for values in features:
            values[i] *= factor
    # Steps shorter than min_span_chars (only in a thinking part that short) are never chosen.
    if min(map(sub, ends, starts)) < s.min_span_chars:
        for i, (start, end) in enumerate(spans):
            if end - start < s.min_span_chars:
                scores[i] = 0.0
    return scores, features


def _computation(text: str, view: bytes, lo: int, hi: int, spans: list[tuple[int, int]],
                 s: HeuristicSettings) -> tuple[list[float], list[float], list[float]]:
    """Dense operators, TeX and chained equalities per step: every character classified in C, then
    three counts per step."""
    marked = _TEX_BACKSLASH.sub(_TEX_MARK, view).replace(b"^{", b"^\x03").replace(b"_{", b"_\x03")
    classes: bytes | bytearray = marked.translate(_CLASS)
    if view.count(63) != text.count("?"):  # characters beyond Latin-1: add their operators
        classes = bytearray(classes)
        for m in _UNICODE_OPS.finditer(text, lo, hi):
            classes[m.start()] = 1
    count = classes.count
    n_ops = [count(1, start, end) for start, end in spans]
    n_eq = [count(2, start, end) for start, end in spans]
    n_tex = [count(3, start, end) for start, end in spans]
    floor = s.density_floor
    norms = [end - start if end - start > floor else floor for start, end in spans]
    f_dense = [s.dense * (a + q) / m for a, q, m in zip(n_ops, n_eq, norms)]
    f_tex = [s.tex * x / m for x, m in zip(n_tex, norms)]
    f_chain = [s.chain * (q - 1 if q < 5 else 4) if q > 1 else 0.0 for q in n_eq]
    return f_dense, f_tex, f_chain


def _cue_counts(low: bytes, lo: int, starts: list[int], ends: list[int]) -> dict[int, list[int]]:
    """Cue counts per kind, for each step holding a cue: one scan over `low` (the thinking part,
    lower-cased, after one blank: match.start() is the cue's offset from lo)."""
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
    return cues


def _cue_features(cues: dict[int, list[int]], steps: Steps, f_dense: list[float], f_tex: list[float],
                  scores: list[float], s: HeuristicSettings):
    """Reflection, context after a reflection, case analysis and manipulation, added to `scores`;
    the factors of filler and summary steps; the steps with a strong reflection cue."""
    n = len(scores)
    link = steps.link
    f_reflect, f_context, f_case, f_manip = [0.0] * n, [0.0] * n, [0.0] * n, [0.0] * n
    factors: dict[int, float] = {}
    strong: set[int] = set()  # steps with a strong reflection cue: never filler or restatement
    for i, counts in cues.items():
        rs, rw, case, man, con, fil, summ = map(min, counts, _CUE_CAPS)
        reflect = s.reflect_strong * rs + s.reflect_weak * rw
        f_reflect[i] = reflect
        f_case[i] = s.case * case
        f_manip[i] = s.manipulation * man + s.connector * con
        scores[i] += reflect + f_case[i] + f_manip[i]
        if reflect:
            j = i + 1  # context: the next step re-computes right after the reflection
            if j < n and link[j] and f_dense[j] + f_tex[j] >= s.context_min_computation:
                f_context[j] = s.context
                scores[j] += s.context
        if rs:
            strong.add(i)
        elif fil or summ:  # "Hmm, let me think" is still filler
            factors[i] = (s.filler_factor if fil else 1.0) * (s.summary_factor if summ else 1.0)
    return f_reflect, f_context, f_case, f_manip, factors, strong


def _restatement(factors: dict[int, float], strong: set[int], low: bytes, lo: int, hi: int, starts: list[int],
                 ends: list[int], problem_tokens: frozenset[bytes], s: HeuristicSettings) -> None:
    """Early steps that mostly use the problem's own words get the restatement factor."""
    window = max(int((hi - lo) * s.restate_window_share), s.restate_window_chars)
    for i in range(bisect_right(starts, lo + window)):
        if i in strong:
            continue
        toks = _tokens(low, starts[i] - lo + 1, ends[i] - lo + 1)
        if len(toks) >= s.restate_min_tokens and len(toks & problem_tokens) >= s.restate_share * len(toks):
            factors[i] = factors.get(i, 1.0) * s.restate_factor


def reason_for(features: list[list[float]], first: int, last: int) -> str:
    """Name the features that made steps first..last hard: each feature's strongest
    contribution in the span (so long spans do not list everything), the top three from
    _REASON_MIN up, ties in the order of _FEATURE_NAMES."""
    best = [max(values[first : last + 1]) for values in features]
    ranked = sorted(zip(best, _NEG_POSITIONS), reverse=True)
    names = [_FEATURE_NAMES[-j] for v, j in ranked[:_REASON_MAX_FEATURES] if v >= _REASON_MIN]
    if not names:
        names = [_FEATURE_NAMES[-ranked[0][1]]]
    return "; ".join(names)


def problem_tokens(problem: str | None) -> frozenset[bytes] | None:
    """The problem's content tokens, for recognising restatements (None without a problem)."""
    return _tokens(byte_view(problem).translate(_CUE_VIEW), 0, len(problem)) if problem else None
