"""Numbers about an annotation run: status, reasons, coverage, spans, hallucination, tokens."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from statistics import mean, quantiles
from typing import Any

from splitreason.review.merge import merge_reviews
from splitreason.schemas import Annotation, Reject
from splitreason.schemas.review import Review

COVERAGE_BINS = (0.0, 0.05, 0.10, 0.15, 0.20, 0.30, 0.50, 1.0001)


@dataclass
class ReviewStats:
    """Review progress and agreement: how far people got, and how much they changed."""

    waiting: int = 0  # status review, nobody has decided yet
    reviewed: int = 0  # traces with at least one decision (any status)
    decisions: Counter = field(default_factory=Counter)  # merged decision per reviewed trace
    changed: int = 0
    reviewers: Counter = field(default_factory=Counter)  # decisions per reviewer
    judge_agreement: list[float] = field(default_factory=list)  # accepted traces: reviewed vs judge spans
    reviewer_agreement: list[float] = field(default_factory=list)  # traces with 2+ accepting reviewers
    decision_agreement: list[float] = field(default_factory=list)  # traces with 2+ reviewers

    def add(self, annotation: Annotation, reviews: list[Review] | None) -> None:
        if not reviews:
            self.waiting += annotation.status == "review"
            return
        outcome = merge_reviews(annotation.trace, reviews)
        self.reviewed += 1
        self.decisions[outcome.decision] += 1
        self.changed += outcome.changed
        self.reviewers.update(outcome.reviewers)
        if outcome.decision == "accepted":
            self.judge_agreement.append(outcome.judge_agreement)
        if outcome.span_agreement is not None:
            self.reviewer_agreement.append(outcome.span_agreement)
        if len(outcome.reviewers) > 1:
            self.decision_agreement.append(outcome.decision_agreement)

    def as_dict(self) -> dict[str, Any]:
        return {
            "waiting": self.waiting,
            "reviewed": self.reviewed,
            "decisions": dict(self.decisions),
            "changed": self.changed,
            "reviewers": dict(self.reviewers),
            "judge_agreement": _distribution(self.judge_agreement),
            "reviewer_span_agreement": _distribution(self.reviewer_agreement),
            "reviewer_decision_agreement": _distribution(self.decision_agreement),
        }


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

    def add(self, annotation: Annotation, reviews: list[Review] | None = None) -> None:
        self.traces += 1
        self.review.add(annotation, reviews)
        self.status[annotation.status] += 1
        self.reasons[(annotation.status, annotation.status_reason.split(":", 1)[0])] += 1
        self.judges[annotation.judge.name] += 1
        self.prompt_tokens += annotation.usage.prompt_tokens
        self.completion_tokens += annotation.usage.completion_tokens
        self.target_coverage = annotation.target_coverage
        if annotation.agreement is not None:
            self.sample_agreement.append(annotation.agreement)
        if annotation.status_reason.startswith("judge_"):
            return  # no answer: nothing to say about coverage or spans
        self.coverages.append(annotation.coverage)
        self.spans_per_trace.append(len(annotation.spans))
        self.excerpts += annotation.excerpts
        self.hallucinated += len(annotation.hallucinated)
        self.match_kinds.update(span.match for span in annotation.spans)

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
            "coverage": _distribution(self.coverages),
            "target_coverage": self.target_coverage,
            "coverage_histogram": dict(self.coverage_histogram()),
            "spans_per_trace": _distribution([float(n) for n in self.spans_per_trace]),
            "match_kinds": dict(self.match_kinds),
            "excerpts": self.excerpts,
            "hallucinated": self.hallucinated,
            "hallucination_rate": round(self.hallucination_rate, 4),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "judges": dict(self.judges),
            "sample_agreement": _distribution(self.sample_agreement),
            "review": self.review.as_dict(),
        }


def _distribution(values: list[float]) -> dict[str, float] | None:
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


def collect_stats(annotations: Iterable[Annotation], rejects: Iterable[Reject] = (),
                  reviews: dict[str, list[Review]] | None = None) -> RunStats:
    stats = RunStats()
    reviews = reviews or {}
    for annotation in annotations:
        stats.add(annotation, reviews.get(annotation.trace_id))
    for reject in rejects:
        stats.input_rejects[reject.reason] += 1
    return stats
