"""Per-trace filters of `splitreason curate`: each says why a trace goes, or nothing.

A filter is a small class with one method, `why_not(trace) -> (reason, detail) | None`
(datatrove's `BaseFilter.filter` in spirit); the pipeline counts removals per reason and
writes every removed trace to exclusions.jsonl. Filters run in the order given and the first
that objects wins, so each removed trace has exactly one reason.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Collection

from splitreason.schemas import Trace

WhyNot = tuple[str, str] | None  # (reason code, one-line detail) or None to keep


class TraceFilter(ABC):
    @abstractmethod
    def why_not(self, trace: Trace) -> WhyNot:
        """None to keep the trace; else a reason code and a one-line detail."""


def _bounds(value: int, low: int | None, high: int | None, unit: str, option: str) -> str | None:
    if low is not None and value < low:
        return f"{value:,} {unit}, below --min-{option} {low:,}"
    if high is not None and value > high:
        return f"{value:,} {unit}, above --max-{option} {high:,}"
    return None


class CharLength(TraceFilter):
    def __init__(self, low: int | None, high: int | None):
        self.low, self.high = low, high

    def why_not(self, trace: Trace) -> WhyNot:
        detail = _bounds(len(trace.text), self.low, self.high, "characters", "chars")
        return ("length_chars", detail) if detail else None


class TokenLength(TraceFilter):
    """Length in the tokens of the model to be trained (`--tokenizer`)."""

    def __init__(self, tokenizer, low: int | None, high: int | None):
        self.tokenizer, self.low, self.high = tokenizer, low, high

    def why_not(self, trace: Trace) -> WhyNot:
        count = len(self.tokenizer(trace.text, add_special_tokens=False)["input_ids"])
        detail = _bounds(count, self.low, self.high, "tokens", "tokens")
        return ("length_tokens", detail) if detail else None


class CorrectCount(TraceFilter):
    """OpenR1's `correctness_count`: how many generations of the problem were verified correct."""

    def __init__(self, low: int | None, high: int | None):
        self.low, self.high = low, high

    def why_not(self, trace: Trace) -> WhyNot:
        if trace.correctness_count is None:
            return ("unknown_correctness_count", "the record has no correctness_count")
        if self.low is not None and trace.correctness_count < self.low:
            return ("correctness_count", f"correctness_count {trace.correctness_count}, below --min-correct {self.low}")
        if self.high is not None and trace.correctness_count > self.high:
            return ("correctness_count", f"correctness_count {trace.correctness_count}, above --max-correct {self.high}")
        return None


class FieldIn(TraceFilter):
    """Keep traces whose `field` is in `allowed` (when given) and not in `excluded`."""

    def __init__(self, field: str, allowed: Collection[str] = (), excluded: Collection[str] = ()):
        self.field, self.allowed, self.excluded = field, frozenset(allowed), frozenset(excluded)

    def why_not(self, trace: Trace) -> WhyNot:
        value = getattr(trace, self.field)
        option = self.field.replace("_", "-")
        if self.allowed and value not in self.allowed:
            return (f"{self.field}_excluded", f"{self.field} {value!r} is not one of --{option} {', '.join(sorted(self.allowed))}")
        if value in self.excluded:
            return (f"{self.field}_excluded", f"{self.field} {value!r} is excluded by --exclude-{option}")
        return None


# What language detection should not see: think tags, math, LaTeX commands and numbers carry no
# language, and a trace heavy in them would otherwise read as "la" or "en" at random.
_NOT_LANGUAGE = re.compile(
    r"</?think>|\$\$.*?\$\$|\$[^$]*\$|\\\[.*?\\\]|\\\(.*?\\\)|\\begin\{(\w+\*?)\}.*?\\end\{\1\}|\\[A-Za-z]+|[\d_^{}=+\-*/<>|]+",
    re.DOTALL,
)
LANGUAGE_SAMPLE_CHARS = 500  # of prose from the start of the trace: a stable guess, and classify() is linear in it
LANGUAGE_MIN_LETTERS = 40  # below this there is too little prose to tell: such a trace is kept


def prose_sample(text: str) -> str:
    """Up to LANGUAGE_SAMPLE_CHARS of the trace's prose (math and markup removed)."""
    head = text[: LANGUAGE_SAMPLE_CHARS * 4]
    return " ".join(_NOT_LANGUAGE.sub(" ", head).split())[:LANGUAGE_SAMPLE_CHARS]


class Language(TraceFilter):
    """Language of the trace's prose, by py3langid (a model shipped inside the package, offline)."""

    def __init__(self, allowed: Collection[str]):
        import py3langid

        self.allowed = frozenset(code.lower() for code in allowed)
        self._identifier = py3langid.langid.LanguageIdentifier.from_model_file(py3langid.langid.MODEL_FILE,
                                                                                  norm_probs=True)

    def detect(self, text: str) -> tuple[str | None, float]:
        sample = prose_sample(text)
        if sum(ch.isalpha() for ch in sample) < LANGUAGE_MIN_LETTERS:
            return None, 0.0
        code, probability = self._identifier.classify(sample)
        return code, float(probability)

    def why_not(self, trace: Trace) -> WhyNot:
        code, probability = self.detect(trace.text)
        if code is None or code in self.allowed:
            return None
        return ("language", f"prose reads as {code} (p={probability:.2f}), not {', '.join(sorted(self.allowed))}")
