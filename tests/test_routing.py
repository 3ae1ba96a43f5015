"""The routing rules and the confidence formula, one behaviour each (the README documents both)."""

from __future__ import annotations

import pytest

from splitreason.annotator.routing import RoutingPolicy, confidence, route
from splitreason.schemas import Span

POLICY = RoutingPolicy(target_coverage=0.15)


def _span(score: float, match: str = "exact", length: int = 100) -> Span:
    return Span(start=0, end=length, text="x" * length, score=score, match=match)


@pytest.mark.parametrize("coverage, fit", [(0.15, 1.0), (0.225, 0.932), (0.10, 0.932), (0.30, 0.80), (0.45, 0.5),
                                           (0.6, 0.5), (0.0, 0.5)])
def test_coverage_fit_is_symmetric_in_the_ratio_and_flat_near_the_target(coverage, fit):
    spans = [_span(1.0)] if coverage else []
    quality = 1.0 if coverage else 0.0
    assert confidence(spans, 0, 1, coverage, 0.15) == pytest.approx(quality * fit, abs=2e-3)


def test_one_bad_quote_in_six_costs_about_thirty_percent():
    assert confidence([_span(1.0)], 1, 6, 0.15, 0.15) == pytest.approx((5 / 6) ** 2, abs=1e-4)


def test_a_semantic_span_sends_a_confident_trace_to_review():
    assert route(POLICY, excerpts=3, hallucinated=0, coverage=0.15, score=0.9) == ("accepted", "ok")
    assert route(POLICY, excerpts=3, hallucinated=0, coverage=0.15, score=0.9, semantic=True) == ("review", "semantic_match")
    assert route(POLICY, excerpts=3, hallucinated=0, coverage=0.15, score=0.9, truncated=True) == ("review", "truncated_answer")
    assert route(POLICY, excerpts=3, hallucinated=0, coverage=0.15, score=0.1, truncated=True) == ("rejected", "low_confidence")
    # ... but a trace that is bad anyway is still rejected
    assert route(POLICY, excerpts=3, hallucinated=0, coverage=0.15, score=0.2, semantic=True) == ("rejected", "low_confidence")
