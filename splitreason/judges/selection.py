"""Fill a target coverage with the best-scoring steps: the selection every span-marking judge
shares (the heuristic judge with its rule scores, the model-grounded judges with a model's).

Greedy, best score first (ties by position). A chosen step joins its chosen neighbours (only
whitespace between, see `Steps.link`) while the span stays within `max_span_chars`; otherwise it
starts a span of its own. A step that would overshoot the target is taken only if it brings the
coverage closer to the target and, in a first pass, keeps it within `overshoot` of it; a second
pass, when the first falls short (every remaining step is too long), drops that last condition.
Steps scoring 0 or less are never chosen.
"""

from __future__ import annotations

from collections.abc import Sequence

from splitreason.judges.steps import Steps

__all__ = ["DEFAULT_OVERSHOOT", "fill_target"]

DEFAULT_OVERSHOOT = 0.1  # the first pass stays within target * (1 + overshoot)


def fill_target(steps: Steps, scores: Sequence[float], target: float, *, max_span_chars: int,
                overshoot: float = DEFAULT_OVERSHOOT) -> list[tuple[int, int]]:
    """The chosen spans as runs of steps `(first, last)` (inclusive, sorted), covering about
    `target` characters."""
    starts, ends, link = steps.starts, steps.ends, steps.link
    n = len(starts)
    # sorted is stable, so ties go by position
    order = sorted(range(n), key=scores.__getitem__, reverse=True)
    chosen = bytearray(n)
    joined = bytearray(n)  # joined[i]: step i is in the same span as step i-1
    run_lo = list(range(n))  # at the last step of a span: its first step
    run_hi = list(range(n))  # at the first step of a span: its last step
    upper = target * (1.0 + overshoot)
    covered = 0
    for closest in (False, True):
        for i in order:
            if scores[i] <= 0.0:
                break  # the rest score no better: featureless steps are never chosen
            if chosen[i] or ends[i] - starts[i] > max_span_chars:
                continue  # (a single unbreakable token longer than the cap)
            first = last = i
            if i > 0 and chosen[i - 1] and link[i] and ends[i] - starts[run_lo[i - 1]] <= max_span_chars:
                first = run_lo[i - 1]
            if i + 1 < n and chosen[i + 1] and link[i + 1] and ends[run_hi[i + 1]] - starts[first] <= max_span_chars:
                last = run_hi[i + 1]
            added = ends[last] - starts[first]
            if first < i:
                added -= ends[i - 1] - starts[first]
            if last > i:
                added -= ends[last] - starts[i + 1]
            new_covered = covered + added
            if new_covered > target and (
                new_covered - target >= target - covered or (new_covered > upper and not closest)
            ):
                continue  # overshoots by more than it helps (or, in the first pass, too far)
            chosen[i] = 1
            if first < i:
                joined[i] = 1
            if last > i:
                joined[i + 1] = 1
            run_hi[first] = last
            run_lo[last] = first
            covered = new_covered
            if covered >= target:
                break
        if covered >= target:
            break

    runs: list[tuple[int, int]] = []
    i = chosen.find(1)
    while i >= 0:
        j = i
        while j + 1 < n and joined[j + 1]:  # joined implies chosen
            j += 1
        runs.append((i, j))
        i = chosen.find(1, j + 1)
    return runs
