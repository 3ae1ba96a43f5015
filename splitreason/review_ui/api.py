"""The review UI's JSON API: the queue, one trace, span edits, and decisions.

    GET  /api/queue                      order, decisions and progress of this reviewer
    GET  /api/trace?id=TRACE_ID          problem, trace, judge spans, and the working spans
    POST /api/edit      {trace_id, action: add|remove|resize|reset, start, end,
                         previous_start, previous_end}    -> the working spans after the edit
    POST /api/decision  {trace_id, decision: accepted|rejected}  -> progress and the next trace

Every edit is kept as a draft in OUT/review.sqlite at once, and every decision as a `Review`
the moment it is made (ReviewStore.save, which also drops the draft). Handlers never await
between reading and writing a draft, so requests cannot interleave inside one edit.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from splitreason.io.untrusted_json import BadJson, parse_untrusted_json
from splitreason.review.store import ReviewStore
from splitreason.review_ui.edits import ReviewRequestError, WorkingCopy, build_review, judge_offsets
from splitreason.review_ui.queue import ReviewQueue, reason_text
from splitreason.schemas.annotation import Annotation

DECISIONS = ("accepted", "rejected")
MAX_BODY_DEPTH = 4
# aiohttp has no body-read timeout of its own (client_max_size caps the size only): a client that
# announces a body and sends part of it would hold its handler forever. Every valid body is under
# 64 KiB, sent at once by the page.
BODY_READ_TIMEOUT_S = 30.0


def utc_now() -> datetime:
    return datetime.now(UTC)


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object: its size is capped by the app's client_max_size, its nesting by
    MAX_BODY_DEPTH (every valid body is a flat object), its numbers by Python's digit limit."""
    if request.content_type != "application/json":
        raise ReviewRequestError("send a JSON body with Content-Type: application/json", 415)
    try:
        async with asyncio.timeout(BODY_READ_TIMEOUT_S):
            raw = await request.read()
    except TimeoutError:
        raise ReviewRequestError(f"request body not received within {BODY_READ_TIMEOUT_S:g} s", 408) from None
    try:
        body = parse_untrusted_json(raw, max_depth=MAX_BODY_DEPTH)
    except BadJson as error:
        raise ReviewRequestError(f"body is not usable JSON: {error.detail}") from None
    if not isinstance(body, dict):
        raise ReviewRequestError("body must be a JSON object")
    return body


def _span_dicts(spans: list[tuple[int, int]]) -> list[dict[str, int]]:
    return [{"start": start, "end": end} for start, end in spans]


class ReviewApi:
    def __init__(self, queue: ReviewQueue, store: ReviewStore, reviewer: str, status: str):
        self.queue = queue
        self.store = store
        self.reviewer = reviewer
        self.status = status

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/api/queue", self.get_queue), web.get("/api/trace", self.get_trace),
                web.post("/api/edit", self.post_edit), web.post("/api/decision", self.post_decision)]

    def _working(self, annotation: Annotation) -> tuple[WorkingCopy, str]:
        """This reviewer's current spans: their draft, else their decision, else the judge's spans."""
        draft, source = self.store.draft(annotation.trace_id, self.reviewer), "draft"
        review = self.queue.decisions.get(annotation.trace_id)
        if draft is None and review is not None:
            draft, source = {"spans": [{"start": s.start, "end": s.end} for s in review.spans],
                             "history": [edit.model_dump(mode="json") for edit in review.history]}, "review"
        if draft is not None:
            try:
                return WorkingCopy.from_draft(annotation.trace, draft), source
            except ReviewRequestError:
                pass  # saved for another version of this trace: start again from the judge's spans
        return WorkingCopy(spans=judge_offsets(annotation)), "judge"

    def _progress(self) -> dict[str, int]:
        return self.queue.progress().as_dict()

    async def get_queue(self, request: web.Request) -> web.Response:
        return web.json_response({
            "reviewer": self.reviewer, "status": self.status, "items": self.queue.items(),
            "progress": self._progress(), "start": self.queue.next_undecided(),
        })

    async def get_trace(self, request: web.Request) -> web.Response:
        annotation = self.queue.get(request.query.get("id"))
        working, source = self._working(annotation)
        review = self.queue.decisions.get(annotation.trace_id)
        return web.json_response({
            "trace_id": annotation.trace_id,
            "position": self.queue.position(annotation.trace_id),
            "problem": annotation.problem,
            "trace": annotation.trace,
            "length": len(annotation.trace),  # in code points: the page checks its own count against it
            "confidence": annotation.confidence,
            "coverage": annotation.coverage,
            "target_coverage": annotation.target_coverage,
            "status": annotation.status,
            "status_reason": annotation.status_reason,
            "reason_text": reason_text(annotation.status_reason),
            "judge": annotation.judge.name,
            "source": annotation.source,
            "problem_type": annotation.problem_type,
            "judge_spans": [span.model_dump(mode="json", exclude={"text"}) for span in annotation.spans],
            "spans": _span_dicts(working.spans),
            "edits": len(working.history),
            "working_from": source,
            "decision": None if review is None else {"decision": review.decision, "origin": review.origin,
                                                     "reviewed_at": review.reviewed_at.isoformat()},
        })

    async def post_edit(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        annotation = self.queue.get(body.get("trace_id"))
        working, _ = self._working(annotation)
        now = utc_now()
        working.apply(annotation.trace, judge_offsets(annotation), body, now)
        self.store.save_draft(annotation.trace_id, self.reviewer, working.to_draft(), now.isoformat())
        return web.json_response({"spans": _span_dicts(working.spans), "edits": len(working.history)})

    async def post_decision(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        annotation = self.queue.get(body.get("trace_id"))
        decision = body.get("decision")
        if decision not in DECISIONS:
            raise ReviewRequestError("decision must be accepted or rejected")
        working, _ = self._working(annotation)
        review = build_review(annotation, working, self.reviewer, decision, utc_now())
        self.store.save(review)
        self.queue.record(review)
        return web.json_response({
            "decision": review.decision, "reviewed_at": review.reviewed_at.isoformat(),
            "spans": _span_dicts(working.spans), "progress": self._progress(),
            "next": self.queue.next_undecided(after=annotation.trace_id),
        })
