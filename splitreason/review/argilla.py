"""The Argilla dataset splitreason reviews in, and conversion between it and our records.

Built with the argilla 2.8 SDK's own objects (the client flow is in review/argilla_sync.py):

    fields     problem      the problem statement (markdown, so LaTeX renders)
               trace        the reasoning trace, plain text: span offsets index into it
               judge_notes  per suggested span: score, how it was aligned, the judge's reason
    questions  difficult_spans  SpanQuestion over `trace`, one label; not required (a trace may
                                have no difficult step). Suggestion = the judge's spans, one score
                                per span, agent = the judge's name.
               decision         LabelQuestion accept / reject; required, so every submitted
                                answer says whether the trace is usable.
    metadata   confidence, coverage (float 0..1); source, judge, status (terms)
    guidelines review/guidelines.md

Rejecting a trace: answer `decision` with reject, or press Argilla's Discard; both become a
`rejected` Review. Drafts are work in progress and are not pulled.

Offsets: suggestions are written in UTF-16 code units (what Argilla's UI counts) and answers are
read back the same way, then converted to code points and checked against the trace
(review/offsets.py). Argilla's server checks span ends against the field's length in code
points, so a span that reaches into the last few characters of a trace with astral characters
is clipped to what the server accepts (counted in the push summary).

Edit history: Argilla keeps only the final answer, so the history of an Argilla review is
reconstructed from the difference between the judge's spans and the reviewer's: one add,
remove or resize per differing span, in trace order, then the decision, all stamped with the
time of the answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import resources
from typing import TYPE_CHECKING, Any

from splitreason.review.offsets import OffsetError, Utf16Index
from splitreason.schemas.annotation import Annotation
from splitreason.schemas.review import Review, ReviewedSpan, ReviewEdit

if TYPE_CHECKING:
    import argilla as rg
    from argilla._models import UserResponseModel

FIELD_PROBLEM, FIELD_TRACE, FIELD_NOTES = "problem", "trace", "judge_notes"
QUESTION_SPANS, QUESTION_DECISION = "difficult_spans", "decision"
SPAN_LABEL = "difficult"
ACCEPT, REJECT = "accept", "reject"
METADATA_FLOATS = ("confidence", "coverage")
METADATA_TERMS = ("source", "judge", "status")
GUIDELINES_LIMIT = 10_000  # Argilla refuses longer guidelines


class ResponseError(ValueError):
    """A reviewer's answer that cannot become a Review (bad offsets, unknown label, ...)."""


def load_guidelines() -> str:
    # stripped: the SDK strips it before sending, so what the server holds compares equal
    text = resources.files("splitreason.review").joinpath("guidelines.md").read_text(encoding="utf-8").strip()
    if len(text) > GUIDELINES_LIMIT:
        raise ValueError(f"review/guidelines.md has {len(text)} characters; Argilla accepts {GUIDELINES_LIMIT}")
    return text


def build_settings(client: rg.Argilla, min_submitted: int = 1) -> rg.Settings:
    """The dataset layout above. Every property gets `client`: the SDK would otherwise make one."""
    import argilla as rg

    return rg.Settings(
        fields=[
            rg.TextField(name=FIELD_PROBLEM, title="Problem", use_markdown=True, required=False, client=client),
            rg.TextField(name=FIELD_TRACE, title="Reasoning trace", use_markdown=False, client=client),
            rg.TextField(name=FIELD_NOTES, title="Judge's notes on its spans", use_markdown=True,
                         required=False, client=client),
        ],
        questions=[
            rg.SpanQuestion(
                name=QUESTION_SPANS, field=FIELD_TRACE, labels={SPAN_LABEL: "difficult: hand to the large model"},
                allow_overlapping=False, required=False, title="Mark the difficult steps",
                description="Whole steps a small model would get wrong; see the guidelines.", client=client,
            ),
            rg.LabelQuestion(
                name=QUESTION_DECISION, labels={ACCEPT: "accept: usable, train on my spans",
                                                REJECT: "reject: unusable trace, keep it out"},
                title="Is this trace usable for training?", required=True, client=client,
            ),
        ],
        metadata=[
            rg.FloatMetadataProperty(name="confidence", min=0.0, max=1.0, title="Judge confidence", client=client),
            rg.FloatMetadataProperty(name="coverage", min=0.0, max=1.0, title="Share marked", client=client),
            rg.TermsMetadataProperty(name="source", title="Source", client=client),
            rg.TermsMetadataProperty(name="judge", title="Judge", client=client),
            rg.TermsMetadataProperty(name="status", title="Routing status", client=client),
        ],
        guidelines=load_guidelines(),
        distribution=rg.TaskDistribution(min_submitted=min_submitted),
    )


def missing_layout(dataset: rg.Dataset) -> list[str]:
    """What an existing dataset lacks of the layout (empty: it is one of ours)."""
    missing = [f"field {name!r}" for name in (FIELD_PROBLEM, FIELD_TRACE, FIELD_NOTES)
               if dataset.settings.fields[name] is None]
    spans = dataset.settings.questions[QUESTION_SPANS]
    if spans is None or getattr(spans, "field", None) != FIELD_TRACE or SPAN_LABEL not in spans.labels:
        missing.append(f"span question {QUESTION_SPANS!r} over {FIELD_TRACE!r} with label {SPAN_LABEL!r}")
    decision = dataset.settings.questions[QUESTION_DECISION]
    if decision is None or not {ACCEPT, REJECT} <= set(getattr(decision, "labels", [])):
        missing.append(f"label question {QUESTION_DECISION!r} ({ACCEPT}/{REJECT})")
    return missing


def judge_name(annotation: Annotation) -> str:
    return " + ".join([annotation.judge.name, *(judge.name for judge in annotation.other_judges)])


def _notes(annotation: Annotation) -> str:
    if not annotation.spans:
        return "The judge marked no span."
    lines = [f"Judge: {judge_name(annotation)}; confidence {annotation.confidence:.2f}, "
             f"coverage {annotation.coverage:.1%} (target {annotation.target_coverage:.0%}).", ""]
    for number, span in enumerate(annotation.spans, 1):
        found = {"exact": "exact quote", "normalized": "quote up to spacing", "fuzzy": "near quote",
                 "semantic": "paraphrase, found by meaning"}.get(span.match, span.match)
        reason = f": {span.reason}" if span.reason else ""
        lines.append(f"{number}. score {span.score:.2f} ({found}){reason}")
    return "\n".join(lines)


def _server_limit(index: Utf16Index) -> int:
    """Largest UTF-16 offset Argilla's server accepts as a span end: it compares with len() in code
    points; never between the halves of a surrogate pair."""
    limit = index.length
    try:
        index.from_utf16(limit)
    except OffsetError:
        limit -= 1
    return limit


def build_record(annotation: Annotation, dataset: rg.Dataset) -> tuple[rg.Record, int]:
    """The Argilla record of one annotation (id = trace_id), and how many spans had to be clipped."""
    import argilla as rg

    index = Utf16Index(annotation.trace)
    limit = _server_limit(index)
    values: list[dict[str, Any]] = []
    scores: list[float] = []
    clipped = 0
    for span in annotation.spans:
        start, end = index.span_to_utf16(span.start, span.end)
        if end > limit:
            clipped += 1
            end = limit
        if start >= end:
            continue
        values.append({"label": SPAN_LABEL, "start": start, "end": end})
        scores.append(round(span.score, 4))
    metadata: dict[str, Any] = {"confidence": annotation.confidence, "coverage": annotation.coverage,
                                "judge": judge_name(annotation), "status": annotation.status}
    if annotation.source:
        metadata["source"] = annotation.source
    # Sent even when empty: an upsert replaces a record's suggestion but never deletes it, so a
    # trace annotated again with no span would otherwise keep showing the old spans.
    suggestions = [rg.Suggestion(question_name=QUESTION_SPANS, value=values, score=scores,
                                 agent=judge_name(annotation), type="model")]
    record = rg.Record(
        id=annotation.trace_id,
        fields={FIELD_PROBLEM: annotation.problem, FIELD_TRACE: annotation.trace, FIELD_NOTES: _notes(annotation)},
        metadata=metadata,
        suggestions=suggestions,
        _dataset=dataset,
    )
    return record, clipped


def spans_from_answer(value: Any, index: Utf16Index) -> list[ReviewedSpan]:
    """A span question answer (UTF-16 offsets) as sorted code-point spans of the trace."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ResponseError(f"span answer is {type(value).__name__}, not a list")
    spans = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("start"), int) or not isinstance(item.get("end"), int):
            raise ResponseError(f"span answer item {item!r} has no integer start/end")
        if item.get("label") != SPAN_LABEL:
            raise ResponseError(f"span label {item.get('label')!r} is not {SPAN_LABEL!r}")
        if item["end"] <= item["start"]:
            raise ResponseError(f"span {item['start']}:{item['end']} is empty or reversed")
        try:
            start, end = index.span_from_utf16(item["start"], item["end"])
        except OffsetError as error:
            raise ResponseError(str(error)) from error
        spans.append(ReviewedSpan(start=start, end=end, text=index.text[start:end]))
    spans.sort(key=lambda span: span.start)
    for before, after in zip(spans, spans[1:]):
        if after.start < before.end:
            raise ResponseError(f"spans {before.start}:{before.end} and {after.start}:{after.end} overlap")
    return spans


def edit_history(judge: Sequence[ReviewedSpan], final: Sequence[ReviewedSpan], decision: str,
                 at: datetime) -> list[ReviewEdit]:
    """The edits that turn the judge's spans into the reviewer's (see the module docstring).

    A judge span and a reviewer span that overlap only each other are one resize; every other
    differing span is a remove (judge's) or an add (reviewer's).
    """
    judge_left = [(s.start, s.end) for s in judge if (s.start, s.end) not in {(f.start, f.end) for f in final}]
    final_left = [(s.start, s.end) for s in final if (s.start, s.end) not in {(j.start, j.end) for j in judge}]

    def overlapping(span: tuple[int, int], others: list[tuple[int, int]]) -> list[tuple[int, int]]:
        return [other for other in others if other[0] < span[1] and span[0] < other[1]]

    steps: list[tuple[int, ReviewEdit]] = []
    resized: set[tuple[int, int]] = set()
    for old in judge_left:
        partners = overlapping(old, final_left)
        if len(partners) == 1 and overlapping(partners[0], judge_left) == [old]:
            new = partners[0]
            resized.add(new)
            steps.append((old[0], ReviewEdit(action="resize", at=at, start=new[0], end=new[1],
                                             previous_start=old[0], previous_end=old[1])))
        else:
            steps.append((old[0], ReviewEdit(action="remove", at=at, previous_start=old[0], previous_end=old[1])))
    for new in final_left:
        if new not in resized:
            steps.append((new[0], ReviewEdit(action="add", at=at, start=new[0], end=new[1])))
    steps.sort(key=lambda step: step[0])
    return [edit for _, edit in steps] + [ReviewEdit(action="accept" if decision == "accepted" else "reject", at=at)]


def as_utc(moment: datetime | None) -> datetime:
    """Argilla's server sends naive UTC times; None (no time known) becomes now."""
    if moment is None:
        return datetime.now(UTC)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def review_from_response(response: UserResponseModel, annotation: Annotation, judge_spans: list[ReviewedSpan],
                         reviewer: str, reviewed_at: datetime | None) -> Review:
    """One reviewer's submitted or discarded answer as a Review (raises ResponseError).

    `judge_spans` are the spans the reviewer was shown: the record's suggestion, read back with
    `spans_from_answer` (it can differ from OUT's annotation if the trace was annotated again
    after it was answered, or if a span was clipped for the server).
    """
    status = getattr(response.status, "value", response.status)
    values = response.values or {}
    spans = spans_from_answer((values.get(QUESTION_SPANS) or {}).get("value"), Utf16Index(annotation.trace))
    if status == "discarded":
        decision = "rejected"
    else:
        answer = (values.get(QUESTION_DECISION) or {}).get("value")
        if answer not in (ACCEPT, REJECT):
            raise ResponseError(f"decision {answer!r} is neither {ACCEPT!r} nor {REJECT!r}")
        decision = "accepted" if answer == ACCEPT else "rejected"
    moment = as_utc(reviewed_at)
    return Review(
        trace_id=annotation.trace_id, reviewer=reviewer, origin="argilla", decision=decision, spans=spans,
        judge_spans=judge_spans, judge_confidence=annotation.confidence, reviewed_at=moment,
        history=edit_history(judge_spans, spans, decision, moment),
    )
