"""Test set for the routing benchmark: judge answers, as an LLM judge writes them, with known failures.

Used by ``benchmarks/bench_routing.py`` and ``tests/test_routing_benchmark.py``; on its own it
prints what it built:

    python benchmarks/routing_testset.py --summary

Traces: the 24 traces of the bundled sample (splitreason/data/openr1_sample.jsonl, 3-30k
characters) and `generated` R1-like traces of 10-30k characters (problem, ``<think>``,
paragraphs of setup, inline and display LaTeX, lists of computed terms, "Wait" repairs, case
analysis, checks; answer after ``</think>``). Every case is one trace and the raw text of the
judge's answer(s): JSON as a model writes it, parsed later by splitreason's own `parse_answer`.

Clean cases. The passages a judge would mark are the heuristic judge's difficult spans at a
coverage the judge chose near the target: target x a factor drawn log-uniformly within
`clean_spread` (default 1/1.5 .. 1.5, i.e. 10-22.5 % for a 15 % target). Each quote is copied
verbatim (70 %) or with the noise real judges add: whitespace changed (lines joined, spaces around
``=`` or doubled), one character dropped or doubled, cut a few characters short at one end.
Per answer, backslashes are JSON-escaped properly (80 %), left single (12 %: ``\\frac`` arrives
as form feed + "rac") or doubled (8 %); 10 % of answers come in a code fence. k-sample variants
(k = `samples`): every sample takes the same base spans, moves one boundary of a span by 1-6
words with probability 0.25 per span, drops one span (p 0.15) or adds one more difficult span
(p 0.15), and is then quoted with its own noise.

Corrupted cases, one failure each (k-sample variants: every sample fails the same way):
  paraphrased   a share (`severity`, drawn in 0.3-1) of the quotes reworded by rules: LaTeX
                spelled out, stock phrases and small numbers reworded, "A, so B" -> "B, since A"
  hallucinated  the same share replaced by text that is not in the trace: sentences written
                from templates of steps the trace never takes, or passages of another problem's
                trace
  coverage_off  "half": long verbatim passages covering 40-65 % of the trace; "tiny": one or
                two sentences, at most 3 % of it (target/5)
  empty         {"spans": []}: the only sample, every sample, or some of the samples
  inconsistent  k samples that quote real difficult passages of different regions: at most
                30 % of each sample's coverage is common to all of them
Nothing is filtered by what the router does; the benchmark reports how many corrupted quotes
the aligner still placed, so a reader can see how hard each kind is.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from splitreason.annotator.align import normalize  # noqa: E402
from splitreason.io.inputs import bundled_sample  # noqa: E402
from splitreason.io.readers import iter_rows  # noqa: E402
from splitreason.io.selection import select_traces  # noqa: E402
from splitreason.judges.heuristic import select_spans  # noqa: E402
from splitreason.schemas import Trace  # noqa: E402

CORRUPTIONS = ("paraphrased", "hallucinated", "coverage_off", "empty", "inconsistent")
QUOTE_NOISE = (("verbatim", 0.70), ("whitespace", 0.10), ("typo", 0.10), ("cut_short", 0.10))
ANSWER_STYLE = (("escaped", 0.80), ("single_backslash", 0.12), ("double_backslash", 0.08))
MAX_QUOTE_CHARS = 4000  # the judge schema's cap per excerpt
MAX_QUOTES = 32  # ... and on the number of excerpts


@dataclass(frozen=True)
class RoutingSetConfig:
    seed: int = 13
    clean: int = 600  # clean cases
    per_corruption: int = 300  # cases of each corruption kind
    generated: int = 40  # generated traces besides the bundled ones
    trace_chars: tuple[int, int] = (10_000, 30_000)
    target_coverage: float = 0.15
    clean_spread: float = 1.5  # clean coverage within target / spread .. target * spread
    severity: tuple[float, float] = (0.3, 1.0)  # share of bad quotes (paraphrased, hallucinated)
    samples: int = 3  # k of the k-sample variants
    multi_share: float = 0.5  # share of cases judged k times (inconsistent: all)

    def __post_init__(self) -> None:
        lo, hi = self.severity
        if not 0 < lo <= hi <= 1:
            raise ValueError(f"severity must satisfy 0 < lo <= hi <= 1, got {self.severity}")
        if self.clean_spread < 1 or not 0 < self.target_coverage < 1 or self.samples < 2:
            raise ValueError("need clean_spread >= 1, 0 < target_coverage < 1 and samples >= 2")
        if min(self.clean, self.per_corruption, self.generated) < 0 or not 0 <= self.multi_share <= 1:
            raise ValueError("case and trace counts must be >= 0 and multi_share in [0, 1]")


@dataclass(frozen=True)
class Case:
    case_id: str
    kind: str  # "clean" or one of CORRUPTIONS
    variant: str  # single / k3 / half / tiny / k3_some ...
    trace: Trace
    answers: tuple[str, ...]  # the judge's raw answers, one per sample
    severity: float  # share of quotes corrupted; coverage_off: coverage / target
    notes: tuple[str, ...] = ()  # noise and answer styles used
    corrupted_quotes: tuple[str, ...] = field(default=(), repr=False)  # the injected quotes

    @property
    def corrupted(self) -> bool:
        return self.kind != "clean"


# ------------------------------------------------------------------------------ traces

def bundled_traces() -> list[Trace]:
    return [t for t in select_traces(iter_rows(str(bundled_sample()))) if isinstance(t, Trace)]


_SETUP = ["Okay, so I need to find {what} for this problem. Let me read it again carefully.",
          "The problem gives \\( n = {n} \\) and asks for {what}; nothing else is constrained.",
          "Let me think about which approach is cleanest before computing anything."]
_COMPUTE = ["We have \\( {a}^2 - {b}^2 = ({a} - {b})({a} + {b}) = {d} \\cdot {s} = {ds} \\).",
            "Multiplying both sides by {b} gives \\( {b}x = {ab} \\), so \\( x = {a} \\).",
            "Then \\( \\frac{{{ab}}}{{{b}}} + \\sqrt{{{sq}}} = {a} + {r} = {ar} \\), which is an integer as hoped.",
            "Substituting \\( t = {a} \\) into \\( f(t) = t^2 - {b}t + {c} \\) gives \\( {a2} - {abb} + {c} = {f} \\).",
            "The powers of {a} modulo {m} repeat with period {p}, and since {n} leaves {q} mod {p} the remainder follows.",
            "Adding the two equations eliminates \\( y \\): \\( {s}x = {c} + {b} \\), which I will keep as it is for now.",
            "Now I count the pairs with \\( x + y = {n} \\): there are {n1} of them, of which {b} violate the bound."]
_DISPLAY = ["\\[\n\\sum_{{k=1}}^{{{n}}} (2k - 1) = {n}^2 = {n2}\n\\]",
            "\\[\nS = \\frac{{{a}({a} + 1)}}{{2}} - {b} = {tri} - {b} = {trib}\n\\]",
            "\\[\n({a}x + {b})^2 = {a2}x^2 + {tab}x + {b2}\n\\]"]
_REPAIR = ["Wait, that doesn't look right: \\( {a} \\cdot {b} = {ab} \\), not {ab1}. Let me redo this step.",
           "Hmm, actually I dropped the factor {b} in the second term, so the total is {ab} instead.",
           "Let me double-check: \\( {ab} / {b} = {a} \\), yes, that matches the earlier estimate.",
           "Hold on, I used {m} where the modulus should be {p}; redoing it gives residue {q}."]
_CASES = ["Case {i}: suppose \\( x \\equiv {r} \\pmod{{{m}}} \\). Then \\( x^2 \\equiv {rr} \\pmod{{{m}}} \\), "
          "so this case contributes {c} solutions.",
          "If \\( x > {a} \\) then the left side exceeds {ab}, so only \\( x \\le {a} \\) remains to be checked.",
          "Otherwise \\( x < {b} \\), and then both factors are negative, which gives another {n} solutions."]
_CLOSE = ["So far the running total is {c}, which agrees with the small cases I tried.",
          "That settles this part; now I move on to the remaining count.",
          "I will keep {c} in mind and come back to it at the end.",
          "This is consistent with the rough estimate of about {a} from before."]


def _fill(rng: random.Random, template: str, i: int) -> str:
    a, b, c, n, m = rng.randint(3, 60), rng.randint(2, 40), rng.randint(5, 900), rng.randint(4, 40), rng.randint(3, 13)
    r = rng.randint(1, m - 1)
    return template.format(
        what=rng.choice(["the number of ordered pairs", "the largest possible value", "the sum of all roots",
                         "the remainder", "the probability"]),
        a=a, b=b, c=c, n=n, m=m, r=r, i=i, d=a - b, s=a + b, ds=(a - b) * (a + b), ab=a * b, ab1=a * b + 1,
        sq=r * r, ar=a + r, a2=a * a, abb=a * b, f=a * a - a * b + c, p=rng.randint(2, 6), q=rng.randint(0, 5),
        n2=n * n, n1=n - 1, tri=a * (a + 1) // 2, trib=a * (a + 1) // 2 - b, tab=2 * a * b, b2=b * b, rr=r * r % m,
    )


def generated_trace(rng: random.Random, index: int, size: int) -> Trace:
    """An R1-like trace of about `size` characters."""
    parts = ["<think>", " ".join(_fill(rng, t, 0) for t in _SETUP)]
    length, case = len(parts[1]), 1
    while length < size:
        pools = rng.choice([(_COMPUTE, _COMPUTE, _CLOSE), (_COMPUTE, _DISPLAY, _CLOSE), (_REPAIR, _COMPUTE),
                            (_CASES, _COMPUTE, _CASES), (_COMPUTE, _REPAIR, _COMPUTE, _CLOSE)])
        paragraph = ""
        for pool in pools:
            sentence = _fill(rng, rng.choice(pool), case)
            case += pool is _CASES
            joint = "\n" if pool is _DISPLAY or paragraph.endswith("\\]") else " "
            paragraph = paragraph + joint + sentence if paragraph else sentence
        if rng.random() < 0.15:  # a list of computed terms
            paragraph += "\n" + "\n".join(f"- \\( a_{{{k}}} = {k} \\cdot {rng.randint(2, 20)} + 1 \\)" for k in range(1, 5))
        parts.append(paragraph)
        length += len(paragraph) + 2
    parts += ["</think>", f"The answer is \\( \\boxed{{{rng.randint(1, 999)}}} \\)."]
    return Trace(trace_id=f"gen-{index:04d}:0", uuid=f"gen-{index:04d}", generation_index=0,
                 problem=f"Generated problem {index}: find the requested quantity.", text="\n\n".join(parts),
                 source="generated")


# ------------------------------------------------------------------------------ spans and quotes

def _pick(rng: random.Random, weighted) -> str:
    return rng.choices([name for name, _ in weighted], [share for _, share in weighted])[0]


def _think(text: str) -> tuple[int, int]:
    start = text.find("<think>")
    start = 0 if start < 0 else start + len("<think>")
    end = text.find("</think>", start)
    return start, (len(text) if end < 0 else end)


def difficult(trace: Trace, target: float) -> list[tuple[int, int, str]]:
    return select_spans(trace.text, min(target, 0.95), problem=trace.problem)


def _word_left(text: str, at: int, floor: int) -> int:
    """Offset of the start of the word before `at` (skipping whitespace), not below `floor`."""
    while at > floor and text[at - 1].isspace():
        at -= 1
    while at > floor and not text[at - 1].isspace():
        at -= 1
    return at


def _jitter(rng: random.Random, text: str, start: int, end: int) -> tuple[int, int]:
    """Move one end of a span by 1-6 words, in or out, inside the thinking part (a sample's choice)."""
    lo, hi = _think(text)
    grow = rng.random() < 0.5
    for _ in range(rng.randint(1, 6)):
        if rng.random() < 0.5 and grow:  # the end takes the next word
            found = re.compile(r"\s+\S+").match(text, end, hi)
            end = found.end() if found else end
        elif grow:  # the start takes the previous word
            start = _word_left(text, start, lo)
        elif rng.random() < 0.5:  # the end drops its last word
            cut = _word_left(text, end, start)
            while cut > start and text[cut - 1].isspace():
                cut -= 1
            end = cut if cut - start >= 20 else end
        else:  # the start drops its first word
            found = re.compile(r"\S+\s+").match(text, start, end)
            start = found.end() if found and end - found.end() >= 20 else start
    return start, end


def _noisy_quote(rng: random.Random, quote: str) -> tuple[str, str]:
    noise = _pick(rng, QUOTE_NOISE)
    if noise == "whitespace":
        joined = quote.replace("\n\n", " ").replace("\n", " ")
        quote = joined if joined != quote else (quote.replace(" = ", "=") if " = " in quote else quote.replace(" ", "  ", 1))
    elif noise == "typo":
        letters = [i for i, ch in enumerate(quote) if ch.isalpha() and len(quote) * 0.1 < i < len(quote) * 0.9]
        if letters:
            i = rng.choice(letters)
            quote = quote[:i] + quote[i + 1:] if rng.random() < 0.5 else quote[:i] + quote[i] + quote[i:]
    elif noise == "cut_short":
        cut = rng.randint(1, 6)
        quote = quote[cut:] if rng.random() < 0.5 else quote[:-cut].rstrip("\\")  # never "\" before the quote
    return quote, noise


def _raw_string(value: str) -> str:
    """A JSON string as a model writes it when it forgets to escape LaTeX backslashes."""
    if value.endswith("\\"):  # a final lone backslash would escape the closing quote: unparseable
        value += "\\"
    return '"' + value.replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t") + '"'


def answer_json(rng: random.Random, quotes: list[tuple[str, str]]) -> tuple[str, str]:
    """The judge's raw answer for (quote, reason) pairs, and the escaping style it used."""
    style = _pick(rng, ANSWER_STYLE)
    if style == "single_backslash":
        items = ", ".join(f'{{"text": {_raw_string(q)}, "reason": {json.dumps(r)}}}' for q, r in quotes)
        body = f'{{"spans": [{items}]}}'
    else:
        double = style == "double_backslash"
        body = json.dumps({"spans": [{"text": q.replace("\\", "\\\\") if double else q, "reason": r}
                                     for q, r in quotes]}, ensure_ascii=False)
    if rng.random() < 0.1:
        body = f"```json\n{body}\n```"
    return body, style


def _sample_spans(rng: random.Random, trace: Trace, base: list[tuple[int, int, str]],
                  extra: list[tuple[int, int, str]], multi: bool) -> list[tuple[int, int, str]]:
    """One sample's spans: the base spans, or (k-sample) base with jitter, one dropped, one added."""
    spans = list(base)
    if not multi:
        return spans
    spans = [(*_jitter(rng, trace.text, s, e), r) if rng.random() < 0.25 else (s, e, r) for s, e, r in spans]
    if len(spans) > 1 and rng.random() < 0.15:
        spans.pop(rng.randrange(len(spans)))
    if extra and rng.random() < 0.15:
        spans.append(rng.choice(extra))
    return sorted(spans)[:MAX_QUOTES]


def _quote_all(rng: random.Random, text: str, spans) -> tuple[list[tuple[str, str]], list[str]]:
    quotes, notes = [], []
    for s, e, reason in spans:
        quote, noise = _noisy_quote(rng, text[s:e][:MAX_QUOTE_CHARS])
        quotes.append((quote, reason or "difficult step"))
        notes.append(noise)
    return quotes, notes


# ------------------------------------------------------------------------------ corruptions

_WORDS = {"Let me": "I'll", "let me": "I'll", "we have": "we get", "We have": "This gives", "so": "therefore",
          "So": "Hence", "which": "and this", "gives": "yields", "check": "verify", "compute": "work out",
          "Then": "Next", "then": "after that", "is": "equals", "the": "our", "The": "Our", "Wait,": "Hold on:",
          "Hmm,": "", "actually": "in fact", "Okay,": "", "number": "count", "remains": "is left",
          "Multiplying": "If I multiply", "Substituting": "Plugging in", "suppose": "assume", "case": "situation"}
_WORD_RE = re.compile(r"(?<![\w\\])(" + "|".join(sorted(map(re.escape, _WORDS), key=len, reverse=True)) + r")(?!\w)")
_DIGITS = "zero one two three four five six seven eight nine ten eleven twelve".split()
_LATEX = [(r"\\[dt]?frac\{([^{}]*)\}\{([^{}]*)\}", r"\1 divided by \2"), (r"\\sqrt\{([^{}]*)\}", r"the root of \1"),
          (r"\^\{?2\}?", " squared"), (r"\\cdot|\\times", " times "), (r"\\le(q)?(?![a-z])", " at most "),
          (r"\\ge(q)?(?![a-z])", " at least "), (r"\\pmod\{([^{}]*)\}", r" modulo \1"), (r"\\equiv", " congruent to "),
          (r"\\[()\[\]]|\$|\\left|\\right|\\displaystyle", " "), (r"\s*=\s*", " equals "), (r"[{}]", "")]


def paraphrase(quote: str) -> str:
    """Reword a quote by rules (deterministic): math in words, stock phrases swapped, clauses turned."""
    text = quote
    for pattern, repl in _LATEX:
        text = re.sub(pattern, repl, text)
    text = _WORD_RE.sub(lambda m: _WORDS[m.group(1)], text)
    text = re.sub(r"(?<![\w.])([0-9]|1[0-2])(?![\w.])", lambda m: _DIGITS[int(m.group(1))], text)
    text = re.sub(r"([^.,;]{12,}), (?:therefore|after that) ([^.]{8,})\.", r"\2, since \1.", text)
    return " ".join(text.split())


_INVENTED = [
    "Applying AM-GM to the {n} terms gives a lower bound of {a}, attained when every term equals {b}.",
    "Reducing modulo {m}, the left side is congruent to {r}, so there is no solution unless {m} divides {c}.",
    "By Vieta's formulas the product of the roots is {c}/{b}, hence the sum of their squares is {d}.",
    "Wait, the earlier count of {c} missed the arrangements with a repeated digit; there are {a} of those.",
    "Differentiating again, g''(t) = {a}t - {b} changes sign at t = {b}/{a}, the inflection point we need.",
    "Pairing the terms from both ends, each pair sums to {a}, so the total is {a} times {n}, that is {d}.",
    "The triangle inequality forces the third side below {a}, leaving exactly {n} integer lengths.",
    "Let me use the substitution u = {a}x + {b}, which turns the integrand into 1/(u^2 + {c}).",
    "Checking the boundary x = {a} separately, the expression equals {b}, smaller than the interior maximum {c}.",
    "Counting complements instead: {c} total minus {d} bad configurations leaves the answer.",
]


def invented(rng: random.Random, length: int) -> str:
    """Plausible steps the trace never takes, about `length` characters."""
    out: list[str] = []
    while not out or sum(map(len, out)) < length * 0.8:
        a, b, c, n, m = rng.randint(3, 90), rng.randint(2, 50), rng.randint(10, 999), rng.randint(3, 30), rng.randint(3, 17)
        out.append(rng.choice(_INVENTED).format(a=a, b=b, c=c, n=n, m=m, r=rng.randint(1, m - 1), d=a * n + c))
    return " ".join(out)


# ------------------------------------------------------------------------------ cases

class _Builder:
    def __init__(self, config: RoutingSetConfig):
        self.config = config
        self.rng = random.Random(config.seed)
        rng = random.Random(config.seed + 1)
        lo, hi = config.trace_chars
        self.traces = bundled_traces() + [generated_trace(rng, i, rng.randint(lo, hi)) for i in range(config.generated)]
        self._difficult_cache: dict[tuple[str, float], list] = {}
        self._norm_cache: tuple[str, str] = ("", "")

    def spans(self, trace: Trace, target: float) -> list[tuple[int, int, str]]:
        key = (trace.trace_id, round(target, 3))
        if key not in self._difficult_cache:
            self._difficult_cache[key] = difficult(trace, target)
        return self._difficult_cache[key]

    def clean_target(self) -> float:
        spread = math.log(self.config.clean_spread)
        return self.config.target_coverage * math.exp(self.rng.uniform(-spread, spread))

    def base(self, trace: Trace) -> tuple[list, list]:
        """Difficult spans at a clean coverage, and further difficult spans a sample may add."""
        target = self.clean_target()
        base = self.spans(trace, target)
        wider = self.spans(trace, min(0.9, target * 1.6))
        return base, [s for s in wider if not any(s[0] < e and b < s[1] for b, e, _ in base)]

    def case(self, index: int, kind: str) -> Case:
        rng, trace = self.rng, self.rng.choice(self.traces)
        k = self.config.samples
        multi = kind == "inconsistent" or rng.random() < self.config.multi_share
        base, extra = self.base(trace)
        if kind == "empty":
            return self.empty(index, trace, base, extra, multi)
        if kind == "inconsistent":
            return self.inconsistent(index, trace, base)
        variant = f"k{k}" if multi else "single"
        if kind == "coverage_off":
            variant = rng.choice(["half", "tiny"]) + (f"_k{k}" if multi else "")
        share = rng.uniform(*self.config.severity)
        answers, notes, bad, severities = [], [], [], []
        for _ in range(k if multi else 1):
            spans = _sample_spans(rng, trace, base, extra, multi)
            if kind == "coverage_off":
                spans = self.half(trace) if variant.startswith("half") else self.tiny(trace, base)
                severities.append(sum(e - s for s, e, _ in spans) / len(trace.text) / self.config.target_coverage)
            quotes, noise = _quote_all(rng, trace.text, spans)
            if kind in ("paraphrased", "hallucinated") and quotes:
                chosen = rng.sample(range(len(quotes)), max(1, round(share * len(quotes))))
                for i in chosen:
                    quote, reason = quotes[i]
                    new = paraphrase(quote) if kind == "paraphrased" else self.hallucination(trace, len(quote))
                    quotes[i], noise[i] = (new, reason), kind
                    bad.append(new)
                severities.append(len(chosen) / len(quotes))
            answer, style = answer_json(rng, quotes)
            answers.append(answer)
            notes += noise + [style]
        severity = sum(severities) / len(severities) if severities else 0.0  # mean over the samples
        return Case(f"{kind}-{index}", kind, variant, trace, tuple(answers), round(severity, 4), tuple(notes), tuple(bad))

    def empty(self, index: int, trace: Trace, base: list, extra: list, multi: bool) -> Case:
        """{"spans": []} from the only sample, from every sample, or from some of them."""
        k = self.config.samples
        variant = self.rng.choice([f"k{k}", f"k{k}_some"]) if multi else "single"
        empties = k if variant == f"k{k}" else 1 if variant == "single" else self.rng.randint(1, k - 1)
        answers, notes = [], []
        for sample in range(k if multi else 1):
            if sample < empties:
                answers.append('{"spans": []}')
                continue
            quotes, noise = _quote_all(self.rng, trace.text, _sample_spans(self.rng, trace, base, extra, True))
            answer, style = answer_json(self.rng, quotes)
            answers.append(answer)
            notes += noise + [style]
        return Case(f"empty-{index}", "empty", variant, trace, tuple(answers), round(empties / len(answers), 4), tuple(notes))

    def hallucination(self, trace: Trace, length: int) -> str:
        """Invented steps, or a passage of another problem's trace that this trace does not contain."""
        if self.rng.random() < 0.5:
            other = self.rng.choice([t for t in self.traces if t.uuid != trace.uuid])
            s, e, _ = self.rng.choice(self.spans(other, 0.15) or [(0, min(400, len(other.text)), "")])
            if normalize(other.text[s:e]) not in self._normalized(trace):  # generated traces share templates
                return other.text[s:e]
        return invented(self.rng, length)

    def _normalized(self, trace: Trace) -> str:
        if self._norm_cache[0] != trace.trace_id:
            self._norm_cache = (trace.trace_id, normalize(trace.text))
        return self._norm_cache[1]

    def half(self, trace: Trace) -> list[tuple[int, int, str]]:
        """Long verbatim passages, evenly spread, covering 40-65 % of the trace."""
        text = trace.text
        lo, hi = _think(text)
        covered = min(self.rng.uniform(0.42, 0.65) * len(text), 0.95 * (hi - lo))
        count = min(self.rng.randint(6, 20), max(3, int(covered / 300)))  # passages of 300+ characters
        length = min(MAX_QUOTE_CHARS - 200, covered / count)
        spans = []
        for i in range(count):
            start = lo + int(i * (hi - lo) / count)
            end = int(start + length)
            while start < end and not text[start].isspace():  # whole words only
                start += 1
            while end > start and not text[end - 1].isspace():
                end -= 1
            while start < end and text[start].isspace():
                start += 1
            while end > start and text[end - 1].isspace():
                end -= 1
            if end - start > 40:
                spans.append((start, end, "long derivation"))
        return spans

    def tiny(self, trace: Trace, base: list) -> list[tuple[int, int, str]]:
        """One or two sentences of the difficult spans, at most target / 5 of the trace."""
        cap = self.config.target_coverage / 5 * len(trace.text)
        sentences = [(s + m.start(), s + m.end(), r) for s, e, r in base
                     for m in re.finditer(r"[^.!?\n]{30,}[.!?]?", trace.text[s:e])]
        if not sentences:  # no difficult span at all: the first words of the thinking part
            lo, hi = _think(trace.text)
            sentences = [(lo, lo + min(80, hi - lo), "")]
        fitting = [x for x in sentences if x[1] - x[0] <= cap]
        if not fitting:  # a short trace: a clause of its shortest sentence
            s, e, r = min(sentences, key=lambda x: x[1] - x[0])
            e = max(trace.text.rfind(" ", s, s + int(cap)), s + 20)
            fitting = [(s, e, r)]
        picked = self.rng.sample(fitting, min(len(fitting), self.rng.randint(1, 2)))
        if sum(e - s for s, e, _ in picked) > cap:
            picked = picked[:1]
        return sorted(picked)

    def inconsistent(self, index: int, trace: Trace, base: list) -> Case:
        """k samples of real difficult passages from different regions (<= 30 % shared)."""
        rng, k = self.rng, self.config.samples
        target = sum(e - s for s, e, _ in base) or 0.15 * len(trace.text)
        pool = list(self.spans(trace, min(0.9, 3.5 * target / len(trace.text))))
        rng.shuffle(pool)
        shared_goal = rng.uniform(0.0, 0.3) * target
        common: list = []
        while pool and sum(e - s for s, e, _ in common) + pool[-1][1] - pool[-1][0] <= shared_goal:
            common.append(pool.pop())
        own: list[list] = [[] for _ in range(k)]
        for i, span in enumerate(pool):  # round robin: each sample its own passages
            mine = own[i % k]
            if sum(e - s for s, e, _ in common + mine) < target:
                mine.append(span)
        answers, notes = [], []
        for sample in range(k):
            quotes, noise = _quote_all(rng, trace.text, sorted(common + own[sample])[:MAX_QUOTES])
            answer, style = answer_json(rng, quotes)
            answers.append(answer)
            notes += noise + [style]
        shared = sum(e - s for s, e, _ in common) / target
        return Case(f"inconsistent-{index}", "inconsistent", f"k{k}", trace, tuple(answers), round(shared, 4), tuple(notes))


def build_cases(config: RoutingSetConfig = RoutingSetConfig()) -> list[Case]:
    """Clean cases first, then each corruption kind; the same config always gives the same cases."""
    builder = _Builder(config)
    cases = [builder.case(i, "clean") for i in range(config.clean)]
    for kind in CORRUPTIONS:
        cases += [builder.case(i, kind) for i in range(config.per_corruption)]
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--summary", action="store_true", help="print counts per kind and variant")
    parser.add_argument("--seed", type=int, default=RoutingSetConfig.seed)
    args = parser.parse_args()
    cases = build_cases(RoutingSetConfig(seed=args.seed))
    counts = Counter((c.kind, c.variant) for c in cases)
    for (kind, variant), n in sorted(counts.items()):
        print(f"{kind:14} {variant:10} {n:5}")
    sizes = sorted(len(t.text) for t in {c.trace.trace_id: c.trace for c in cases}.values())
    print(f"{len(cases)} cases over {len(sizes)} traces of {sizes[0]}-{sizes[-1]} characters")


if __name__ == "__main__":
    main()
