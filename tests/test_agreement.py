"""Character-level agreement and majority votes, checked against brute-force character sets."""

from __future__ import annotations

import random

import pytest

from splitreason.agreement import char_f1, majority, mean_pairwise_f1, overlap, vote_regions
from splitreason.annotator.consensus import consensus_spans
from splitreason.schemas import Span


def _chars(spans):
    return {i for start, end in spans for i in range(start, end)}


def _regions(chars):
    regions = []
    for i in sorted(chars):
        if regions and regions[-1][1] == i:
            regions[-1] = (regions[-1][0], i + 1)
        else:
            regions.append((i, i + 1))
    return regions


def _random_spans(rng, length=200, most=6):
    spans = []
    for _ in range(rng.randint(0, most)):
        start = rng.randrange(length - 1)
        spans.append((start, min(length, start + rng.randint(1, 40))))
    return spans


def test_f1_overlap_and_votes_match_brute_force():
    rng = random.Random(7)
    for _ in range(300):
        sets = [_random_spans(rng) for _ in range(rng.randint(1, 5))]
        a, b = sets[0], sets[-1]
        assert overlap(a, b) == len(_chars(a) & _chars(b))
        size = len(_chars(a)) + len(_chars(b))
        assert char_f1(a, b) == pytest.approx(1.0 if size == 0 else 2 * len(_chars(a) & _chars(b)) / size)
        for needed in range(1, len(sets) + 1):
            votes = [sum(i in _chars(s) for s in sets) for i in range(200)]
            assert vote_regions(sets, needed) == _regions({i for i, v in enumerate(votes) if v >= needed})


def test_agreement_edge_cases():
    assert char_f1([], []) == 1.0  # both say nothing is difficult
    assert char_f1([(0, 10)], []) == 0.0
    assert mean_pairwise_f1([[(0, 10)]]) is None  # one sample: nothing to compare
    assert mean_pairwise_f1([[(0, 10)], [(0, 10)], None]) == pytest.approx(1 / 3)
    assert majority([[(0, 10)], [(5, 15)], [(8, 20)]]) == [(5, 15)]
    with pytest.raises(ValueError):
        vote_regions([[(0, 1)]], 0)


def test_consensus_span_takes_weighted_score_reasons_and_worst_match():
    text = "abcdefghijklmnopqrstuvwxyz" * 2
    a = [Span(start=0, end=10, text=text[0:10], score=1.0, reason="algebra", match="exact")]
    b = [Span(start=5, end=15, text=text[5:15], score=0.9, reason="insight", match="fuzzy")]
    c = [Span(start=40, end=45, text=text[40:45], score=1.0, reason="lonely")]
    (span,) = consensus_spans(text, [a, b, c])
    assert (span.start, span.end, span.text) == (5, 10, text[5:10])
    assert span.score == pytest.approx(0.95) and span.match == "fuzzy"
    assert span.reason == "algebra; insight"
    assert consensus_spans(text, [a]) == a  # a single sample is taken as it is
