"""Several judge samples of one trace become one suggestion: a majority vote over characters.

Each sample's spans are aligned on their own; a character is in the consensus when more than
half of the samples that gave a usable answer cover it. A consensus span takes, from the sample
spans that overlap it, the overlap-weighted mean score, their distinct reasons and the worst
match kind, so a region only one fuzzy quote supports never looks exact.
"""

from __future__ import annotations

from collections.abc import Sequence

from splitreason.agreement import majority
from splitreason.schemas.annotation import MATCH_RANK, Span

_MAX_REASONS = 3


def consensus_spans(trace: str, sample_spans: Sequence[Sequence[Span]]) -> list[Span]:
    if len(sample_spans) == 1:
        return list(sample_spans[0])
    regions = majority([[(span.start, span.end) for span in spans] for spans in sample_spans])
    every = sorted((span for spans in sample_spans for span in spans), key=lambda span: span.start)
    return [_region_span(trace, start, end, every) for start, end in regions]


def _region_span(trace: str, start: int, end: int, spans: Sequence[Span]) -> Span:
    weight = 0
    score = 0.0
    reasons: list[str] = []
    match = "exact"
    for span in spans:
        if span.start >= end:
            break
        inside = min(end, span.end) - max(start, span.start)
        if inside <= 0:
            continue
        weight += inside
        score += span.score * inside
        reason = span.reason.strip()
        if reason and reason not in reasons and len(reasons) < _MAX_REASONS:
            reasons.append(reason)
        if MATCH_RANK[span.match] < MATCH_RANK[match]:
            match = span.match
    return Span(start=start, end=end, text=trace[start:end], score=round(min(1.0, score / weight), 4),
                reason="; ".join(reasons), match=match)
