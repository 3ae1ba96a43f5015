"""Does confidence mean something? Compare the judge's confidence with what reviewers changed.

A reviewed trace is *changed* when the reconciled reviews (review/reconcile.py) differ from the judge:
rejected, or other spans. For each threshold t the report gives, among reviewed traces, how
many have confidence >= t and how often they were changed, and the same below t, each rate with
a 95% Wilson interval (it stays wide for small counts instead of claiming 0% or 100%).

Budget suggestion: to send a share b of the judged annotations to review, review those with
confidence below t = the (floor(b*N)+1)-th smallest confidence of the N judged annotations
(judge failures are rejected outright and are never review candidates). Traces at or above t
skip review; their change rate is estimated from the reviewed traces at or above t, and the
expected number of changed traces missed is that rate times how many skip review. That
estimate is only as good as those reviewed traces: when few or none lie above t (usual when
only the router's low-confidence traces were reviewed), the report says so instead of guessing.

Rank correlation: AUC = P(confidence of an unchanged trace > confidence of a changed one),
ties counting half (Mann-Whitney); 0.5 means confidence says nothing about reviewer edits.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from splitreason.schemas import Annotation
from splitreason.errors import UsageError

Z_95 = 1.959963984540054
DEFAULT_THRESHOLDS = tuple(i / 10 for i in range(10))
MIN_EVIDENCE = 20  # fewer reviewed traces above a threshold than this: the rate is called uncertain
RANDOM_SAMPLE_HINT = ("review a random sample of accepted traces to measure it "
                      "(e.g. `splitreason review push OUT --status all …`)")


class JudgedTrace(NamedTuple):
    """What calibration reads of an annotation (an `Annotation` serves as well)."""

    trace_id: str
    confidence: float
    status: str
    status_reason: str


class CalibrateError(UsageError, ValueError):
    """The run cannot be calibrated as asked (no annotations, no reviews, bad options)."""


def is_judged(annotation: Annotation | JudgedTrace) -> bool:
    """Judge failures carry no judge confidence: they are rejected, never sent to review."""
    return not annotation.status_reason.startswith("judge_")


def wilson_interval(changed: int, n: int, z: float = Z_95) -> tuple[float, float] | None:
    if n == 0:
        return None
    p = changed / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def rank_auc(unchanged: Sequence[float], changed: Sequence[float]) -> float | None:
    """Mann-Whitney AUC of confidence for "unchanged" against "changed" (average ranks for ties)."""
    if not unchanged or not changed:
        return None
    values = sorted([(c, True) for c in unchanged] + [(c, False) for c in changed])
    rank_sum, i = 0.0, 0
    while i < len(values):
        j = i
        while j < len(values) and values[j][0] == values[i][0]:
            j += 1
        average_rank = (i + 1 + j) / 2  # ranks i+1 .. j share their mean
        rank_sum += average_rank * sum(1 for _, positive in values[i:j] if positive)
        i = j
    n_pos, n_neg = len(unchanged), len(changed)
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


@dataclass(frozen=True)
class ChangeRate:
    """How many reviewed traces, how many of them changed, and the rate with its 95% interval."""

    traces: int
    changed: int

    @property
    def rate(self) -> float | None:
        return self.changed / self.traces if self.traces else None

    @property
    def interval(self) -> tuple[float, float] | None:
        return wilson_interval(self.changed, self.traces)

    def as_dict(self) -> dict[str, Any]:
        interval = self.interval
        return {"traces": self.traces, "changed": self.changed, "rate": _r(self.rate),
                "ci95": [_r(interval[0]), _r(interval[1])] if interval else None}


@dataclass(frozen=True)
class ThresholdRow:
    threshold: float
    above: ChangeRate  # reviewed traces with confidence >= threshold
    below: ChangeRate

    def as_dict(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "above": self.above.as_dict(), "below": self.below.as_dict()}


@dataclass(frozen=True)
class BudgetSuggestion:
    budget: float
    threshold: float | None  # review confidence < threshold; None when nothing was judged
    judged: int
    sent_to_review: int
    skip_review: int
    skipped_change: ChangeRate  # estimated from reviewed traces with confidence >= threshold
    evidence: str  # "none", "few" or "enough"
    message: str

    @property
    def expected_missed(self) -> tuple[float, float, float] | None:
        """Expected changed traces among those that skip review: estimate, low, high."""
        if self.skipped_change.rate is None:
            return None
        low, high = self.skipped_change.interval
        return tuple(x * self.skip_review for x in (self.skipped_change.rate, low, high))

    def as_dict(self) -> dict[str, Any]:
        missed = self.expected_missed
        return {"budget": self.budget, "threshold": self.threshold, "judged": self.judged,
                "sent_to_review": self.sent_to_review,
                "review_share": _r(self.sent_to_review / self.judged) if self.judged else None,
                "skip_review": self.skip_review, "skipped_change": self.skipped_change.as_dict(),
                "expected_missed": _r(missed[0]) if missed else None,
                "expected_missed_ci95": [_r(missed[1]), _r(missed[2])] if missed else None,
                "evidence": self.evidence, "message": self.message}


@dataclass
class Calibration:
    annotations: int
    judged: int
    reviewed: ChangeRate  # reviewed judged traces of this run
    reviewed_accepted: int  # of those, how many the router had accepted
    rows: list[ThresholdRow]
    auc: float | None
    suggestion: BudgetSuggestion
    accept_threshold: float | None = None
    skipped_reviews: dict[str, int] = field(default_factory=dict)  # why some reviews were left out

    def as_dict(self) -> dict[str, Any]:
        return {"annotations": self.annotations, "judged": self.judged, "reviewed": self.reviewed.as_dict(),
                "reviewed_accepted": self.reviewed_accepted, "accept_threshold": self.accept_threshold,
                "auc_unchanged": _r(self.auc), "thresholds": [row.as_dict() for row in self.rows],
                "suggestion": self.suggestion.as_dict(), "skipped_reviews": dict(self.skipped_reviews)}


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _rate(pairs: Iterable[tuple[float, bool]]) -> ChangeRate:
    flags = [changed for _, changed in pairs]
    return ChangeRate(traces=len(flags), changed=sum(flags))


def check_budget(budget: float) -> float:
    if not 0 < budget < 1:  # also false for NaN
        raise CalibrateError(f"--budget must be between 0 and 1 (exclusive), got {budget:g}")
    return budget


def suggest_threshold(judged_confidences: Sequence[float], reviewed: Sequence[tuple[float, bool]],
                      budget: float, min_evidence: int = MIN_EVIDENCE) -> BudgetSuggestion:
    check_budget(budget)
    ordered = sorted(judged_confidences)
    n = len(ordered)
    if n == 0:
        return BudgetSuggestion(budget, None, 0, 0, 0, ChangeRate(0, 0), "none",
                                "no judged annotations: every trace in the run is a judge failure")
    # floor, with a guard against 0.29 * 100 = 28.999…: never exceed the budget by a whole trace.
    k = min(math.floor(budget * n + 1e-9), n - 1)
    threshold = ordered[k]
    sent = sum(1 for c in ordered if c < threshold)  # ties at the threshold all skip review
    skipped = _rate((c, changed) for c, changed in reviewed if c >= threshold)
    if skipped.traces == 0:
        evidence = "none"
        message = (f"no reviewed trace has confidence >= {threshold:g}, so the data cannot say how often the "
                   f"{n - sent} traces that would skip review are wrong; {RANDOM_SAMPLE_HINT}")
    elif skipped.traces < min_evidence:
        evidence = "few"
        low, high = skipped.interval
        message = (f"only {skipped.traces} reviewed traces have confidence >= {threshold:g}: their change rate "
                   f"{skipped.rate:.0%} (95% CI {low:.0%}–{high:.0%}) is uncertain; {RANDOM_SAMPLE_HINT}")
    else:
        evidence = "enough"
        low, high = skipped.interval
        message = (f"traces that skip review were changed {skipped.rate:.1%} of the time when reviewed "
                   f"(95% CI {low:.1%}–{high:.1%}, {skipped.traces} traces)")
    if k == 0:
        message = f"a budget of {budget:g} is less than one of the {n} judged traces; " + message
    elif sent < k:
        message = (f"traces tie at confidence {threshold:g} and all of them skip review, so only {sent} of the {k} "
                   f"traces the budget allows ({sent / n:.1%}) go to review; " + message)
    return BudgetSuggestion(budget, threshold, n, sent, n - sent, skipped, evidence, message)


def calibrate(annotations: Sequence[Annotation | JudgedTrace], changed_by_trace: dict[str, bool], *, budget: float = 0.1,
              thresholds: Sequence[float] = DEFAULT_THRESHOLDS, accept_threshold: float | None = None,
              min_evidence: int = MIN_EVIDENCE, skipped_reviews: dict[str, int] | None = None) -> Calibration:
    """The report for a run: `changed_by_trace` maps reviewed trace ids to ReviewOutcome.changed."""
    judged = [a for a in annotations if is_judged(a)]
    skipped = dict(skipped_reviews or {})
    failed_reviewed = sum(1 for a in annotations if not is_judged(a) and a.trace_id in changed_by_trace)
    if failed_reviewed:
        skipped["judge_failed"] = failed_reviewed
    reviewed_annotations = [a for a in judged if a.trace_id in changed_by_trace]
    reviewed = [(a.confidence, changed_by_trace[a.trace_id]) for a in reviewed_annotations]
    if accept_threshold is not None:
        accept_threshold = round(accept_threshold, 4)
    grid = sorted({round(t, 4) for t in (*thresholds, *([accept_threshold] if accept_threshold is not None else []))})
    rows = [ThresholdRow(t, _rate(p for p in reviewed if p[0] >= t), _rate(p for p in reviewed if p[0] < t))
            for t in grid]
    auc = rank_auc([c for c, changed in reviewed if not changed], [c for c, changed in reviewed if changed])
    suggestion = suggest_threshold([a.confidence for a in judged], reviewed, budget, min_evidence)
    return Calibration(
        annotations=len(annotations), judged=len(judged), reviewed=_rate(reviewed),
        reviewed_accepted=sum(1 for a in reviewed_annotations if a.status == "accepted"),
        rows=rows, auc=auc, suggestion=suggestion, accept_threshold=accept_threshold, skipped_reviews=skipped,
    )


def parse_thresholds(text: str) -> list[float]:
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise CalibrateError(f"--thresholds must be comma-separated numbers, got {text!r}") from None
    if not values or any(not 0 <= v <= 1 for v in values):
        raise CalibrateError(f"--thresholds must be numbers between 0 and 1, got {text!r}")
    return values
