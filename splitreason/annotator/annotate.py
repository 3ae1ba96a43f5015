"""From a judge's verdict to an annotation: align, snap, merge, validate, score, route.

Pure functions of (trace, verdict, policy): no I/O, so a resumed run rebuilds exactly the
same annotation from a cached answer.
"""

from __future__ import annotations

from splitreason.annotator.align import Aligner
from splitreason.annotator.routing import RoutingPolicy, confidence, route
from splitreason.annotator.spans import merge_spans, snap_to_boundaries
from splitreason.judges.base import JudgeFailed, Verdict
from splitreason.schemas import Annotation, HallucinatedExcerpt, JudgeInfo, Span, Trace

_HALLUCINATED_TEXT_LIMIT = 500


def _trace_fields(trace: Trace) -> dict:
    """What an annotation repeats of its trace, so the record is self-contained for export."""
    return {"trace_id": trace.trace_id, "problem": trace.problem, "trace": trace.text,
            "source": trace.source, "problem_type": trace.problem_type}


def build_annotation(
    trace: Trace,
    verdict: Verdict,
    judge: JudgeInfo,
    policy: RoutingPolicy,
    *,
    fuzzy_threshold: float = 0.85,
) -> Annotation:
    aligner = Aligner(trace.text, fuzzy_threshold=fuzzy_threshold)
    spans: list[Span] = []
    hallucinated: list[HallucinatedExcerpt] = []
    for excerpt in verdict.excerpts:
        alignment = aligner.align_excerpt(excerpt)
        if alignment is None:
            hallucinated.append(
                HallucinatedExcerpt(text=excerpt.text[:_HALLUCINATED_TEXT_LIMIT],
                                    best_score=round(min(1.0, aligner.last_miss_score), 4))
            )
            continue
        start, end = snap_to_boundaries(trace.text, alignment.start, alignment.end)
        spans.append(
            Span(start=start, end=end, text=trace.text[start:end], score=round(alignment.score, 4),
                 reason=excerpt.reason, match=alignment.match)
        )
    spans = merge_spans(spans, trace.text)
    covered = sum(span.end - span.start for span in spans)
    coverage = round(covered / len(trace.text), 6) if trace.text else 0.0
    excerpts = len(verdict.excerpts)
    score = confidence(spans, len(hallucinated), excerpts, coverage, policy.target_coverage)
    status, reason = route(policy, excerpts=excerpts, hallucinated=len(hallucinated), coverage=coverage, score=score)
    return Annotation(
        **_trace_fields(trace),
        spans=spans,
        hallucinated=hallucinated,
        excerpts=excerpts,
        coverage=coverage,
        target_coverage=policy.target_coverage,
        confidence=score,
        status=status,
        status_reason=reason,
        judge=judge,
        usage=verdict.usage,
    )


def failed_annotation(trace: Trace, failure: JudgeFailed, judge: JudgeInfo, policy: RoutingPolicy) -> Annotation:
    """The judge gave nothing usable: the trace is rejected with the reason, and no spans."""
    return Annotation(
        **_trace_fields(trace),
        spans=[],
        excerpts=0,
        coverage=0.0,
        target_coverage=policy.target_coverage,
        confidence=0.0,
        status="rejected",
        status_reason=f"{failure.reason}: {failure.detail}",
        judge=judge,
        usage=failure.usage,
    )


def is_judge_failure(annotation: Annotation) -> bool:
    """Rejections caused by the judge (not by the trace): what --retry-rejected asks again."""
    return annotation.status == "rejected" and annotation.status_reason.startswith("judge_")
