"""From the judge's verdicts to an annotation: align, snap, merge, vote, validate, score, route.

Pure functions of (trace, verdicts, policy): no I/O, so a resumed run rebuilds exactly the
same annotation from cached answers. A trace judged once (the default) takes that sample's
spans; judged several times (--samples k, or several --judge) it takes the characters most
samples agree on, and their agreement feeds the confidence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from splitreason.agreement import mean_pairwise_f1
from splitreason.annotator.align import DEFAULT_FUZZY_THRESHOLD, Aligner
from splitreason.annotator.consensus import consensus_spans
from splitreason.annotator.routing import RoutingPolicy, confidence, route
from splitreason.annotator.spans import merge_spans, snap_to_boundaries
from splitreason.judges.base import Excerpt, JudgeFailed, Verdict
from splitreason.schemas import Annotation, HallucinatedExcerpt, JudgeInfo, SampleSummary, Span, Trace, Usage

_HALLUCINATED_TEXT_LIMIT = 500
#: A paraphrase found by embeddings scores its similarity times this: never more than a fuzzy quote.
SEMANTIC_SCORE_WEIGHT = 0.5


@dataclass
class SampleOutcome:
    """One judge call for a trace: a verdict, or the failure that stands in for one."""

    judge: JudgeInfo
    sample: int = 0
    verdict: Verdict | None = None
    failure: JudgeFailed | None = None


@dataclass
class _AlignedSample:
    spans: list[Span] = field(default_factory=list)
    hallucinated: list[HallucinatedExcerpt] = field(default_factory=list)
    excerpts: int = 0


def _trace_fields(trace: Trace) -> dict:
    """What an annotation repeats of its trace, so the record is self-contained for export."""
    return {"trace_id": trace.trace_id, "problem": trace.problem, "trace": trace.text,
            "source": trace.source, "problem_type": trace.problem_type}


def _align_verdict(trace: Trace, excerpts: Sequence[Excerpt], aligner: Aligner, rescuer) -> _AlignedSample:
    result = _AlignedSample(excerpts=len(excerpts))
    missed: list[tuple[Excerpt, float]] = []
    for excerpt in excerpts:
        alignment = aligner.align_excerpt(excerpt)
        if alignment is None:
            missed.append((excerpt, min(1.0, aligner.last_miss_score)))
            continue
        start, end = snap_to_boundaries(trace.text, alignment.start, alignment.end)
        result.spans.append(Span(start=start, end=end, text=trace.text[start:end], score=round(alignment.score, 4),
                                 reason=excerpt.reason, match=alignment.match, signal=excerpt.signal))
    rescues = rescuer.rescue(trace.text, [excerpt.text for excerpt, _ in missed]) if rescuer and missed else []
    for index, (excerpt, best_score) in enumerate(missed):
        rescue = rescues[index] if rescues else None
        if rescue is None:
            result.hallucinated.append(HallucinatedExcerpt(text=excerpt.text[:_HALLUCINATED_TEXT_LIMIT],
                                                           best_score=round(best_score, 4)))
            continue
        result.spans.append(Span(start=rescue.start, end=rescue.end, text=trace.text[rescue.start:rescue.end],
                                 score=round(rescue.similarity * SEMANTIC_SCORE_WEIGHT, 4), reason=excerpt.reason,
                                 match="semantic"))
    result.spans = merge_spans(result.spans, trace.text)
    return result


def build_annotation(
    trace: Trace,
    samples: Verdict | Sequence[SampleOutcome],
    judge: JudgeInfo | None,
    policy: RoutingPolicy,
    *,
    fuzzy_threshold: float = DEFAULT_FUZZY_THRESHOLD,
    rescuer=None,
) -> Annotation:
    """`samples`: one verdict (then `judge` names its judge) or every sample's outcome, at least one usable.

    `rescuer` (optional) is a SemanticRescuer: excerpts that align neither literally nor fuzzily
    are looked up by meaning before they are counted as hallucinated.
    """
    if isinstance(samples, Verdict):
        samples = [SampleOutcome(judge=judge, verdict=samples)]  # type: ignore[arg-type]
    usable = [outcome for outcome in samples if outcome.verdict is not None]
    if not usable:
        raise ValueError("build_annotation needs at least one usable verdict; use failed_annotation")
    aligner = Aligner(trace.text, fuzzy_threshold=fuzzy_threshold)
    aligned = {id(o): _align_verdict(trace, o.verdict.excerpts, aligner, rescuer) for o in usable}  # type: ignore[union-attr]

    spans = consensus_spans(trace.text, [aligned[id(o)].spans for o in usable])
    hallucinated: dict[str, HallucinatedExcerpt] = {}
    for outcome in usable:
        for item in aligned[id(outcome)].hallucinated:
            hallucinated.setdefault(item.text, item)
    excerpts = sum(aligned[id(o)].excerpts for o in usable)
    hallucinated_count = sum(len(aligned[id(o)].hallucinated) for o in usable)
    agreement = mean_pairwise_f1([
        [(s.start, s.end) for s in aligned[id(o)].spans] if o.verdict is not None else None for o in samples
    ])
    covered = sum(span.end - span.start for span in spans)
    coverage = round(covered / len(trace.text), 6) if trace.text else 0.0
    score = confidence(spans, hallucinated_count, excerpts, coverage, policy.target_coverage, agreement)
    status, reason = route(policy, excerpts=excerpts, hallucinated=hallucinated_count, coverage=coverage,
                           score=score, agreement=agreement, semantic=any(span.match == "semantic" for span in spans),
                           truncated=any(outcome.verdict.truncated for outcome in usable))  # type: ignore[union-attr]
    return Annotation(
        **_trace_fields(trace),
        spans=spans,
        hallucinated=list(hallucinated.values()),
        excerpts=excerpts,
        coverage=coverage,
        target_coverage=policy.target_coverage,
        confidence=score,
        status=status,
        status_reason=reason,
        judge=samples[0].judge,
        usage=total_usage(samples),
        agreement=None if agreement is None else round(agreement, 4),
        samples=_summaries(samples, aligned) if len(samples) > 1 else [],
        other_judges=_other_judges(samples),
    )


def _summaries(samples: Sequence[SampleOutcome], aligned: dict[int, _AlignedSample]) -> list[SampleSummary]:
    summaries = []
    for outcome in samples:
        if outcome.verdict is None:
            summaries.append(SampleSummary(judge=outcome.judge.name, sample=outcome.sample,
                                           failed=outcome.failure.reason if outcome.failure else "judge_failed"))
            continue
        result = aligned[id(outcome)]
        summaries.append(SampleSummary(judge=outcome.judge.name, sample=outcome.sample,
                                       spans=[(s.start, s.end) for s in result.spans], excerpts=result.excerpts,
                                       hallucinated=len(result.hallucinated)))
    return summaries


def _other_judges(samples: Sequence[SampleOutcome]) -> list[JudgeInfo]:
    first = samples[0].judge
    others: list[JudgeInfo] = []
    for outcome in samples[1:]:
        if outcome.judge != first and outcome.judge not in others:
            others.append(outcome.judge)
    return others


def total_usage(samples: Sequence[SampleOutcome]) -> Usage:
    usage = Usage()
    for outcome in samples:
        if outcome.verdict is not None:
            usage.add(outcome.verdict.usage)
        elif outcome.failure is not None:
            usage.add(outcome.failure.usage)
    return usage


def failed_annotation(trace: Trace, failure: JudgeFailed, judge: JudgeInfo, policy: RoutingPolicy,
                      *, usage: Usage | None = None, other_judges: Sequence[JudgeInfo] = ()) -> Annotation:
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
        usage=usage if usage is not None else failure.usage,
        other_judges=list(other_judges),
    )


def is_judge_failure(annotation: Annotation) -> bool:
    """Rejections caused by the judge (not by the trace): what --retry-rejected asks again."""
    return annotation.status == "rejected" and annotation.status_reason.startswith("judge_")
