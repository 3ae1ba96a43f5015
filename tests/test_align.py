"""Aligning a judge's quotes back onto the trace: exact, normalized, bounded fuzzy."""

from __future__ import annotations

import random
import time

import pytest
from rapidfuzz import fuzz

from splitreason.annotator import align as align_module
from splitreason.annotator.align import MIN_FUZZY_CHARS, NORMALIZED_SCORE, Aligner, Alignment, normalize
from splitreason.annotator.spans import snap_to_boundaries
from splitreason.judges.base import Excerpt
from splitreason.schemas import Span

TRACE = (
    "<think>\n"
    "Okay, so I need to find the smallest positive integer $n$ such that $n^2 + 3n + 2$ is "
    "divisible by $12$.\n\n"
    "Let me factor: $n^2 + 3n + 2 = (n + 1)(n + 2)$. Two consecutive integers, so one of them is "
    "even. We need a factor of $4$ and a factor of $3$.\n\n"
    "Wait — that’s not quite right. Let’s check $n = 2$: $\\frac{(2+1)(2+2)}{12} = \\frac{12}{12} = 1$. "
    "So $n = 2$ works.\n\n"
    "Hmm, but is there a smaller one? For $n = 1$ we get $6$, not divisible by $12$. "
    "So the answer is $2$.\n"
    "</think>\n\n"
    "The answer is $\\boxed{2}$."
)


def _iou(a: tuple[int, int], b: tuple[int, int]) -> float:
    overlap = max(0, min(a[1], b[1]) - max(a[0], b[0]))
    return overlap / (max(a[1], b[1]) - min(a[0], b[0]))


# ---------------------------------------------------------------------------- stage 1: exact


def test_exact_match_offsets_and_score():
    quote = "Let me factor: $n^2 + 3n + 2 = (n + 1)(n + 2)$."
    result = Aligner(TRACE).align(quote)
    assert result == Alignment(TRACE.index(quote), TRACE.index(quote) + len(quote), 1.0, "exact")
    assert TRACE[result.start : result.end] == quote


def test_exact_match_ignores_surrounding_whitespace_of_the_quote():
    quote = "So $n = 2$ works."
    result = Aligner(TRACE).align(f"  \n{quote}\n ")
    assert result is not None and result.match == "exact"
    assert TRACE[result.start : result.end] == quote


def test_repeated_quote_takes_first_occurrence_without_hint():
    text = "alpha beta gamma. The same sentence here. delta. The same sentence here. end"
    first = text.index("The same sentence here.")
    second = text.index("The same sentence here.", first + 1)
    aligner = Aligner(text)
    assert aligner.align("The same sentence here.").start == first
    assert aligner.align("The same sentence here.", hint=second).start == second
    assert aligner.align("The same sentence here.", hint=second - 5).start == second  # nearest
    assert aligner.align("The same sentence here.", hint=first + 3).start == first


def test_empty_quote_is_none():
    aligner = Aligner(TRACE)
    assert aligner.align("") is None
    assert aligner.align(" \n\t ") is None


def test_empty_trace():
    assert Aligner("").align("anything at all here") is None


# ---------------------------------------------------------------------------- stage 2: normalized


@pytest.mark.parametrize(
    "quote",
    [
        # whitespace reflowed (newlines to spaces, doubled spaces)
        "is divisible by $12$. Let me   factor: $n^2 + 3n + 2 = (n + 1)(n + 2)$.",
        # spaces around LaTeX delimiters and operators
        "Let me factor: $ n^2+3n+2=(n+1)(n+2) $.",
        # typographic quotes and dashes made ASCII
        "Wait - that's not quite right. Let's check $n = 2$",
        # over-escaped backslashes (JSON "\\\\frac" decoded once too few)
        "$\\\\frac{(2+1)(2+2)}{12} = \\\\frac{12}{12} = 1$",
    ],
)
def test_normalized_match_maps_back_to_original_offsets(quote):
    result = Aligner(TRACE).align(quote)
    assert result is not None
    assert result.match == "normalized" and result.score == NORMALIZED_SCORE
    region = TRACE[result.start : result.end]
    assert normalize(region) == normalize(quote)
    assert region == region.strip()  # never leading/trailing whitespace
    # covers exactly the matched characters: one fewer at either end no longer matches
    assert normalize(TRACE[result.start + 1 : result.end]) != normalize(quote)
    assert normalize(TRACE[result.start : result.end - 1]) != normalize(quote)


def test_normalized_match_covers_exactly_the_matched_characters():
    text = "Intro.   Then  $ x = 1 $ and\n\n  the  rest.  Outro."
    result = Aligner(text).align("Then $x=1$ and the rest.")
    assert (result.start, result.end) == (text.index("Then"), text.index("rest.") + len("rest."))


def test_normalized_match_at_trace_edges():
    text = "  first  words here  "
    result = Aligner(text).align("first words here")
    assert text[result.start : result.end] == "first  words here"
    result = Aligner("a\\\\b").align("a\\b")  # a collapsed backslash run at the end of a match
    assert (result.start, result.end) == (0, 4)


def test_normalized_repeated_occurrence_with_hint():
    text = "x. Let  us   compute $a+b$. y. Let us compute $a + b$. z."
    aligner = Aligner(text)
    first = aligner.align("Let us compute $a+b$ .")
    assert first.match == "normalized" and first.start == text.index("Let")
    second_at = text.index("Let", first.start + 1)
    second = aligner.align("Let us compute $a+b$ .", hint=second_at)
    assert second.start == second_at and text[second.start : second.end] == "Let us compute $a + b$."


def test_normalize_rules():
    assert normalize("  a \n\t b  ") == "ab"
    assert normalize("it’s “so” — x – y − z") == "it's\"so\"-x-y-z"
    # every run of backslashes reads as one, also across removed whitespace
    assert normalize("\\\\frac{1}{2} \\\\ \\alpha") == "\\frac{1}{2}\\alpha"
    assert normalize("a\u200bb\u00a0c\u3000d") == "abcd"


def _reference_view(text: str) -> tuple[str, list[int], list[int]]:
    """The normalized view written as the plain loop it is meant to be (the aligner builds it with numpy)."""
    chars: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    invisible = set(align_module._INVISIBLE)
    for i, char in enumerate(text):
        if char.isspace() or char in invisible:
            continue
        char = align_module._TRANSLATION.get(char, char)
        if char == "\\" and chars and chars[-1] == "\\":
            ends[-1] = i + 1
            continue
        chars.append(char)
        starts.append(i)
        ends.append(i + 1)
    return "".join(chars), starts, ends


@pytest.mark.parametrize("seed", range(5))
def test_normalized_view_numpy_and_python_agree(seed):
    rng = random.Random(seed)
    alphabet = list("ab \n\t\\$’—“\u200b\u00a0𝑥{}=\u3000\x1c")
    for _ in range(400):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        views = [_reference_view(text), align_module._normalized_view(text)]
        for norm, starts, ends in views:
            assert norm == normalize(text)
            assert list(starts) == list(views[0][1]) and list(ends) == list(views[0][2])
            for i, char in enumerate(norm):
                assert normalize(text[starts[i] : ends[i]]) == char


def test_a_normalized_match_maps_back_to_the_trace():
    result = Aligner(TRACE).align("Wait - that's not quite right.")
    assert result.match == "normalized" and TRACE[result.start : result.end] == "Wait — that’s not quite right."


# ---------------------------------------------------------------------------- stage 3: fuzzy


def test_fuzzy_match_with_typos():
    truth = "Let me factor: $n^2 + 3n + 2 = (n + 1)(n + 2)$. Two consecutive integers, so one of them is even."
    quote = "Let me factr: $n^2 + 3n + 2 = (n + 1)(n + 2)$. Two consecutive integers, thus one of them is evn."
    result = Aligner(TRACE).align(quote)
    assert result is not None and result.match == "fuzzy"
    start = TRACE.index(truth)
    assert _iou((result.start, result.end), (start, start + len(truth))) >= 0.95
    assert 0.85 <= result.score < 1.0
    region = TRACE[result.start : result.end]
    assert result.score == pytest.approx(fuzz.ratio(normalize(quote), normalize(region)) / 100)
    assert region == region.strip()


def test_fuzzy_boundaries_are_exact_when_only_the_middle_differs():
    truth = "Hmm, but is there a smaller one? For $n = 1$ we get $6$, not divisible by $12$."
    quote = "Hmm, but is there a smaler one? For $n = 1$ we gt $6$, not divisible by $12$."
    result = Aligner(TRACE).align(quote)
    assert result.match == "fuzzy"
    assert TRACE[result.start : result.end] == truth


@pytest.mark.parametrize(
    "quote",
    [
        "Hnm, but is there a smaller one? For $n = 1$ we get $6$, not divisible by $12$.",  # typo at the head
        "Hmm, but is there a smaller one? For $n = 1$ we get $6$, not divisible bu $12$.",  # typo near the tail
    ],
)
def test_fuzzy_typos_near_the_ends_keep_exact_boundaries(quote):
    truth = "Hmm, but is there a smaller one? For $n = 1$ we get $6$, not divisible by $12$."
    result = Aligner(TRACE).align(quote)
    assert result.match == "fuzzy" and TRACE[result.start : result.end] == truth


def test_fuzzy_typo_in_the_first_character_is_restored_by_snapping():
    quote = "Xmm, but is there a smaller one? For $n = 1$ we get $6$, not divisible by $12$."
    result = Aligner(TRACE).align(quote)
    assert TRACE[result.start : result.end].startswith("mm, but")  # the mismatched "H" is left out
    start, end = snap_to_boundaries(TRACE, result.start, result.end)
    assert TRACE[start:end].startswith("Hmm, but")


def test_hallucinated_quote_is_none_and_reports_best_score():
    aligner = Aligner(TRACE)
    assert aligner.align("By the Chinese remainder theorem the answer must be 17, since 17 is prime.") is None
    # near the threshold but below it: still never forced in
    close = "Let me factor the quadratic polynomial completely into linear terms now, as (n+7)(n+9)."
    assert aligner.align(close) is None
    assert 0.0 <= aligner.last_miss_score < 0.85


def test_fuzzy_threshold_is_respected():
    quote = "Let me factr: $n^2 + 3n + 2 = (n + 1)(n + 2)$. Two consecutive integers, thus one of them is evn."
    found = Aligner(TRACE).align(quote)
    assert Aligner(TRACE, fuzzy_threshold=min(1.0, found.score + 0.01)).align(quote) is None
    with pytest.raises(ValueError):
        Aligner(TRACE, fuzzy_threshold=0.0)


def test_short_quotes_must_match_exactly_or_normalized():
    aligner = Aligner(TRACE)
    assert aligner.align("$n = 2$").match == "exact"
    assert aligner.align("$n=2$").match == "normalized"
    short_typo = "smalest one"  # 10 normalized characters < MIN_FUZZY_CHARS
    assert len(normalize(short_typo)) < MIN_FUZZY_CHARS
    assert aligner.align(short_typo) is None


def test_quote_longer_than_trace_or_window_is_not_fuzzy_matched():
    text = "A short trace about $x^2$ and nothing else."
    assert Aligner(text).align(text + " And then a lot more text that is not in the trace at all.") is None
    quote = "Let me factr: $n^2 + 3n + 2 = (n + 1)(n + 2)$. Two consecutive integers, thus one of them is evn."
    assert Aligner(TRACE, max_fuzzy_window=40).align(quote) is None
    assert Aligner(TRACE, max_fuzzy_window=40).align("Let me factor: $n^2 + 3n + 2 = (n + 1)(n + 2)$.").match == "exact"


def test_fuzzy_repeated_occurrence_prefers_hint_on_ties():
    block = "We now compute the discriminant $b^2 - 4ac$ of the quadratic and check its sign. "
    text = "Intro. " + "Some other words in between. ".join([block] * 6) + "Outro."
    copies = [i for i in range(len(text)) if text.startswith(block, i)]
    assert len(copies) == 6
    quote = "We now compute the discriminant $b^2 - 4ac$ of the quadratc and chek its sign."
    aligner = Aligner(text)
    assert aligner.align(quote).start == copies[0]
    for copy in copies:
        assert aligner.align(quote, hint=copy).start == copy
        assert aligner.align_excerpt(Excerpt(text=quote, start=copy + 3)).start == copy


# ---------------------------------------------------------------------------- outside the BMP


def test_characters_outside_the_bmp_count_as_one_code_point():
    text = "Let 𝑥 be real and 𝑦 = 2𝑥. 𝔼[𝑥] = 0 so the variance is 𝔼[𝑥²] = 1 for the whole 𝑥 range."
    aligner = Aligner(text)
    exact = aligner.align("𝔼[𝑥] = 0 so")
    assert text[exact.start : exact.end] == "𝔼[𝑥] = 0 so" and exact.start == text.index("𝔼[𝑥]")
    normalized = aligner.align("𝔼[𝑥]=0  so the  variance")
    assert normalized.match == "normalized"
    assert text[normalized.start : normalized.end] == "𝔼[𝑥] = 0 so the variance"
    fuzzy_result = aligner.align("so the varianse is 𝔼[𝑥²] = 1 for the whol 𝑥 range.")
    assert fuzzy_result.match == "fuzzy"
    assert text[fuzzy_result.start : fuzzy_result.end] == "so the variance is 𝔼[𝑥²] = 1 for the whole 𝑥 range."


# ---------------------------------------------------------------------------- align_excerpt


def test_align_excerpt_uses_the_repaired_latex_reading():
    # JSON decoded "\frac" as a form feed + "rac"; the judge's parser offers the repaired reading.
    broken = "$\frac{(2+1)(2+2)}{12} = \frac{12}{12} = 1$"
    assert "\f" in broken
    repaired = "$\\frac{(2+1)(2+2)}{12} = \\frac{12}{12} = 1$"
    aligner = Aligner(TRACE)
    result = aligner.align_excerpt(Excerpt(text=broken, alternatives=(repaired,)))
    assert result.match == "exact"
    assert TRACE[result.start : result.end] == repaired


def test_align_excerpt_prefers_a_better_kind_over_reading_order():
    broken = "Let me f\x0cactor: $n^2 + 3n + 2 = (n + 1)(n + 2)$. Two consecutive integers"
    spaced = "Let me factor: $ n^2 + 3n + 2 = (n+1)(n+2) $. Two consecutive integers"
    result = Aligner(TRACE).align_excerpt(Excerpt(text=broken, alternatives=(spaced,)))
    assert result.match == "normalized"


def test_align_excerpt_uses_start_as_hint():
    text = "one. Same words again here. two. Same words again here. three."
    second = text.index("Same", text.index("Same") + 1)
    result = Aligner(text).align_excerpt(Excerpt(text="Same words again here.", start=second))
    assert result.start == second and result.match == "exact"


def test_align_excerpt_falls_back_to_fuzzy_and_to_none():
    aligner = Aligner(TRACE)
    quote = "Let me factr: $n^2 + 3n + 2 = (n + 1)(n + 2)$. Two consecutive integers, thus one of them is evn."
    assert aligner.align_excerpt(Excerpt(text=quote, alternatives=("nothing like it",))).match == "fuzzy"
    assert aligner.last_miss_score == 0.0
    assert aligner.align_excerpt(Excerpt(text="A totally invented sentence about primes.")) is None
    # shares a stretch with the trace, so a candidate region is scored, but far below threshold
    assert aligner.align_excerpt(Excerpt(text="Let me factor: $n^2 + 3n + 2$ into primes by brute force, slowly.")) is None
    assert 0.0 < aligner.last_miss_score < 0.85


def test_alignment_feeds_a_valid_span_after_snapping():
    quote = "ctor: $n^2 + 3n + 2 = (n + 1)(n +"  # cut mid-word and mid-formula by the judge
    result = Aligner(TRACE).align(quote)
    start, end = snap_to_boundaries(TRACE, result.start, result.end)
    span = Span(start=start, end=end, text=TRACE[start:end], score=result.score, match=result.match)
    assert span.text == "factor: $n^2 + 3n + 2 = (n + 1)(n +"


def test_random_quotes_keep_the_invariants():
    rng = random.Random(11)
    text = _synthetic_trace(8_000, rng).replace("x", "𝑥").replace(" ", "\u00a0 ", 30)
    aligner = Aligner(text)
    kinds = set()
    for _ in range(300):
        length = rng.randint(1, 400)
        start = rng.randrange(0, len(text) - length)
        quote = text[start : start + length]
        if rng.random() < 0.4:
            chars = list(quote)
            for _ in range(rng.randint(0, 6)):
                chars[rng.randrange(len(chars))] = rng.choice("ab \\\n$’")
            quote = "".join(chars)
        elif rng.random() < 0.3:
            quote = quote.replace(" ", "  \n").replace("\\", "\\\\")
        result = aligner.align(quote, hint=rng.choice([None, start, rng.randrange(len(text))]))
        if result is None:
            continue
        kinds.add(result.match)
        region = text[result.start : result.end]
        assert 0 <= result.start < result.end <= len(text) and region == region.strip()
        if result.match == "exact":
            assert region == quote.strip() and result.score == 1.0
        elif result.match == "normalized":
            assert normalize(region) == normalize(quote)
        else:
            assert result.score >= 0.85
            assert result.score == pytest.approx(fuzz.ratio(normalize(quote), normalize(region)) / 100)
    assert kinds == {"exact", "normalized", "fuzzy"}


# ---------------------------------------------------------------------------- speed


def _synthetic_trace(size: int, rng: random.Random) -> str:
    templates = [
        "Let me compute $\\frac{{{a}}}{{{b}}} + {c} = {d}$ carefully.",
        "Wait, that doesn’t match: $x_{{{a}}} = {b}$ but we need ${c}$.",
        "So the sum $\\sum_{{k=1}}^{{{a}}} k^{{{b}}}$ is about {d}.",
        "Hmm, maybe try $n = {a}$ instead, giving ${b} \\cdot {c} = {d}$.",
        "Therefore the answer should be ${d}$, unless ${a} > {b}$.",
    ]
    parts = ["<think>\n"]
    while sum(map(len, parts)) < size:
        a, b, c = rng.randint(2, 99), rng.randint(2, 999), rng.randint(2, 99)
        parts.append(rng.choice(templates).format(a=a, b=b, c=c, d=rng.randint(-999, 99999)))
        parts.append("\n\n" if rng.random() < 0.2 else " ")
    return "".join(parts)[:size] + "\n</think>\n\nDone."


def _typos(rng: random.Random, quote: str) -> str:
    chars = list(quote)
    for _ in range(max(1, len(chars) // 40)):
        i = rng.randrange(len(chars))
        chars[i] = rng.choice("abcdefghij")
    return "".join(chars)


def test_speed_average_well_under_a_millisecond_per_excerpt_on_50k():
    rng = random.Random(3)
    text = _synthetic_trace(50_000, rng)
    other = _synthetic_trace(5_000, random.Random(99))
    quotes = []
    for i in range(60):
        length = rng.randint(80, 600)
        start = rng.randrange(0, len(text) - length)
        quote = text[start : start + length].strip()
        kind = i % 20
        if kind >= 17:  # 3/20 varied whitespace/escapes
            quote = quote.replace(" ", "  ").replace("\\", "\\\\")
        if 14 <= kind < 17:  # fuzzy typos
            quote = _typos(rng, quote)
        if kind == 13:  # absent
            quote = other[:length].replace("<think>", "")
        quotes.append(quote)
    t0 = time.perf_counter()
    aligner = Aligner(text)
    results = [aligner.align(q) for q in quotes]
    elapsed = time.perf_counter() - t0
    assert sum(r is not None for r in results) >= 55
    # the acceptance bound is 1 ms/excerpt; allow slack for loaded CI machines
    assert elapsed / len(quotes) < 0.005, f"{elapsed / len(quotes) * 1e3:.2f} ms per excerpt"


def test_absent_excerpt_is_cheap_on_a_long_trace():
    text = _synthetic_trace(50_000, random.Random(5))
    aligner = Aligner(text)
    quote = "Consider the triangle ABC with AB = 7 and BC = 9; the law of cosines gives AC^2 = 130. " * 4
    t0 = time.perf_counter()
    for _ in range(10):
        assert aligner.align(quote) is None
    assert (time.perf_counter() - t0) / 10 < 0.01
