"""Confidence and routing: every trace ends as accepted, review or rejected, with a reason.

Confidence in [0, 1] multiplies four factors:

    quality   = length-weighted mean alignment score of the spans: 1.0 for exact quotes, the
                fuzzy score for near quotes, 0.5 x cosine similarity for paraphrases found by
                semantic rescue (so at most 0.5)
    grounded  = (1 - hallucinated_excerpts / excerpts)^2    (over every sample; squared: one quote
                in 6 that is not in the trace already costs 30 % of the confidence)
    fit       = 1 - 0.5 * min(1, (ln(coverage / target) / ln 3)^2)     (0.5 for no coverage)
                symmetric in the ratio and flat near the target: 1.5x or 1/1.5 of the target
                gives 0.93, 2x 0.80, 3x or 1/3 (and beyond) 0.5
    agree     = mean pairwise character F1 between the samples / judges (1 for a single sample;
                a sample without a usable answer agrees with nothing)

    confidence = quality * grounded * fit * agree

Routing, first rule that applies:
    all excerpts hallucinated           -> rejected  all_hallucinated
    coverage > max_coverage             -> rejected  coverage_above_max
    agree < min_agreement               -> review    samples_disagree
    judge returned no excerpts          -> review    no_spans
    coverage < min_coverage             -> review    coverage_below_min
    confidence < reject_threshold       -> rejected  low_confidence
    a span found by semantic rescue     -> review    semantic_match
    an answer cut at max_tokens         -> review    truncated_answer
    confidence < accept_threshold       -> review    low_confidence
    otherwise                           -> accepted  ok
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from splitreason.schemas import Span, Status
from splitreason.schemas.annotate import AnnotateSettings as _S

#: Coverage this many times the target, or 1/this of it, gives fit 0.5 (and never less).
FIT_HALF_AT = 3.0


@dataclass(frozen=True)
class RoutingPolicy:
    """The routing settings of `AnnotateSettings` (defaults there), checked against each other."""

    target_coverage: float = _S.default("target_coverage")
    min_coverage: float = _S.default("min_coverage")
    max_coverage: float = _S.default("max_coverage")
    accept_threshold: float = _S.default("accept_threshold")
    reject_threshold: float = _S.default("reject_threshold")
    min_agreement: float = _S.default("min_agreement")

    def __post_init__(self) -> None:
        if not 0 < self.target_coverage < 1:
            raise ValueError("target coverage must be between 0 and 1")
        if not 0 <= self.min_coverage <= self.target_coverage <= self.max_coverage <= 1:
            raise ValueError("coverage bounds must satisfy 0 <= min <= target <= max <= 1")
        if not 0 <= self.reject_threshold <= self.accept_threshold <= 1:
            raise ValueError("thresholds must satisfy 0 <= reject <= accept <= 1")
        if not 0 <= self.min_agreement <= 1:
            raise ValueError("minimum agreement must be between 0 and 1")


def confidence(spans: list[Span], hallucinated: int, excerpts: int, coverage: float, target: float,
               agreement: float | None = None) -> float:
    covered = sum(span.end - span.start for span in spans)
    quality = sum(span.score * (span.end - span.start) for span in spans) / covered if covered else 0.0
    grounded = (1.0 - hallucinated / excerpts) ** 2 if excerpts else 0.0
    fit = 1.0 - 0.5 * min(1.0, (math.log(coverage / target) / math.log(FIT_HALF_AT)) ** 2) if coverage > 0 else 0.5
    agree = 1.0 if agreement is None else agreement
    return round(max(0.0, min(1.0, quality * grounded * fit * agree)), 4)


def route(policy: RoutingPolicy, *, excerpts: int, hallucinated: int, coverage: float, score: float,
          agreement: float | None = None, semantic: bool = False, truncated: bool = False) -> tuple[Status, str]:
    if excerpts and hallucinated == excerpts:
        return "rejected", "all_hallucinated"
    if coverage > policy.max_coverage:
        return "rejected", "coverage_above_max"
    if agreement is not None and agreement < policy.min_agreement:
        return "review", "samples_disagree"
    if excerpts == 0:
        return "review", "no_spans"
    if coverage < policy.min_coverage:
        return "review", "coverage_below_min"
    if score < policy.reject_threshold:
        return "rejected", "low_confidence"
    if semantic:  # a span found by meaning is a guess for a person to check, never accepted unseen
        return "review", "semantic_match"
    if truncated:  # its finished spans are kept, but what the cut lost is unknown: a person checks it
        return "review", "truncated_answer"
    if score < policy.accept_threshold:
        return "review", "low_confidence"
    return "accepted", "ok"
