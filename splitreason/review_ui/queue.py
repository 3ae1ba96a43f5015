"""The review queue: which traces one reviewer sees, in which order, and how far they are.

Traces with status "review" (or every annotation with `status="all"`), lowest confidence
first (ties by trace id, so the order is stable). A trace counts as done when this reviewer
has a decision on it in OUT/review.sqlite, through either review path (the merge policy
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
        return [{
            "trace_id": trace_id,
            "confidence": self._annotations[trace_id].confidence,
            "status": self._annotations[trace_id].status,
            "spans": len(self._annotations[trace_id].spans),
            "decision": self.decisions[trace_id].decision if trace_id in self.decisions else None,
        } for trace_id in self.order]
