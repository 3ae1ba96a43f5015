"""Numbers about an annotation run: status, reasons, coverage, spans, hallucination, tokens.

Everything is kept per trace (or per span) as plain numbers, never the traces themselves, so a
run of 100k long traces is counted in bounded memory. `report/run_stats.py` fills these totals from
the run's polars frames for `splitreason stats` and `report`.
"""

from __future__ import annotations

from array import array
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from fractions import Fraction
from statistics import mean, quantiles
from typing import Any

COVERAGE_BINS = (0.0, 0.05, 0.10, 0.15, 0.20, 0.30, 0.50, 1.0001)


@dataclass
class ReviewStats:
    """Review progress and agreement: how far people got, and how much they changed."""

    waiting: int = 0  # status review, nobody has decided yet
    reviewed: int = 0  # traces with at least one decision (any status)
    decisions: Counter = field(default_factory=Counter)  # reconciled decision per reviewed trace
    changed: int = 0
    reviewers: Counter = field(default_factory=Counter)  # decisions per reviewer
    judge_agreement: list[float] = field(default_factory=list)  # accepted traces: reviewed vs judge spans
    reviewer_agreement: list[float] = field(default_factory=list)  # traces with 2+ accepting reviewers
    decision_agreement: list[float] = field(default_factory=list)  # traces with 2+ reviewers

    def as_dict(self) -> dict[str, Any]:
        return {
            "waiting": self.waiting,
            "reviewed": self.reviewed,
            "decisions": dict(self.decisions),
            "changed": self.changed,
            "reviewers": dict(self.reviewers),
            "judge_agreement": distribution(self.judge_agreement),
            "reviewer_span_agreement": distribution(self.reviewer_agreement),
            "reviewer_decision_agreement": distribution(self.decision_agreement),
        }


@dataclass
class JudgeUsage:
    """Tokens one judge (or one set of judges, whose usage is recorded together) spent."""

    judges: tuple[str, ...] = ()
    traces: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    per_trace: array = field(default_factory=lambda: array("q"))  # prompt + completion, per trace

    def add(self, prompt: int, completion: int) -> None:
        self.traces += 1
        self.prompt_tokens += prompt
        self.completion_tokens += completion
        self.per_trace.append(prompt + completion)

    def as_dict(self) -> dict[str, Any]:
        return {"judges": list(self.judges), "traces": self.traces, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
                "tokens_per_trace": distribution([float(n) for n in self.per_trace])}


@dataclass
class RunStats:
    traces: int = 0
    status: Counter = field(default_factory=Counter)
    reasons: Counter = field(default_factory=Counter)
    input_rejects: Counter = field(default_factory=Counter)
    coverages: list[float] = field(default_factory=list)
    spans_per_trace: list[int] = field(default_factory=list)
    match_kinds: Counter = field(default_factory=Counter)
    excerpts: int = 0
    hallucinated: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    judges: Counter = field(default_factory=Counter)
    target_coverage: float | None = None
    sample_agreement: list[float] = field(default_factory=list)  # traces judged more than once
    review: ReviewStats = field(default_factory=ReviewStats)
    confidences: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))  # by status
    span_chars: array = field(default_factory=lambda: array("q"))  # length of every judge span
    usage_by_judge: dict[str, JudgeUsage] = field(default_factory=dict)  # "A" or "A + B" -> usage

    @property
    def hallucination_rate(self) -> float:
        return self.hallucinated / self.excerpts if self.excerpts else 0.0

    def coverage_histogram(self) -> list[tuple[str, int]]:
        rows = []
        for low, high in zip(COVERAGE_BINS, COVERAGE_BINS[1:]):
            count = sum(1 for value in self.coverages if low <= value < high)
            rows.append((f"{low:.0%}–{min(high, 1.0):.0%}", count))
        return rows

    def as_dict(self) -> dict[str, Any]:
        return {
            "traces": self.traces,
            "status": dict(self.status),
            "reasons": {f"{status}/{reason}": count for (status, reason), count in sorted(self.reasons.items())},
            "input_rejects": dict(self.input_rejects),
            "coverage": distribution(self.coverages),
            "target_coverage": self.target_coverage,
            "coverage_histogram": dict(self.coverage_histogram()),
            "spans_per_trace": distribution([float(n) for n in self.spans_per_trace]),
            "match_kinds": dict(self.match_kinds),
            "excerpts": self.excerpts,
            "hallucinated": self.hallucinated,
            "hallucination_rate": round(self.hallucination_rate, 4),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "judges": dict(self.judges),
            "sample_agreement": distribution(self.sample_agreement),
            "review": self.review.as_dict(),
            "confidence_by_status": {status: distribution(values)
                                     for status, values in sorted(self.confidences.items())},
            "span_chars": distribution(self.span_chars),
            "usage_by_judge": {name: usage.as_dict() for name, usage in sorted(self.usage_by_judge.items())},
        }


def distribution(values: list[float] | array) -> dict[str, float] | None:
    if isinstance(values, array) and values.typecode == "q":
        return _int_distribution(values)
    if not values:
        return None
    ordered = sorted(values)
    cuts = quantiles(ordered, n=10, method="inclusive") if len(ordered) > 1 else [ordered[0]] * 9
    return {
        "min": round(ordered[0], 4),
        "p10": round(cuts[0], 4),
        "median": round(cuts[4], 4),
        "p90": round(cuts[8], 4),
        "max": round(ordered[-1], 4),
        "mean": round(mean(ordered), 4),
    }


def _int_distribution(values: array) -> dict[str, float] | None:
    """`distribution` of an array of ints (every span's length: millions in a big run) without a
    Python float per value: the same numbers (statistics.quantiles' inclusive formula and an exact
    mean, computed on ints, are what it computes on their floats), in a fraction of the memory."""
    import numpy as np

    if not values:
        return None
    ordered = np.sort(np.frombuffer(values, dtype=np.int64))
    n = len(ordered)
    if n > 1:
        cuts = []
        for i in range(1, 10):
            j, delta = divmod(i * (n - 1), 10)
            cuts.append((int(ordered[j]) * (10 - delta) + int(ordered[j + 1]) * delta) / 10)
    else:
        cuts = [float(ordered[0])] * 9
    return {
        "min": round(float(ordered[0]), 4),
        "p10": round(cuts[0], 4),
        "median": round(cuts[4], 4),
        "p90": round(cuts[8], 4),
        "max": round(float(ordered[-1]), 4),
        "mean": round(float(Fraction(int(ordered.sum(dtype=np.int64)), n)), 4),
    }
