"""How several reviews of one trace are reconciled into one outcome (the documented policy; not
to be confused with `splitreason merge`, which combines shard runs, or the annotator's span
consensus over judge samples).

- Each reviewer counts once: their latest review (by `reviewed_at`) wins, whichever path
  (UI or Argilla) it came through.
- Decision: the majority of reviewers. A tie is `rejected`: a trace people disagree about is
  kept out of training until someone settles it.
- Spans: characters marked by at least half of the reviewers who accepted (one reviewer: their
  spans; two: the union, so a span either of them found difficult is offloaded; three: two
  votes).
- Agreement: the share of reviewers who made the merged decision, and the mean pairwise
  character F1 of the accepting reviewers' spans (see splitreason/agreement.py).
"""

from __future__ import annotations

from collections.abc import Sequence

from splitreason.agreement import char_f1, mean_pairwise_f1, vote_regions
from splitreason.schemas.review import Review, ReviewedSpan, ReviewOutcome


def offsets(spans: Sequence[ReviewedSpan]) -> list[tuple[int, int]]:
    return [(span.start, span.end) for span in spans]


def spans_from_offsets(trace: str, regions: Sequence[tuple[int, int]]) -> list[ReviewedSpan]:
    return [ReviewedSpan(start=start, end=end, text=trace[start:end]) for start, end in regions]


def latest_per_reviewer(reviews: Sequence[Review]) -> list[Review]:
    latest: dict[str, Review] = {}
    for review in sorted(reviews, key=lambda r: r.reviewed_at):
        latest[review.reviewer] = review
    return [latest[name] for name in sorted(latest)]


def reconcile_reviews(trace: str, reviews: Sequence[Review]) -> ReviewOutcome:
    if not reviews:
        raise ValueError("reconcile_reviews needs at least one review")
    counted = latest_per_reviewer(reviews)
    accepting = [review for review in counted if review.decision == "accepted"]
    decision = "accepted" if 2 * len(accepting) > len(counted) else "rejected"
    majority_size = len(accepting) if decision == "accepted" else len(counted) - len(accepting)
    judge = offsets(counted[-1].judge_spans)
    spans: list[ReviewedSpan] = []
    if decision == "accepted":
        needed = (len(accepting) + 1) // 2
        spans = spans_from_offsets(trace, vote_regions([offsets(r.spans) for r in accepting], needed))
    return ReviewOutcome(
        trace_id=counted[0].trace_id,
        decision=decision,
        spans=spans,
        reviewers=[review.reviewer for review in counted],
        decision_agreement=majority_size / len(counted),
        span_agreement=mean_pairwise_f1([offsets(r.spans) for r in accepting]),
        judge_agreement=char_f1(offsets(spans), judge) if decision == "accepted" else 0.0,
        changed=decision == "rejected" or offsets(spans) != judge,
    )
