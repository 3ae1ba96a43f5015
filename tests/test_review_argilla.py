"""The Argilla round trip up to the HTTP boundary: settings and records built with the real argilla
SDK, pushed and pulled by the real SDK against FakeArgilla (tests/fake_argilla.py), reviewers
answering through the same endpoint Argilla's UI posts to, each with their own API key.

Expected UTF-16 offsets are computed with Python's UTF-16 codec, not with review/offsets.py.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import pytest

from splitreason.io.run_dir import RunDir
from splitreason.review.argilla import (QUESTION_DECISION, QUESTION_SPANS, build_record, build_settings,
                                        load_guidelines)
from splitreason.review.argilla_sync import BATCH, connect, push
from splitreason.review.store import ReviewStore
from splitreason.schemas.annotation import Annotation, JudgeInfo, Span
from tests.fake_argilla import FakeArgilla
from tests.helpers import assert_one_clean_error, cli_env, free_port, ok, run_cli

JUDGE = JudgeInfo(name="heuristic", backend="heuristic", model="rules-test", prompt_hash="0" * 16)


def u16(text: str, offset: int) -> int:
    """UTF-16 offset of a code-point offset, by Python's codec (the oracle)."""
    return len(text[:offset].encode("utf-16-le")) // 2


def env(fake: FakeArgilla | None = None, key: str | None = None, **extra: str) -> dict[str, str]:
    base = {k: v for k, v in cli_env().items() if not k.startswith("ARGILLA_")}
    if fake is not None:
        base["ARGILLA_API_URL"] = fake.url
    if key is not None:
        base["ARGILLA_API_KEY"] = key
    return {**base, **extra}


@pytest.fixture
def fake() -> Iterator[FakeArgilla]:
    server = FakeArgilla()
    server.start()
    yield server
    server.stop()
    assert not server.unhandled, f"the SDK called endpoints the fake does not know: {server.unhandled}"


@pytest.fixture
def run(review_run: Path) -> Path:
    return review_run


def annotation(trace_id: str, trace: str, quotes: list[str], status: str = "review") -> Annotation:
    spans = []
    for quote in quotes:
        start = trace.index(quote)
        spans.append(Span(start=start, end=start + len(quote), text=quote, score=0.9, reason="algebra"))
    coverage = sum(len(q) for q in quotes) / len(trace)
    return Annotation(trace_id=trace_id, problem="Find 𝑥.", trace=trace, source="test", spans=spans,
                      excerpts=len(spans), coverage=coverage, target_coverage=0.15, confidence=0.5, status=status,
                      status_reason="low_confidence", judge=JUDGE)


ASTRAL_TRACE = textwrap.dedent("""\
    <think>
    Let 𝑥 be the unknown and 𝑦 = 2𝑥 + 1 the line 😀.
    Substituting 𝑦 into 𝑥² + 𝑦² = 25 gives 5𝑥² + 4𝑥 - 24 = 0, so 𝑥 = 2 or 𝑥 = -12/5.
    Check: 2² + 5² is 29, not 25, so that was wrong; redo it with 𝑦 = 2𝑥 + 1 carefully.
    The indicator 𝟙 of the event is 1 exactly when 𝑥 > 0.
    </think>
    The answer is 𝑥 = 2 and it is final 😀😀😀""")
QUOTES = ["5𝑥² + 4𝑥 - 24 = 0", "2² + 5² is 29, not 25", "exactly when 𝑥 > 0"]


def write_run(out: Path, annotations: list[Annotation]) -> Path:
    shard = RunDir(out).shard_path(0, 1)
    shard.parent.mkdir(parents=True)
    shard.write_text("".join(a.model_dump_json() + "\n" for a in annotations), encoding="utf-8")
    return out


def answer(fake: FakeArgilla, key: str, dataset: str, trace_id: str, *, spans: list[tuple[int, int]] | None = None,
           decision: str | None = "accept", status: str = "submitted") -> None:
    """A reviewer's answer, sent as Argilla's UI sends it (POST /records/{id}/responses), offsets in UTF-16."""
    import argilla as rg
    from argilla._models import UserResponseModel

    client = rg.Argilla(api_url=fake.url, api_key=key)
    values: dict = {}
    if spans is not None:
        values[QUESTION_SPANS] = {"value": [{"label": "difficult", "start": s, "end": e} for s, e in spans]}
    if decision is not None:
        values[QUESTION_DECISION] = {"value": decision}
    record = fake.record(dataset, trace_id)
    client.api.records.create_record_response(
        record_id=UUID(record["id"]), user_response=UserResponseModel(values=values, status=status,
                                                                       user_id=client.me.id))


# -- settings and records: real SDK objects ----------------------------------------------------------


def test_settings_are_real_sdk_objects(fake):
    import argilla as rg

    settings = build_settings(connect(fake.url, fake.owner_key), min_submitted=2)
    assert [type(f) for f in settings.fields] == [rg.TextField] * 3
    assert settings.fields["trace"].use_markdown is False  # offsets index the raw text
    spans = settings.questions[QUESTION_SPANS]
    assert isinstance(spans, rg.SpanQuestion) and spans.field == "trace" and spans.labels == ["difficult"]
    assert spans.allow_overlapping is False and spans.required is False
    decision = settings.questions[QUESTION_DECISION]
    assert isinstance(decision, rg.LabelQuestion) and decision.labels == ["accept", "reject"] and decision.required
    assert {m.name: type(m) for m in settings.metadata} == {
        "confidence": rg.FloatMetadataProperty, "coverage": rg.FloatMetadataProperty,
        "source": rg.TermsMetadataProperty, "judge": rg.TermsMetadataProperty, "status": rg.TermsMetadataProperty}
    assert settings.guidelines == load_guidelines()
    assert "key insight" in settings.guidelines.lower() and "final answer line" in settings.guidelines.lower()
    assert settings.distribution.min_submitted == 2


def test_record_suggests_the_judge_spans_in_utf16(fake):
    import argilla as rg

    client = connect(fake.url, fake.owner_key)
    note = annotation("t:0", ASTRAL_TRACE, QUOTES)
    dataset = rg.Dataset(name="records", client=client, settings=build_settings(client))
    record, clipped = build_record(note, dataset)
    assert isinstance(record, rg.Record) and record.id == "t:0" and clipped == 0
    suggestion = record.suggestions[QUESTION_SPANS]
    assert suggestion.agent == "heuristic" and suggestion.score == [0.9, 0.9, 0.9]
    units = [(item["start"], item["end"]) for item in suggestion.value]
    assert units == [(u16(ASTRAL_TRACE, s.start), u16(ASTRAL_TRACE, s.end)) for s in note.spans]
    encoded = ASTRAL_TRACE.encode("utf-16-le")
    assert [encoded[2 * s: 2 * e].decode("utf-16-le") for s, e in units] == QUOTES
    assert units[0][0] > note.spans[0].start  # astral characters before it shift the offset
    assert record.metadata == {"confidence": 0.5, "coverage": note.coverage, "judge": "heuristic",
                               "status": "review", "source": "test"}
    assert record.fields["trace"] == ASTRAL_TRACE and "score 0.90" in record.fields["judge_notes"]


# -- push ------------------------------------------------------------------------------------------


def test_push_twice_creates_no_duplicates(fake, run):
    review_ids = {a.trace_id for a in RunDir(run).iter_annotations() if a.status == "review"}
    first = ok(run_cli("review", "push", run, "--dataset", "sample", "--no-progress", env=env(fake, fake.owner_key)))
    assert f"pushed {len(review_ids)} new, updated 0" in first.stderr
    records = fake.records_of("sample")
    assert {r["external_id"] for r in records} == review_ids
    dataset = fake.dataset_named("sample")
    assert dataset["status"] == "ready" and dataset["guidelines"] == load_guidelines()
    assert [q["name"] for q in dataset["questions"]] == [QUESTION_SPANS, QUESTION_DECISION]

    second = ok(run_cli("review", "push", run, "--dataset", "sample", "--no-progress",
                        env=env(fake, fake.owner_key)))
    assert f"pushed 0 new, updated {len(review_ids)} not yet answered, skipped 0" in second.stderr
    assert len(fake.records_of("sample")) == len(review_ids)
    everything = ok(run_cli("review", "push", run, "--dataset", "sample", "--status", "all", "--no-progress",
                            env=env(fake, fake.owner_key)))
    total = sum(1 for _ in RunDir(run).iter_annotations())
    assert f"pushed {total - len(review_ids)} new, updated {len(review_ids)}" in everything.stderr
    assert fake.owner_key not in first.stderr + second.stderr + everything.stderr


def test_answered_records_are_left_alone(fake, tmp_path):
    notes = [annotation(f"t:{i}", ASTRAL_TRACE + f" ({i})", QUOTES) for i in range(4)]
    client = connect(fake.url, fake.owner_key)
    push(client, notes, dataset_name="d", workspace=None)
    ana = fake.add_user("ana")
    answer(fake, ana, "d", "t:0", spans=[], decision="reject")
    answer(fake, ana, "d", "t:1", decision=None, status="discarded")
    answer(fake, ana, "d", "t:2", spans=[(0, 7)], decision=None, status="draft")
    before = {r["external_id"]: (r["metadata"], r["suggestions"]) for r in fake.records_of("d")}

    changed = [n.model_copy(update={"confidence": 0.25, "spans": n.spans[:1]}) for n in notes[:3]]
    changed.append(notes[3].model_copy(update={"spans": []}))  # annotated again, nothing difficult found
    summary = push(client, changed, dataset_name="d", workspace=None)
    assert (summary.pushed, summary.updated, summary.skipped_answered) == (0, 2, 2)
    after = {r["external_id"]: (r["metadata"], r["suggestions"]) for r in fake.records_of("d")}
    assert after["t:0"] == before["t:0"] and after["t:1"] == before["t:1"]
    assert after["t:2"][0]["confidence"] == 0.25 and len(after["t:2"][1][0]["value"]) == 1  # a draft is not an answer
    assert [r["status"] for r in fake.record("d", "t:2")["responses"]] == ["draft"]
    assert len(before["t:3"][1][0]["value"]) == 3 and after["t:3"][1][0]["value"] == []  # old spans replaced


def test_a_span_reaching_the_end_of_an_astral_trace_is_clipped_for_the_server(fake, tmp_path):
    trace = "We know 𝑥 = 2, so the sum is 4 😀😀"
    note = annotation("end:0", trace, ["so the sum is 4 😀😀"])
    summary = push(connect(fake.url, fake.owner_key), [note], dataset_name="d", workspace=None)
    assert summary.clipped_spans == 1
    (item,) = fake.record("d", "end:0")["suggestions"][0]["value"]
    # the server refuses an end past len(trace) in code points, and 😀 must not be cut in half
    longest = max(end for end in range(note.spans[0].start, len(trace) + 1) if u16(trace, end) <= len(trace))
    assert (item["start"], item["end"]) == (u16(trace, note.spans[0].start), u16(trace, longest))
    assert trace[note.spans[0].start:longest] == "so the sum is 4 "


def test_long_pushes_go_in_batches_and_report_progress(fake):
    notes = [annotation(f"b:{i}", f"Step {i}: we multiply 𝑥 by {i} and add {i * i} to it.", [f"add {i * i}"])
             for i in range(BATCH + 20)]
    seen: list[tuple[int, int | None]] = []
    summary = push(connect(fake.url, fake.owner_key), iter(notes), dataset_name="big", workspace=None,
                   total=len(notes), on_progress=lambda done, total: seen.append((done, total)))
    assert summary.pushed == len(notes) and len(fake.records_of("big")) == len(notes)
    assert fake.requests.count(("PUT", "upsert_records")) == 2
    assert seen == [(BATCH, len(notes)), (len(notes), len(notes))]


# -- pull ------------------------------------------------------------------------------------------


def pulled_run(fake: FakeArgilla, tmp_path: Path, notes: list[Annotation]) -> Path:
    out = write_run(tmp_path / "own", notes)
    ok(run_cli("review", "push", out, "--dataset", "own", "--no-progress", env=env(fake, fake.owner_key)))
    return out


def test_pull_one_reviewer_converts_offsets_and_derives_history(fake, tmp_path):
    note = annotation("t:0", ASTRAL_TRACE, QUOTES)
    other = annotation("t:1", ASTRAL_TRACE + " again", QUOTES)
    out = pulled_run(fake, tmp_path, [note, other])
    kept, removed, resized = note.spans
    added = ASTRAL_TRACE.index("Let 𝑥 be the unknown")
    new_resized = (resized.start - 5, resized.end)  # "when 𝑥 > 0" grows to the left
    mine = [(kept.start, kept.end), new_resized, (added, added + len("Let 𝑥 be the unknown"))]
    ana = fake.add_user("ana")
    answer(fake, ana, "own", "t:0", spans=[(u16(ASTRAL_TRACE, s), u16(ASTRAL_TRACE, e)) for s, e in mine])
    answer(fake, fake.add_user("bo"), "own", "t:1", decision=None, status="discarded")
    answer(fake, fake.add_user("cy"), "own", "t:1", spans=[], decision=None, status="draft")

    result = ok(run_cli("review", "pull", out, "--dataset", "own", env=env(fake, fake.owner_key)))
    assert "pulled 2 review(s) of 2 trace(s) by 2 reviewer(s)" in result.stderr
    assert "accepted 1, rejected 1" in result.stderr and "1 draft answer(s) not pulled" in result.stderr

    with ReviewStore.for_run(out) as store:
        (review,) = store.reviews("t:0")
        (discarded,) = store.reviews("t:1")
    assert (review.reviewer, review.origin, review.decision) == ("ana", "argilla", "accepted")
    assert [(s.start, s.end) for s in review.spans] == sorted(mine)
    assert [s.text for s in review.spans] == [ASTRAL_TRACE[s:e] for s, e in sorted(mine)]
    assert [(s.start, s.end) for s in review.judge_spans] == [(s.start, s.end) for s in note.spans]
    assert review.judge_confidence == 0.5 and review.changed
    assert [(e.action, e.start, e.end, e.previous_start, e.previous_end) for e in review.history] == [
        ("add", added, added + len("Let 𝑥 be the unknown"), None, None),
        ("remove", None, None, removed.start, removed.end),
        ("resize", *new_resized, resized.start, resized.end),
        ("accept", None, None, None, None)]
    record_time = datetime.fromisoformat(fake.record("own", "t:0")["updated_at"]).replace(tzinfo=UTC)
    assert review.reviewed_at == record_time and all(e.at == record_time for e in review.history)
    assert (discarded.reviewer, discarded.decision, discarded.spans) == ("bo", "rejected", [])

    again = ok(run_cli("review", "pull", out, "--dataset", "own", env=env(fake, fake.owner_key)))
    assert "pulled 2 review(s)" in again.stderr
    with ReviewStore.for_run(out) as store:
        assert len(store.reviews()) == 2  # pulling again replaces, never duplicates


def test_pull_two_reviewers_reports_agreement(fake, tmp_path):
    notes = [annotation("t:0", ASTRAL_TRACE, QUOTES), annotation("t:1", ASTRAL_TRACE + " bis", QUOTES)]
    out = pulled_run(fake, tmp_path, notes)
    ana, bo = fake.add_user("ana"), fake.add_user("bo")
    a_spans = [(s.start, s.end) for s in notes[0].spans]
    b_spans = [(notes[0].spans[0].start, notes[0].spans[0].end + 3), (notes[0].spans[2].start, notes[0].spans[2].end)]
    answer(fake, ana, "own", "t:0", spans=[(u16(ASTRAL_TRACE, s), u16(ASTRAL_TRACE, e)) for s, e in a_spans])
    answer(fake, bo, "own", "t:0", spans=[(u16(ASTRAL_TRACE, s), u16(ASTRAL_TRACE, e)) for s, e in b_spans])
    answer(fake, ana, "own", "t:1", spans=[], decision="accept")
    answer(fake, bo, "own", "t:1", spans=[], decision="reject")

    result = ok(run_cli("review", "pull", out, "--dataset", "own", env=env(fake, fake.owner_key)))
    a_chars = {i for s, e in a_spans for i in range(s, e)}
    b_chars = {i for s, e in b_spans for i in range(s, e)}
    f1 = 2 * len(a_chars & b_chars) / (len(a_chars) + len(b_chars))
    decisions = (1.0 + 0.5) / 2  # t:0 both accept; t:1 one each way
    assert "pulled 4 review(s) of 2 trace(s) by 2 reviewer(s)" in result.stderr
    assert (f"agreement over 2 trace(s) with several reviewers: decisions {decisions:.2f}, "
            f"spans (character F1) {f1:.2f}") in result.stderr
    assert "t:1: ana, bo → rejected, decision agreement 0.50" in result.stderr  # a tie rejects
    with ReviewStore.for_run(out) as store:
        by_reviewer = {r.reviewer: r for r in store.reviews("t:0")}
    assert set(by_reviewer) == {"ana", "bo"}
    assert [(s.start, s.end) for s in by_reviewer["bo"].spans] == b_spans


def test_an_answer_splitting_a_character_is_reported_not_stored(fake, tmp_path):
    out = pulled_run(fake, tmp_path, [annotation("t:0", ASTRAL_TRACE, QUOTES)])
    inside = u16(ASTRAL_TRACE, ASTRAL_TRACE.index("𝑥")) + 1  # between the two halves of 𝑥
    answer(fake, fake.add_user("ana"), "own", "t:0", spans=[(inside, inside + 4)])
    answer(fake, fake.add_user("bo"), "own", "t:0", spans=[], decision="accept")
    result = ok(run_cli("review", "pull", out, "--dataset", "own", env=env(fake, fake.owner_key)))
    assert "not pulled: t:0 (ana):" in result.stderr and "surrogate pair" in result.stderr
    with ReviewStore.for_run(out) as store:
        assert [r.reviewer for r in store.reviews()] == ["bo"]


# -- errors ----------------------------------------------------------------------------------------


def test_cli_errors_are_one_line(fake, run, tmp_path):
    push_args = ("review", "push", run, "--dataset", "d")
    assert_one_clean_error(run_cli(*push_args, env=env(fake)), "ARGILLA_API_KEY is not set")
    assert_one_clean_error(run_cli(*push_args, env=env(key="k")), "--api-url or set ARGILLA_API_URL")
    down = f"http://127.0.0.1:{free_port()}"
    assert_one_clean_error(run_cli(*push_args, "--api-url", down, env=env(key="k")), f"cannot reach Argilla at {down}")
    refused = assert_one_clean_error(run_cli(*push_args, env=env(fake, "not-a-key")), "refused the API key")
    assert "not-a-key" not in refused
    assert_one_clean_error(run_cli("review", "pull", run, "--dataset", "nothing-here", env=env(fake, fake.owner_key)),
                           "no dataset 'nothing-here'", "run `splitreason review push` first")
    assert_one_clean_error(run_cli(*push_args, "--workspace", "nope", env=env(fake, fake.owner_key)),
                           "no Argilla workspace 'nope' (available: argilla)")

    blocker = tmp_path / "no_argilla" / "argilla"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('No module named argilla')\n")
    missing = env(fake, fake.owner_key, PYTHONPATH=str(blocker.parent) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    assert_one_clean_error(run_cli(*push_args, env=missing), "pip install 'splitreason[argilla]'")


def test_a_foreign_dataset_of_the_same_name_is_not_touched(fake, run):
    import argilla as rg

    client = connect(fake.url, fake.owner_key)
    settings = rg.Settings(fields=[rg.TextField(name="text", client=client)],
                           questions=[rg.LabelQuestion(name="label", labels=["a", "b"], client=client)])
    rg.Dataset(name="theirs", settings=settings, client=client, workspace="argilla").create()
    result = run_cli("review", "push", run, "--dataset", "theirs", env=env(fake, fake.owner_key))
    assert_one_clean_error(result, "is not a splitreason review dataset", "choose another --dataset")
    assert fake.records_of("theirs") == []
