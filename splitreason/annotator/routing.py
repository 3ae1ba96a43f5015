"""Confidence and routing: every trace ends as accepted, review or rejected, with a reason.

Confidence in [0, 1] multiplies three factors:

    quality   = length-weighted mean alignment score of the spans (1.0 for exact quotes)
    grounded  = 1 - hallucinated_excerpts / excerpts
    fit       = 0.5 + 0.5 * max(0, 1 - |coverage - target| / target)

    confidence = quality * grounded * fit

Routing, first rule that applies:
    all excerpts hallucinated           -> rejected  all_hallucinated
    coverage > max_coverage             -> rejected  coverage_above_max
    judge returned no excerpts          -> review    no_spans
    coverage < min_coverage             -> review    coverage_below_min
    confidence < reject_threshold       -> rejected  low_confidence
    confidence < accept_threshold       -> review    low_confidence
    otherwise                           -> accepted  ok
"""

from __future__ import annotations

from dataclasses import dataclass

from splitreason.schemas import Span, Status


@dataclass(frozen=True)
class RoutingPolicy:
    target_coverage: float = 0.15
    min_coverage: float = 0.02
    max_coverage: float = 0.5
    accept_threshold: float = 0.75
    reject_threshold: float = 0.35

    def __post_init__(self) -> None:
        if not 0 < self.target_coverage < 1:
            raise ValueError("target coverage must be between 0 and 1")
        if not 0 <= self.min_coverage <= self.target_coverage <= self.max_coverage <= 1:
            raise ValueError("coverage bounds must satisfy 0 <= min <= target <= max <= 1")
        if not 0 <= self.reject_threshold <= self.accept_threshold <= 1:
            raise ValueError("thresholds must satisfy 0 <= reject <= accept <= 1")


def confidence(spans: list[Span], hallucinated: int, excerpts: int, coverage: float, target: float) -> float:
    covered = sum(span.end - span.start for span in spans)
    quality = sum(span.score * (span.end - span.start) for span in spans) / covered if covered else 0.0
    grounded = 1.0 - hallucinated / excerpts if excerpts else 0.0
    fit = 0.5 + 0.5 * max(0.0, 1.0 - abs(coverage - target) / target)
    return round(max(0.0, min(1.0, quality * grounded * fit)), 4)


def route(policy: RoutingPolicy, *, excerpts: int, hallucinated: int, coverage: float, score: float) -> tuple[Status, str]:
    if excerpts and hallucinated == excerpts:
        return "rejected", "all_hallucinated"
    if coverage > policy.max_coverage:
        return "rejected", "coverage_above_max"
    if excerpts == 0:
        return "review", "no_spans"
    if coverage < policy.min_coverage:
        return "review", "coverage_below_min"
    if score < policy.reject_threshold:
        return "rejected", "low_confidence"
    if score < policy.accept_threshold:
        return "review", "low_confidence"
    return "accepted", "ok"
