"""Human review records: one reviewer's decision on one trace, and the reconciled outcome.

Both review paths (Argilla, and the built-in review UI) produce the same `Review` record, kept
in OUT/review.sqlite; export and stats read the reconciled `ReviewOutcome` of each trace.
Offsets are Python code points, like every span in splitreason (Argilla's UTF-16 offsets are
converted at the boundary).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from splitreason.schemas.annotation import TextSpan

Decision = Literal["accepted", "rejected"]
ReviewOrigin = Literal["ui", "argilla"]
EditAction = Literal["add", "remove", "resize", "accept", "reject", "reset"]


class ReviewedSpan(TextSpan):
    """A span a reviewer kept or drew: offsets into the trace (end exclusive) and its text."""


class ReviewEdit(BaseModel):
    """One step of a reviewer's work on a trace, in the order it happened."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: EditAction
    at: datetime = Field(description="When the step was made (UTC).")
    start: int | None = Field(default=None, description="The span's offsets after the step (add, resize).")
    end: int | None = None
    previous_start: int | None = Field(default=None, description="The span's offsets before (remove, resize).")
    previous_end: int | None = None


class Review(BaseModel):
    """A reviewed annotation: one reviewer's final decision on one trace."""

    model_config = ConfigDict(extra="forbid")

    trace_id: str
    reviewer: str = Field(min_length=1, description="Who reviewed (Argilla user name, or --reviewer in the UI).")
    origin: ReviewOrigin = Field(description="Which review path produced the record.")
    decision: Decision = Field(description="accepted: train on it with `spans`; rejected: keep it out of training.")
    spans: list[ReviewedSpan] = Field(default_factory=list, description="The spans the reviewer settled on, sorted.")
    judge_spans: list[ReviewedSpan] = Field(default_factory=list, description="The judge's spans the reviewer was shown.")
    judge_confidence: float | None = Field(default=None, ge=0.0, le=1.0, description="The annotation's confidence then.")
    reviewed_at: datetime = Field(description="When the decision was submitted (UTC).")
    history: list[ReviewEdit] = Field(default_factory=list, description="The edits that led to the decision.")

    @model_validator(mode="after")
    def _check_spans(self) -> Review:
        previous_end = 0
        for span in self.spans:
            if span.start < previous_end:
                raise ValueError("reviewed spans overlap or are not sorted")
            previous_end = span.end
        return self

    @property
    def changed(self) -> bool:
        """Whether the reviewer did anything but accept the judge's spans as they were."""
        offsets = [(s.start, s.end) for s in self.spans]
        return self.decision == "rejected" or offsets != [(s.start, s.end) for s in self.judge_spans]


class ReviewOutcome(BaseModel):
    """What the reviews of one trace decide, reconciled by the policy in review/reconcile.py."""

    model_config = ConfigDict(extra="forbid")

    trace_id: str
    decision: Decision
    spans: list[ReviewedSpan] = Field(default_factory=list)
    reviewers: list[str] = Field(description="Everyone whose review counted, sorted.")
    decision_agreement: float = Field(ge=0.0, le=1.0, description="Share of reviewers who made the reconciled decision.")
    span_agreement: float | None = Field(default=None, ge=0.0, le=1.0,
                                         description="Mean pairwise character F1 of accepting reviewers' spans "
                                                     "(None with fewer than two).")
    judge_agreement: float = Field(ge=0.0, le=1.0, description="Character F1 of the reconciled spans against the judge's.")
    changed: bool = Field(description="Whether the outcome differs from the judge's annotation.")


def spans_after_review(annotation, outcome: ReviewOutcome | None,
                       statuses: frozenset[str] = frozenset({"accepted"})) -> list | None:
    """The spans a trace is used with downstream, or None when it is left out: human review wins (a
    trace rejected in review is left out, a reviewed one keeps the reconciled reviewed spans whatever
    its status); an unreviewed trace keeps the judge's spans when its status is in `statuses`.
    export writes by this rule, `report` counts by it and `evaluate labels` scores by it."""
    if outcome is not None:
        return None if outcome.decision == "rejected" else outcome.spans
    return annotation.spans if annotation.status in statuses else None
