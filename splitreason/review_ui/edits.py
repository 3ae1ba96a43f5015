"""A reviewer's work in progress on one trace: the spans they have now and how they got there.

The browser sends one edit at a time (add, remove, resize, reset); the server checks it against
the trace, applies it to the working copy and appends a `ReviewEdit`-shaped entry to the
history. Offsets are Python code points (end exclusive) everywhere here; the page converts
from the browser's UTF-16 positions before it sends anything. Span text is never taken from
the request: it is re-derived from the trace.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from splitreason.schemas.annotation import Annotation
from splitreason.schemas.review import Review, ReviewEdit, ReviewedSpan

EDIT_ACTIONS = ("add", "remove", "resize", "reset")


class ReviewRequestError(ValueError):
    """A request the review UI refuses; the message says why (sent back as a 4xx JSON error)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def _offset(body: dict[str, Any], name: str) -> int:
    value = body.get(name)
    # bool is an int in Python; `true` is not an offset.
    if not isinstance(value, int) or isinstance(value, bool):
        raise ReviewRequestError(f"{name} must be an integer code-point offset")
    return value


def check_offsets(trace: str, start: int, end: int) -> tuple[int, int]:
    if not 0 <= start < end <= len(trace):
        raise ReviewRequestError(f"span {start}:{end} is not inside the trace (0 <= start < end <= {len(trace)})")
    return start, end


def _overlapping(spans: list[tuple[int, int]], start: int, end: int) -> tuple[int, int] | None:
    for other in spans:
        if start < other[1] and other[0] < end:
            return other
    return None


@dataclass
class WorkingCopy:
    """The spans a reviewer has now (sorted, non-overlapping) and the edits that led to them."""

    spans: list[tuple[int, int]]
    history: list[ReviewEdit] = field(default_factory=list)

    def to_draft(self) -> dict[str, Any]:
        """The record kept in ReviewStore's drafts table."""
        return {"spans": [{"start": s, "end": e} for s, e in self.spans],
                "history": [edit.model_dump(mode="json") for edit in self.history]}

    @classmethod
    def from_draft(cls, trace: str, record: dict[str, Any]) -> WorkingCopy:
        """Rebuild a saved draft, checking it still fits the trace (raises ReviewRequestError if not)."""
        try:
            spans = [check_offsets(trace, int(item["start"]), int(item["end"])) for item in record["spans"]]
            history = [ReviewEdit.model_validate(item) for item in record.get("history", [])]
        except (KeyError, TypeError, ValueError) as error:
            raise ReviewRequestError(f"saved draft does not fit the trace: {error}") from error
        spans.sort()
        if any(a[1] > b[0] for a, b in zip(spans, spans[1:])):
            raise ReviewRequestError("saved draft has overlapping spans")
        return cls(spans=spans, history=history)

    def apply(self, trace: str, judge_spans: list[tuple[int, int]], body: dict[str, Any], at: datetime) -> None:
        """Apply one edit request (already parsed JSON) or raise ReviewRequestError without changing anything."""
        action = body.get("action")
        if action not in EDIT_ACTIONS:
            raise ReviewRequestError(f"action must be one of {', '.join(EDIT_ACTIONS)}")
        if action == "reset":
            self.spans = list(judge_spans)
            self.history.append(ReviewEdit(action="reset", at=at))
            return
        if action in ("remove", "resize"):
            previous = (_offset(body, "previous_start"), _offset(body, "previous_end"))
            if previous not in self.spans:
                raise ReviewRequestError(f"there is no span {previous[0]}:{previous[1]} on this trace now", 409)
            others = [span for span in self.spans if span != previous]
        else:
            previous = None
            others = list(self.spans)
        if action == "remove":
            self.spans = others
            self.history.append(ReviewEdit(action="remove", at=at, previous_start=previous[0],
                                           previous_end=previous[1]))
            return
        start, end = check_offsets(trace, _offset(body, "start"), _offset(body, "end"))
        clash = _overlapping(others, start, end)
        if clash is not None:
            raise ReviewRequestError(f"span {start}:{end} overlaps span {clash[0]}:{clash[1]}", 409)
        self.spans = sorted([*others, (start, end)])
        self.history.append(ReviewEdit(
            action=action, at=at, start=start, end=end,
            previous_start=previous[0] if previous else None, previous_end=previous[1] if previous else None,
        ))


def judge_offsets(annotation: Annotation) -> list[tuple[int, int]]:
    return [(span.start, span.end) for span in annotation.spans]


def reviewed_spans(trace: str, spans: list[tuple[int, int]]) -> list[ReviewedSpan]:
    return [ReviewedSpan(start=start, end=end, text=trace[start:end]) for start, end in spans]


def build_review(annotation: Annotation, working: WorkingCopy, reviewer: str, decision: str,
                 at: datetime) -> Review:
    """The final record of one decision: the working spans, the judge's spans, and the history."""
    action = {"accepted": "accept", "rejected": "reject"}[decision]
    return Review(
        trace_id=annotation.trace_id,
        reviewer=reviewer,
        origin="ui",
        decision=decision,
        spans=reviewed_spans(annotation.trace, working.spans),
        judge_spans=reviewed_spans(annotation.trace, judge_offsets(annotation)),
        judge_confidence=annotation.confidence,
        reviewed_at=at,
        history=[*working.history, ReviewEdit(action=action, at=at)],
    )
