"""Export takes the review: reviewed spans over the judge's, reviewed traces in, rejected ones out."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from splitreason import CLOSE_TAG, OPEN_TAG
from splitreason.io.run_dir import RunDir
from splitreason.review.store import ReviewStore
from splitreason.schemas.review import Review, ReviewedSpan
from tests.helpers import ok, read_jsonl, run_cli

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)


def _span(trace: str, start: int, end: int) -> ReviewedSpan:
    return ReviewedSpan(start=start, end=end, text=trace[start:end])


def _review(annotation, reviewer, decision, spans, minutes=0) -> Review:
    judge = [_span(annotation.trace, s.start, s.end) for s in annotation.spans]
    return Review(trace_id=annotation.trace_id, reviewer=reviewer, origin="ui", decision=decision, spans=spans,
                  judge_spans=judge, judge_confidence=annotation.confidence,
                  reviewed_at=NOW + timedelta(minutes=minutes))


def test_export_uses_reviewed_spans_and_drops_rejected(tmp_path):
    out = tmp_path / "out"
    # A high accept threshold leaves most sample traces in review, a few accepted.
    ok(run_cli("annotate", "-o", out, "--no-progress", "--accept-threshold", "1.0"))
    annotations = {a.trace_id: a for a in RunDir(out).iter_annotations()}
    in_review = [a for a in annotations.values() if a.status == "review"]
    accepted = [a for a in annotations.values() if a.status == "accepted"]
    assert len(in_review) >= 3 and accepted

    edited, two_reviewers, unreviewed = in_review[0], in_review[1], in_review[2:]
    refused = accepted[0]
    trace = edited.trace
    drawn = [_span(trace, 10, 60)]
    with ReviewStore.for_run(out) as store:
        store.save(_review(edited, "ana", "accepted", drawn))
        store.save(_review(refused, "ana", "rejected", []))
        # Two reviewers accept with different spans: the union (at least half of two) is exported.
        t2 = two_reviewers.trace
        store.save(_review(two_reviewers, "ana", "accepted", [_span(t2, 0, 30)]))
        store.save(_review(two_reviewers, "ben", "accepted", [_span(t2, 20, 50), _span(t2, 100, 120)], minutes=1))

    ok(run_cli("export", out, "-o", tmp_path / "train.jsonl"))
    rows = {row["id"]: row for row in read_jsonl(tmp_path / "train.jsonl")}

    assert refused.trace_id not in rows  # rejected in review, though the judge accepted it
    assert not any(a.trace_id in rows for a in unreviewed)  # still waiting for review
    assert all(rows[a.trace_id]["metadata"]["reviewed"] is False for a in accepted[1:])

    row = rows[edited.trace_id]
    reply = row["messages"][1]["content"]
    assert reply == trace[:10] + OPEN_TAG + trace[10:60] + CLOSE_TAG + trace[60:]
    assert row["metadata"]["reviewed"] is True and row["metadata"]["reviewers"] == ["ana"]
    assert row["metadata"]["spans"] == 1 and row["metadata"]["coverage"] == round(50 / len(trace), 6)

    merged = rows[two_reviewers.trace_id]
    assert merged["messages"][1]["content"] == (t2[:0] + OPEN_TAG + t2[0:50] + CLOSE_TAG + t2[50:100] + OPEN_TAG
                                                + t2[100:120] + CLOSE_TAG + t2[120:])
    assert merged["metadata"]["reviewers"] == ["ana", "ben"] and merged["metadata"]["review_agreement"] == 1.0
    assert len(rows) == len(accepted) - 1 + 2


def test_stats_show_review_progress_and_agreement(tmp_path):
    out = tmp_path / "out"
    ok(run_cli("annotate", "-o", out, "--no-progress", "--accept-threshold", "1.0"))
    annotations = list(RunDir(out).iter_annotations())
    in_review = [a for a in annotations if a.status == "review"]
    first, second = in_review[0], in_review[1]
    judge_first = [_span(first.trace, s.start, s.end) for s in first.spans]
    with ReviewStore.for_run(out) as store:
        store.save(_review(first, "ana", "accepted", judge_first))  # unchanged: F1 1.0 with the judge
        store.save(_review(first, "ben", "accepted", judge_first[:1], minutes=1))
        store.save(_review(second, "ana", "rejected", []))

    result = run_cli("stats", out, "--json")
    ok(result)
    review = json.loads(result.stdout)["review"]
    assert review["reviewed"] == 2 and review["waiting"] == len(in_review) - 2
    assert review["decisions"] == {"accepted": 1, "rejected": 1}
    assert review["reviewers"] == {"ana": 2, "ben": 1}
    # Union of ana (all judge spans) and ben (the first one) is the judge's spans again.
    assert review["judge_agreement"]["mean"] == 1.0 and review["changed"] == 1
    covered = [s.end - s.start for s in first.spans]
    assert review["reviewer_span_agreement"]["mean"] == round(2 * covered[0] / (sum(covered) + covered[0]), 4)
    assert review["reviewer_decision_agreement"]["mean"] == 1.0

    human = run_cli("stats", out)
    ok(human)
    assert "human review" in human.stdout and "2 of" in human.stdout
