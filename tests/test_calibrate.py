"""`splitreason calibrate`: confidence against reviewer edits, on runs whose numbers are worked out by hand.

Runs are real directories (annotation shard files in the RunDir layout, run.json) with reviews in
a real OUT/review.sqlite written through ReviewStore; the CLI runs as a subprocess. Reference
Wilson intervals below were checked against scipy.stats.binomtest(k, n).proportion_ci("wilson").
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from splitreason.io.run_dir import RunDir
from splitreason.review.calibrate import CalibrateError, calibrate, rank_auc, suggest_threshold, wilson_interval
from splitreason.review.store import ReviewStore
from splitreason.schemas import Annotation, JudgeInfo, Span
from splitreason.schemas.review import Review, ReviewedSpan
from tests.helpers import assert_one_clean_error, ok, run_cli

JUDGE = JudgeInfo(name="heuristic", backend="heuristic", model="rules-v1", prompt_hash="0" * 16)
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
WILSON = {(1, 5): (0.0362, 0.6245), (4, 5): (0.3755, 0.9638), (5, 10): (0.2366, 0.7634),
          (1, 3): (0.0615, 0.7923), (0, 4): (0.0, 0.4899), (3, 8): (0.1368, 0.6943), (4, 7): (0.2505, 0.8418),
          (0, 1): (0.0, 0.7935), (2, 7): (0.0822, 0.6411)}

REVIEWED = [0.05, 0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.95]
CHANGED = {0.05, 0.15, 0.25, 0.45, 0.85}  # by hand: 5 of 10; AUC = 20 of 25 (unchanged, changed) pairs = 0.8
UNREVIEWED = [round(0.80 + 0.02 * i, 2) for i in range(10)]


def annotation(trace_id: str, confidence: float, *, judge_failed: bool = False) -> Annotation:
    trace = f"<think>Trace {trace_id}: first we expand the square, then we collect the terms carefully.</think>"
    start = trace.index("first")
    spans = [] if judge_failed else [Span(start=start, end=start + 24, text=trace[start:start + 24], score=1.0)]
    if judge_failed:
        status, reason = "rejected", "judge_failed: timeout"
    else:
        status, reason = (("rejected", "low_confidence") if confidence < 0.35 else
                          ("review", "low_confidence") if confidence < 0.75 else ("accepted", "ok"))
    return Annotation(trace_id=trace_id, problem="p", trace=trace, spans=spans, excerpts=len(spans),
                      coverage=len(spans) * 24 / len(trace), target_coverage=0.15, confidence=confidence,
                      status=status, status_reason=reason, judge=JUDGE)


def write_run(out: Path, annotations: list[Annotation], accept_threshold: float | None = 0.75) -> None:
    run_dir = RunDir(out)
    run_dir.prepare()
    with open(run_dir.shard_path(0, 1), "w", encoding="utf-8") as handle:
        handle.writelines(a.model_dump_json() + "\n" for a in annotations)
    if accept_threshold is not None:
        (out / "run.json").write_text(json.dumps({"config": {"accept_threshold": accept_threshold}}))


def review(a: Annotation, reviewer: str, decision: str, *, spans: list[tuple[int, int]] | None = None,
           origin: str = "ui", minutes: int = 0) -> Review:
    judge_spans = [ReviewedSpan(start=s.start, end=s.end, text=s.text) for s in a.spans]
    chosen = judge_spans if spans is None else [ReviewedSpan(start=s, end=e, text=a.trace[s:e]) for s, e in spans]
    return Review(trace_id=a.trace_id, reviewer=reviewer, origin=origin, decision=decision,
                  spans=chosen if decision == "accepted" else [], judge_spans=judge_spans,
                  judge_confidence=a.confidence, reviewed_at=T0 + timedelta(minutes=minutes))


def hand_case(out: Path, reviewed: list[float] = REVIEWED) -> dict[str, Annotation]:
    """10 reviewed traces (5 changed, each in a different way), 10 unreviewed, 2 judge failures."""
    by_conf = {c: annotation(f"r{c:.2f}", c) for c in REVIEWED}
    failed = [annotation("failed-reviewed", 0.0, judge_failed=True), annotation("failed", 0.0, judge_failed=True)]
    write_run(out, [*by_conf.values(), *(annotation(f"u{c:.2f}", c) for c in UNREVIEWED), *failed])
    with ReviewStore.for_run(out) as store:
        for c in reviewed:
            a = by_conf[c]
            start, end = a.spans[0].start, a.spans[0].end
            if c in (0.05, 0.45):
                store.save(review(a, "ann", "rejected"))
            elif c == 0.15:  # span resized
                store.save(review(a, "ann", "accepted", spans=[(start, end + 3)]))
            elif c == 0.25:  # one accepts, one rejects: a tie is rejected (merge policy) -> changed
                store.save(review(a, "ann", "accepted"))
                store.save(review(a, "bob", "rejected"))
            elif c == 0.85:  # span added
                store.save(review(a, "ann", "accepted", spans=[(0, 7), (start, end)]))
            elif c == 0.55:  # rejected in Argilla, later accepted as it was in the UI: the latest counts
                store.save(review(a, "ann", "rejected", origin="argilla"))
                store.save(review(a, "ann", "accepted", minutes=5))
            elif c == 0.35:
                store.save(review(a, "ann", "accepted"))
                store.save(review(a, "bob", "accepted"))
            else:
                store.save(review(a, "ann", "accepted"))
        store.save(review(failed[0], "ann", "rejected"))
        store.save(Review(trace_id="ghost", reviewer="ann", origin="ui", decision="rejected", reviewed_at=T0))
    return by_conf


def calibrate_json(out: Path, *args: str) -> tuple[dict, str]:
    result = ok(run_cli("calibrate", out, "--json", *args))
    return json.loads(result.stdout), result.stderr


def rate(traces: int, changed: int) -> dict:
    ci = WILSON.get((changed, traces))
    return {"traces": traces, "changed": changed, "rate": round(changed / traces, 4) if traces else None,
            "ci95": list(ci) if ci else None}


def test_wilson_and_auc_reference_values() -> None:
    for (k, n), expected in WILSON.items():
        assert tuple(round(x, 4) for x in wilson_interval(k, n)) == expected
    assert wilson_interval(0, 0) is None
    assert rank_auc([0.9, 0.5], [0.5, 0.1]) == 0.875  # 1 + 1 + 0.5 (tie) + 1 of 4 pairs
    assert rank_auc([0.5, 0.5], [0.5]) == 0.5
    assert rank_auc([0.1], [0.9, 0.8]) == 0.0
    assert rank_auc([0.3], []) is None


def test_hand_computed_report(tmp_path: Path) -> None:
    out = tmp_path / "out"
    hand_case(out)
    data, stderr = calibrate_json(out, "--budget", "0.25")
    assert data["annotations"] == 22 and data["judged"] == 20
    assert data["reviewed"] == rate(10, 5)
    assert data["reviewed_accepted"] == 3  # 0.75, 0.85, 0.95
    assert data["accept_threshold"] == 0.75
    assert data["auc_unchanged"] == 0.8
    rows = {row["threshold"]: row for row in data["thresholds"]}
    assert sorted(rows) == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.9]
    assert rows[0.0] == {"threshold": 0.0, "above": rate(10, 5), "below": rate(0, 0)}
    assert rows[0.5] == {"threshold": 0.5, "above": rate(5, 1), "below": rate(5, 4)}
    assert rows[0.75]["above"] == rate(3, 1) and rows[0.75]["below"] == rate(7, 4)
    assert rows[0.2]["above"] == rate(8, 3) and rows[0.3]["above"] == rate(7, 2)
    # Budget 25% of 20 judged = 5 traces: confidence < 0.55 goes to review; 15 skip it. Among reviewed
    # traces >= 0.55, 1 of 5 changed, so 0.2 * 15 = 3 changed traces expected among those skipping review.
    s = data["suggestion"]
    assert (s["threshold"], s["judged"], s["sent_to_review"], s["review_share"], s["skip_review"]) == (0.55, 20, 5, 0.25, 15)
    assert s["skipped_change"] == rate(5, 1)
    assert s["expected_missed"] == 3.0
    assert s["expected_missed_ci95"] == [round(15 * 0.036224108632430196, 4), round(15 * 0.6244653702374747, 4)]
    assert s["evidence"] == "few" and "only 5 reviewed traces" in s["message"] and "--status all" in s["message"]
    assert data["skipped_reviews"] == {"not_in_run": 1, "judge_failed": 1}
    assert "1 reviewed trace(s) not among this run's annotations" in stderr
    assert "1 reviewed trace(s) that are judge failures" in stderr

    # Default budget 0.1: 2 traces (0.05, 0.15) go to review; reviewed >= 0.25: 3 of 8 changed.
    data, _ = calibrate_json(out)
    s = data["suggestion"]
    assert (s["threshold"], s["sent_to_review"], s["skip_review"]) == (0.25, 2, 18)
    assert s["skipped_change"] == rate(8, 3) and s["expected_missed"] == round(18 * 3 / 8, 4)

    data, _ = calibrate_json(out, "--thresholds", "0.5, 0.9")
    assert [row["threshold"] for row in data["thresholds"]] == [0.5, 0.75, 0.9]
    assert data["thresholds"][2]["above"] == rate(1, 0)


def test_human_output(tmp_path: Path) -> None:
    out = tmp_path / "out"
    hand_case(out)
    text = ok(run_cli("calibrate", out, "--budget", "0.25")).stdout
    assert "22 annotations, 20 judged (2 judge failures left out); 10 reviewed, 5 changed" in text
    # Piped, the table is plain columns: nothing cut, no box lines.
    assert any(line.split()[:3] == ["0.75", "(accept)", "3"] for line in text.splitlines() if line.strip()), text
    assert "│" not in text and "thres…" not in text
    assert "AUC 0.800" in text
    assert "review traces with confidence < 0.55 (5 of 20 judged traces, 25.0%); 15 skip review" in text
    assert "3.0 (95% CI 0.5–9.4)" in text
    assert "note: only 5 reviewed traces" in text


def test_enough_evidence_says_no_more_than_the_rate() -> None:
    annotations = [annotation(f"t{i}", round(i / 100, 2)) for i in range(100)]
    changed = {a.trace_id: a.confidence < 0.3 for a in annotations}  # every trace reviewed
    result = calibrate(annotations, changed, budget=0.29)
    s = result.suggestion
    # 0.29 * 100 is 28.999… in floating point; the budget still allows 29 traces.
    assert (s.threshold, s.sent_to_review, s.skip_review) == (0.29, 29, 71)
    assert (s.skipped_change.traces, s.skipped_change.changed) == (71, 1)  # only 0.29 itself
    assert s.evidence == "enough" and "changed 1.4% of the time" in s.message and "random sample" not in s.message
    assert result.auc == 1.0


def test_nothing_reviewed_above_the_threshold_is_said_plainly(tmp_path: Path) -> None:
    out = tmp_path / "out"
    hand_case(out, reviewed=[c for c in REVIEWED if c < 0.5])
    data, _ = calibrate_json(out, "--budget", "0.5")
    s = data["suggestion"]
    assert (s["threshold"], s["sent_to_review"], s["skip_review"]) == (0.84, 10, 10)
    assert s["skipped_change"] == rate(0, 0)
    assert s["expected_missed"] is None and s["evidence"] == "none"
    assert "cannot say" in s["message"] and "splitreason review push OUT --status all" in s["message"]
    assert data["reviewed_accepted"] == 0
    text = ok(run_cli("calibrate", out, "--budget", "0.5")).stdout
    assert "expected changed traces" not in text
    assert "no reviewed trace has confidence >= 0.84" in text
    assert "no trace the router accepted has been reviewed" in text


def test_ties_and_tiny_budgets_are_explained() -> None:
    tied = [annotation(f"t{i}", 0.5) for i in range(10)]
    s = calibrate(tied, {"t0": False}, budget=0.3).suggestion
    assert (s.threshold, s.sent_to_review, s.skip_review) == (0.5, 0, 10)
    assert "tie at confidence 0.5" in s.message and "only 0 of the 3" in s.message
    s = suggest_threshold([0.2, 0.4, 0.6], [(0.6, True)], budget=0.1)
    assert (s.threshold, s.sent_to_review) == (0.2, 0) and "less than one of the 3" in s.message
    with pytest.raises(CalibrateError):
        suggest_threshold([0.5], [], budget=1.0)


@pytest.mark.parametrize("prepare, needle", [
    ("empty_run", "holds no annotations"),
    ("no_store", "no reviews yet (no review.sqlite); review some traces first: splitreason review serve"),
    ("empty_store", "holds no reviews; review some traces first"),
    ("foreign_reviews", "none of the 1 reviewed traces"),
])
def test_errors_about_the_run(tmp_path: Path, prepare: str, needle: str) -> None:
    out = tmp_path / "out"
    write_run(out, [] if prepare == "empty_run" else [annotation("a", 0.5)])
    if prepare == "empty_store":
        ReviewStore.for_run(out).close()
    if prepare == "foreign_reviews":
        with ReviewStore.for_run(out) as store:
            store.save(review(annotation("elsewhere", 0.5), "ann", "accepted"))
    result = run_cli("calibrate", out)
    assert needle in assert_one_clean_error(result)
    if prepare == "no_store":
        assert not (out / "review.sqlite").exists()  # calibrate only reads


@pytest.mark.parametrize("args, needle", [
    (["--budget", "1"], "--budget must be between 0 and 1"),
    (["--budget", "0"], "--budget must be between 0 and 1"),
    (["--thresholds", "0.5,high"], "--thresholds must be comma-separated numbers"),
    (["--thresholds", "0.5,1.5"], "--thresholds must be numbers between 0 and 1"),
])
def test_errors_about_options(tmp_path: Path, args: list[str], needle: str) -> None:
    out = tmp_path / "out"
    hand_case(out)
    assert needle in assert_one_clean_error(run_cli("calibrate", out, *args))
