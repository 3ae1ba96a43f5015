"""Character-level agreement between span sets, and majority-vote consensus.

A span set is a list of (start, end) offsets into one trace (end exclusive). Judge samples,
two judges, several reviewers, or a reviewer against the judge all compare the same way:

    F1(A, B) = 2 |A ∩ B| / (|A| + |B|)      over the characters covered by each set

(F1 rather than IoU: one missing short span costs both the same, but F1 does not square the
penalty when both sets are small.) Two empty sets agree fully (F1 = 1): both say "nothing
here is difficult".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import combinations

Offsets = Sequence[tuple[int, int]]


def _normalised(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, merged, non-empty intervals."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted((int(s), int(e)) for s, e in spans if e > s):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def covered(spans: Offsets) -> int:
    return sum(end - start for start, end in _normalised(spans))


def overlap(a: Offsets, b: Offsets) -> int:
    """Characters inside both span sets (two-pointer sweep over the merged intervals)."""
    left, right = _normalised(a), _normalised(b)
    i = j = total = 0
    while i < len(left) and j < len(right):
        start = max(left[i][0], right[j][0])
        end = min(left[i][1], right[j][1])
        if end > start:
            total += end - start
        if left[i][1] <= right[j][1]:
            i += 1
        else:
            j += 1
    return total


def char_f1(a: Offsets, b: Offsets) -> float:
    size = covered(a) + covered(b)
    if size == 0:
        return 1.0
    return 2 * overlap(a, b) / size


def mean_pairwise_f1(span_sets: Sequence[Offsets | None]) -> float | None:
    """Mean F1 over every pair of sets; None when there are fewer than two.

    A `None` set stands for a sample that gave no usable answer: it agrees with nothing (F1 0),
    so a judge that fails half the time cannot look consistent.
    """
    if len(span_sets) < 2:
        return None
    scores = [0.0 if a is None or b is None else char_f1(a, b) for a, b in combinations(span_sets, 2)]
    return sum(scores) / len(scores)


def vote_regions(span_sets: Sequence[Offsets], min_votes: int) -> list[tuple[int, int]]:
    """Maximal runs of characters that at least `min_votes` of the sets cover.

    A sweep over start/end events: O(total spans · log) whatever the trace length.
    """
    if min_votes < 1:
        raise ValueError("min_votes must be at least 1")
    events: list[tuple[int, int]] = []
    for spans in span_sets:
        for start, end in _normalised(spans):  # a set votes once per character, however it overlaps itself
            events.append((start, 1))
            events.append((end, -1))
    events.sort()
    regions: list[tuple[int, int]] = []
    votes = 0
    opened: int | None = None
    for position, delta in events:
        before = votes
        votes += delta
        if before < min_votes <= votes:
            opened = position
        elif votes < min_votes <= before and opened is not None:
            if position > opened:
                if regions and regions[-1][1] == opened:
                    regions[-1] = (regions[-1][0], position)
                else:
                    regions.append((opened, position))
            opened = None
    return regions


def majority(span_sets: Sequence[Offsets]) -> list[tuple[int, int]]:
    """Characters covered by more than half of the sets (the consensus of judge samples)."""
    return vote_regions(span_sets, len(span_sets) // 2 + 1) if span_sets else []
