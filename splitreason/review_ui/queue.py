"""The review queue: which traces one reviewer sees, in which order, and how far they are.

Traces with status "review" (or every annotation with `status="all"`), lowest confidence
first (ties by trace id, so the order is stable). A trace counts as done when this reviewer
has a decision on it in OUT/review.sqlite, through either review path (review/reconcile.py
counts a reviewer's latest review whichever path it came through). Skipped traces stay in
the queue.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from splitreason.review_ui.edits import ReviewRequestError
from splitreason.schemas.annotation import Annotation
from splitreason.schemas.review import Review
from splitreason.schemas.trace import MAX_TRACE_ID_CHARS

QueueStatus = Literal["review", "all"]
#: What each routing reason (annotator/routing.py) means, said for a reviewer.
REASONS = {
    "ok": "accepted by the routing rules",
    "low_confidence": "low confidence",
    "samples_disagree": "the judge's samples disagree",
    "no_spans": "the judge marked no span",
    "coverage_below_min": "spans cover too little of the trace",
    "coverage_above_max": "spans cover too much of the trace",
    "semantic_match": "a span was found by meaning, not quoted",
    "truncated_answer": "the judge's answer was cut at max_tokens (its finished spans are kept)",
    "all_hallucinated": "every quote is missing from the trace",
}
#: How much of the problem the queue sends for its snippet (the page shortens it further).
SNIPPET_POINTS = 300


def reason_text(status_reason: str) -> str:
    """A routing reason for a reviewer; a judge failure ("parse_error: detail") says it failed."""
    code, _, detail = status_reason.partition(":")
    if code in REASONS:
        return REASONS[code]
    return f"the judge failed ({code}{': ' + detail.strip() if detail.strip() else ''})"


@dataclass(frozen=True)
class Progress:
    total: int
    reviewed: int
    accepted: int
    rejected: int

    @property
    def remaining(self) -> int:
        return self.total - self.reviewed

    def as_dict(self) -> dict[str, int]:
        return {"total": self.total, "reviewed": self.reviewed, "remaining": self.remaining,
                "accepted": self.accepted, "rejected": self.rejected}


class ReviewQueue:
    def __init__(self, annotations: Iterable[Annotation], status: QueueStatus, own_reviews: Iterable[Review]):
        if status not in ("review", "all"):
            raise ReviewRequestError(f"status must be review or all, not {status!r}")
        self._annotations: dict[str, Annotation] = {}
        for annotation in annotations:
            if status == "all" or annotation.status == "review":
                self._annotations.setdefault(annotation.trace_id, annotation)
        self.order: list[str] = sorted(self._annotations,
                                       key=lambda trace_id: (self._annotations[trace_id].confidence, trace_id))
        self._position = {trace_id: index for index, trace_id in enumerate(self.order)}
        # The latest decision per trace (a reviewer deciding again replaces the earlier one).
        self.decisions: dict[str, Review] = {}
        for review in sorted(own_reviews, key=lambda r: r.reviewed_at):
            if review.trace_id in self._annotations:
                self.decisions[review.trace_id] = review

    def __len__(self) -> int:
        return len(self.order)

    def get(self, trace_id: object) -> Annotation:
        """The annotation for a trace id that came from a request; 404 unless it is in this queue."""
        if not isinstance(trace_id, str) or not trace_id or len(trace_id) > MAX_TRACE_ID_CHARS:
            raise ReviewRequestError(f"trace_id must be a non-empty string of at most {MAX_TRACE_ID_CHARS} "
                                     "characters")
        annotation = self._annotations.get(trace_id)
        if annotation is None:
            raise ReviewRequestError("no trace with this id in the review queue", 404)
        return annotation

    def position(self, trace_id: str) -> int:
        return self._position[trace_id]

    def record(self, review: Review) -> None:
        self.decisions[review.trace_id] = review

    def progress(self) -> Progress:
        decisions = [review.decision for review in self.decisions.values()]
        return Progress(total=len(self.order), reviewed=len(decisions),
                        accepted=decisions.count("accepted"), rejected=decisions.count("rejected"))

    def next_undecided(self, after: str | None = None) -> str | None:
        """The first undecided trace after `after` (wrapping round), or from the top; None when all are done."""
        start = self._position[after] + 1 if after is not None else 0
        for step in range(len(self.order)):
            trace_id = self.order[(start + step) % len(self.order)]
            if trace_id not in self.decisions and trace_id != after:
                return trace_id
        return None

    def items(self) -> list[dict]:
        """One entry per trace in queue order: why it is here, and the beginning of its problem."""
        return [self._item(self._annotations[trace_id]) for trace_id in self.order]

    def _item(self, annotation: Annotation) -> dict:
        decision = self.decisions.get(annotation.trace_id)
        return {
            "trace_id": annotation.trace_id,
            "confidence": annotation.confidence,
            "status": annotation.status,
            "reason": annotation.status_reason,
            "reason_text": reason_text(annotation.status_reason),
            "problem": annotation.problem[:SNIPPET_POINTS],
            "spans": len(annotation.spans),
            "decision": None if decision is None else decision.decision,
        }
