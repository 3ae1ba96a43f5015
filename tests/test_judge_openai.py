"""The OpenAI-compatible judge end to end, against the scripted judge server (a real HTTP
server on 127.0.0.1): retries, timeouts, unusable answers, alignment of what comes back, the
request cache, provenance, rate limit, concurrency and the command line's error messages.

Each trace's problem carries `[case:NAME]`; the server's script says what it answers to the
1st, 2nd, ... request for that case (see tests/judge_server.py).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console

from splitreason import prompts
from splitreason.executors.local import run_annotate
from splitreason.schemas.annotate import AnnotateSettings
from splitreason.schemas.run_manifest import RunConfigError
from splitreason.judges.base import JudgeUnavailable
from splitreason.judges.cache import cache_key
from splitreason.judges.factory import JudgeSettings, create_judge
from splitreason.judges.llm import TEMPLATE, SamplingParams, build_messages
from splitreason.judges.registry import JudgeConfigError, load_aliases, resolve
from splitreason.schemas import Trace
from tests.helpers import cli_env, free_port
from tests.judge_server import by_case, case_rows, read_annotations, sentences

JUDGE = "openai:scripted-judge"
SECRET = "sk-splitreason-test-9f3c1e7d-DO-NOT-LEAK"


@pytest.fixture(autouse=True)
def _hermetic_env(hermetic_judge_env, monkeypatch):
    """Every test here runs with the shared hermetic judge environment (conftest)."""


def _judges(judge) -> list[str]:
    """--judge as the settings hold it: a list, the first judge first."""
    return [judge] if isinstance(judge, str) else list(judge)


def annotate(server, source: Path, out: Path, **options):
    """run_annotate against the server with fast retries; returns (counts, seconds)."""
    options.setdefault("retry_initial", 0.01)
    options.setdefault("retry_max", 0.05)
    request = AnnotateSettings(input=str(source), out=out, judge=_judges(options.pop("judge", JUDGE)),
                              base_url=options.pop("base_url", server.base_url if server else None),
                              progress=False, **options)
    started = time.monotonic()
    counts = asyncio.run(run_annotate(request, Console(stderr=True, quiet=True)))
    return counts, time.monotonic() - started


def manifest(out: Path) -> dict:
    return json.loads((out / "run.json").read_text(encoding="utf-8"))


def annotation_lines(out: Path) -> list[str]:
    return sorted(
        line for path in sorted((out / "annotations").glob("shard-*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
    )


# -- transient errors: retried, and the wait honoured ----------------------------------------------


def test_429_waits_for_retry_after_then_succeeds(judge_server, write_jsonl, tmp_path):
    server = judge_server(script={"limited": ["429:1", "ok"]})
    source = write_jsonl("in.jsonl", case_rows(["limited"]))
    counts, elapsed = annotate(server, source, tmp_path / "out")

    assert server.actions_for("limited") == ["429:1", "ok"]
    first, second = server.requests_for("limited")
    assert second.at - first.at >= 0.95, "Retry-After: 1 was not honoured"
    assert elapsed >= 1.0
    assert first.payload_sha == second.payload_sha  # the same request, sent again
    record = by_case(read_annotations(tmp_path / "out"))["limited"]
    assert record["status"] == "accepted" and record["status_reason"] == "ok" and len(record["spans"]) == 3
    assert counts.requests == 2
    invocation = manifest(tmp_path / "out")["invocations"][-1]
    assert invocation["retries"] == 1 and invocation["errors"] == {"rate_limited": 1}


def test_retry_after_ms_header_is_honoured(judge_server, write_jsonl, tmp_path):
    server = judge_server(script={"limited": ["429ms:400", "ok"]})
    source = write_jsonl("in.jsonl", case_rows(["limited"]))
    annotate(server, source, tmp_path / "out")
    first, second = server.requests_for("limited")
    assert second.at - first.at >= 0.38
    assert by_case(read_annotations(tmp_path / "out"))["limited"]["status"] == "accepted"


def test_server_errors_are_retried_then_succeed(judge_server, write_jsonl, tmp_path):
    server = judge_server(script={"e500": ["500", "ok"], "e503": ["503", "503", "ok"], "e502": ["502", "ok"]})
    source = write_jsonl("in.jsonl", case_rows(["e500", "e503", "e502"]))
    counts, elapsed = annotate(server, source, tmp_path / "out")

    assert server.actions_for("e500") == ["500", "ok"]
    assert server.actions_for("e503") == ["503", "503", "ok"]
    assert server.actions_for("e502") == ["502", "ok"]
    records = by_case(read_annotations(tmp_path / "out"))
    assert all(record["status"] == "accepted" and len(record["spans"]) == 3 for record in records.values())
    assert counts.requests == len(server.log) == 7
    assert elapsed < 3.0  # --retry-initial 0.01: backoff (and its jitter) stays tiny


def test_exhausted_attempts_reject_the_trace_in_the_same_run(judge_server, write_jsonl, tmp_path):
    server = judge_server(script={"down": ["500"], "fine": ["ok"]})
    source = write_jsonl("in.jsonl", case_rows(["down", "fine"]))
    counts, _ = annotate(server, source, tmp_path / "out", max_attempts=3)

    # Exactly max_attempts requests: the transport retries, the SDK's own retries are off.
    assert server.actions_for("down") == ["500", "500", "500"]
    records = by_case(read_annotations(tmp_path / "out"))
    down = records["down"]
    assert down["status"] == "rejected"
    assert down["status_reason"].startswith("judge_failed: server_error after 3 attempts")
    assert down["spans"] == [] and down["excerpts"] == 0 and down["hallucinated"] == []
    assert records["fine"]["status"] == "accepted"
    assert counts.status["rejected"] == 1 and counts.reasons["judge_failed"] == 1
    totals = manifest(tmp_path / "out")["totals"]["status"]
    assert totals == {"rejected": 1, "accepted": 1}


def test_hung_request_times_out_and_is_retried(judge_server, write_jsonl, tmp_path):
    server = judge_server(script={"slow": ["hang", "ok"]})
    source = write_jsonl("in.jsonl", case_rows(["slow"]))
    counts, elapsed = annotate(server, source, tmp_path / "out", timeout=0.5)

    assert server.actions_for("slow") == ["hang", "ok"]
    assert 0.5 <= elapsed < 4.0
    first, second = server.requests_for("slow")
    assert second.at - first.at >= 0.45
    assert by_case(read_annotations(tmp_path / "out"))["slow"]["status"] == "accepted"
    assert manifest(tmp_path / "out")["invocations"][-1]["errors"] == {"timeout": 1}


def test_reset_connection_is_retried(judge_server, write_jsonl, tmp_path):
    server = judge_server(script={"flaky": ["reset", "ok"]})
    source = write_jsonl("in.jsonl", case_rows(["flaky"]))
    annotate(server, source, tmp_path / "out")
    assert server.actions_for("flaky") == ["reset", "ok"]
    assert by_case(read_annotations(tmp_path / "out"))["flaky"]["status"] == "accepted"
    assert manifest(tmp_path / "out")["invocations"][-1]["errors"] == {"connection": 1}


# -- answers that cannot be used as they are --------------------------------------------------------


def budgets(server, case: str) -> list[int]:
    return [entry.payload["max_tokens"] for entry in server.requests_for(case)]


def test_truncated_answer_is_asked_again_with_a_larger_budget(judge_server, write_jsonl, tmp_path):
    """Cut at max_tokens with no quote finished: asked again with twice the max_tokens, never the
    same payload (at temperature 0 it would only buy the same truncation again)."""
    server = judge_server(script={"cut": ["truncated", "ok"], "always_cut": ["truncated"]})
    source = write_jsonl("in.jsonl", case_rows(["cut", "always_cut"]))
    annotate(server, source, tmp_path / "out", max_attempts=3)

    assert server.actions_for("cut") == ["truncated", "ok"]
    assert budgets(server, "cut") == [4096, 8192]
    assert len({entry.payload_sha for entry in server.requests_for("cut")}) == 2  # never re-sent identically
    records = by_case(read_annotations(tmp_path / "out"))
    cut = records["cut"]
    assert cut["status"] == "accepted" and len(cut["spans"]) == 3
    # Tokens of the truncated answer count too.
    assert cut["usage"]["completion_tokens"] == sum(entry.tokens[1] for entry in server.requests_for("cut"))
    assert cut["usage"]["prompt_tokens"] == sum(entry.tokens[0] for entry in server.requests_for("cut"))
    assert cut["judge"]["params"]["max_tokens"] == 4096  # provenance: what the run asked for first

    assert server.actions_for("always_cut") == ["truncated"] * 3 and budgets(server, "always_cut") == [4096, 8192, 16384]
    always = records["always_cut"]
    assert always["status"] == "rejected" and always["spans"] == []
    assert always["status_reason"].startswith("judge_unusable_answer: no usable answer in 3 attempts")
    assert "truncated" in always["status_reason"] and "max_tokens 16384" in always["status_reason"]
    assert always["usage"]["completion_tokens"] > 0  # failed attempts' tokens are not lost


def test_truncated_answer_keeps_its_complete_spans(judge_server, write_jsonl, tmp_path):
    """Cut inside its third quote: the two it finished are kept, and nothing more is bought."""
    server = judge_server(script={"two_done": ["cut_after:2", "ok"], "none_done": ["cut_after:0", "ok"]})
    source = write_jsonl("in.jsonl", case_rows(["two_done", "none_done"]))
    counts, _ = annotate(server, source, tmp_path / "out")

    records = by_case(read_annotations(tmp_path / "out"))
    assert server.actions_for("two_done") == ["cut_after:2"]  # one request
    two = records["two_done"]
    trace = two["trace"]
    assert [span["text"] for span in two["spans"]] == sentences(trace)[1:3]
    assert not two["status_reason"].startswith("judge_")
    # ... but marked: a cut answer goes to a person, never accepted unseen.
    assert two["status"] == "review" and two["status_reason"] == "truncated_answer"
    assert records["none_done"]["status"] == "accepted"  # its second, larger answer was whole
    [entry] = server.requests_for("two_done")
    assert two["usage"] == {"prompt_tokens": entry.tokens[0], "completion_tokens": 4096}
    # No quote finished: asked again, with a larger budget.
    assert server.actions_for("none_done") == ["cut_after:0", "ok"] and budgets(server, "none_done") == [4096, 8192]
    assert len(records["none_done"]["spans"]) == 3
    assert counts.requests == 3


def test_the_budget_grows_to_a_ceiling_and_stops_there(judge_server, write_jsonl, tmp_path):
    server = judge_server(script={"fits_later": ["needs:9000"], "never_fits": ["needs:100000"]})
    source = write_jsonl("in.jsonl", case_rows(["fits_later", "never_fits"]))
    counts, _ = annotate(server, source, tmp_path / "out", max_tokens=4096)

    records = by_case(read_annotations(tmp_path / "out"))
    assert budgets(server, "fits_later") == [4096, 8192, 16384] and records["fits_later"]["status"] == "accepted"
    # Each cut answer spent its whole budget; the record counts every token paid for.
    assert records["fits_later"]["usage"]["completion_tokens"] == 4096 + 8192 + server.requests_for("fits_later")[-1].tokens[1]
    # 4096 -> 8192 -> 16384 -> 32768 (the ceiling): a fifth request would be the same payload again.
    assert budgets(server, "never_fits") == [4096, 8192, 16384, 32768]
    never = records["never_fits"]
    assert never["status"] == "rejected" and "max_tokens 32768" in never["status_reason"]
    assert counts.requests == 3 + 4


def test_non_json_answer_is_asked_again_then_rejected(judge_server, write_jsonl, tmp_path):
    server = judge_server(script={"prose_once": ["nonjson", "ok"], "prose": ["nonjson"], "blank": ["empty"],
                                  "blank_once": ["empty", "ok"]})
    source = write_jsonl("in.jsonl", case_rows(["prose_once", "prose", "blank", "blank_once"]))
    counts, _ = annotate(server, source, tmp_path / "out")

    records = by_case(read_annotations(tmp_path / "out"))
    assert server.actions_for("prose_once") == ["nonjson", "ok"]
    assert records["prose_once"]["status"] == "accepted"
    assert server.actions_for("blank_once") == ["empty", "ok"]
    assert records["blank_once"]["status"] == "accepted"

    # At temperature 0 the identical payload would buy the identical answer: asked again once, with the
    # parse error quoted (a different payload), then rejected. Never two requests with one payload.
    for case in ("prose_once", "blank_once", "prose", "blank"):
        shas = [entry.payload_sha for entry in server.requests_for(case)]
        assert len(shas) == len(set(shas)), case
    assert server.actions_for("prose") == ["nonjson"] * 2
    repair = server.requests_for("prose")[1].payload["messages"][-1]["content"]
    assert "could not be used (no JSON object found in the answer)" in repair
    assert records["prose"]["status"] == "rejected"
    assert records["prose"]["status_reason"].startswith("judge_unusable_answer: no usable answer in 2 attempts")
    assert "no JSON object" in records["prose"]["status_reason"]
    assert "asked again once with the error quoted" in records["prose"]["status_reason"]
    assert server.actions_for("blank") == ["empty"] * 2
    assert records["blank"]["status_reason"].startswith("judge_unusable_answer:")
    assert "empty answer" in records["blank"]["status_reason"]
    assert counts.reasons["judge_unusable_answer"] == 2


def test_above_temperature_zero_a_retry_is_a_new_sample(judge_server, write_jsonl, tmp_path):
    server = judge_server(script={"prose_once": ["nonjson", "ok"], "prose": ["nonjson"]})
    source = write_jsonl("in.jsonl", case_rows(["prose_once", "prose"]))
    annotate(server, source, tmp_path / "out", temperature=0.7)

    records = by_case(read_annotations(tmp_path / "out"))
    [first, second] = server.requests_for("prose_once")
    assert first.payload_sha == second.payload_sha and records["prose_once"]["status"] == "accepted"
    # ... but the same answer to the same request twice ends the attempts.
    assert server.actions_for("prose") == ["nonjson"] * 2
    assert "the same answer twice" in records["prose"]["status_reason"]


def test_empty_spans_list_goes_to_review(judge_server, write_jsonl, tmp_path):
    server = judge_server(script={"nothing": ["empty_spans"]})
    source = write_jsonl("in.jsonl", case_rows(["nothing"]))
    annotate(server, source, tmp_path / "out")
    record = by_case(read_annotations(tmp_path / "out"))["nothing"]
    assert len(server.log) == 1  # a valid (if empty) answer is not asked again
    assert record["status"] == "review" and record["status_reason"] == "no_spans" and record["spans"] == []


# -- what comes back, aligned ----------------------------------------------------------------------


def test_hallucinated_quote_is_counted_not_forced_in(judge_server, write_jsonl, tmp_path):
    server = judge_server(script={"invented": ["hallucinate"]})
    source = write_jsonl("in.jsonl", case_rows(["invented"]))
    annotate(server, source, tmp_path / "out")
    record = by_case(read_annotations(tmp_path / "out"))["invented"]
    assert record["excerpts"] == 2
    assert [h["text"] for h in record["hallucinated"]] == [
        "This sentence was never written anywhere in the trace at all."]
    assert len(record["spans"]) == 1
    real = sentences(record["trace"])[1]
    assert record["spans"][0]["text"] == real and record["spans"][0]["match"] == "exact"
    assert record["status"] != "accepted"  # half the quotes invented: not trusted blindly


def test_overlapping_quotes_are_merged(judge_server, write_jsonl, tmp_path):
    server = judge_server(script={"twice": ["overlap"]})
    source = write_jsonl("in.jsonl", case_rows(["twice"]))
    annotate(server, source, tmp_path / "out")
    record = by_case(read_annotations(tmp_path / "out"))["twice"]
    assert record["excerpts"] == 2 and record["hallucinated"] == []
    assert len(record["spans"]) == 1
    span = record["spans"][0]
    assert span["text"] == sentences(record["trace"])[1]
    assert span["reason"] == "a; b"


def test_unescaped_latex_is_aligned_exactly(judge_server, write_jsonl, tmp_path):
    server = judge_server(script={"tex": ["latex"], "mixed": ["mixed_latex"]})
    source = write_jsonl("in.jsonl", case_rows(["tex", "mixed"]))
    annotate(server, source, tmp_path / "out")
    records = by_case(read_annotations(tmp_path / "out"))

    tex = records["tex"]
    latex_sentences = [s for s in sentences(tex["trace"]) if "\\" in s][:2]
    assert [span["text"] for span in tex["spans"]] == latex_sentences
    assert all(span["match"] == "exact" and span["score"] == 1.0 for span in tex["spans"])
    assert "\\frac{" in tex["spans"][0]["text"] and "\\sqrt{" in tex["spans"][0]["text"]
    assert tex["hallucinated"] == []

    # A plain first quote decodes on its own; the answer is still the whole object.
    mixed = records["mixed"]
    assert mixed["excerpts"] == 2 and mixed["hallucinated"] == [] and len(mixed["spans"]) == 2
    assert any("\\sqrt{" in span["text"] for span in mixed["spans"])
    assert all(span["match"] == "exact" for span in mixed["spans"])


def test_answer_shapes_models_write(judge_server, write_jsonl, tmp_path):
    server = judge_server(script={"fenced": ["ok_fenced"], "listed": ["list"], "strings": ["strings"]})
    source = write_jsonl("in.jsonl", case_rows(["fenced", "listed", "strings"]))
    annotate(server, source, tmp_path / "out")
    assert len(server.log) == 3  # each understood at the first answer
    for case, record in by_case(read_annotations(tmp_path / "out")).items():
        assert record["status"] == "accepted", case
        assert [span["text"] for span in record["spans"]] == sentences(record["trace"])[1:4], case


def test_paraphrased_quote_is_aligned_fuzzily(judge_server, write_jsonl, tmp_path):
    server = judge_server(script={"typo": ["paraphrase"]})
    source = write_jsonl("in.jsonl", case_rows(["typo"]))
    annotate(server, source, tmp_path / "out")
    record = by_case(read_annotations(tmp_path / "out"))["typo"]
    assert len(record["spans"]) == 1 and record["hallucinated"] == []
    span = record["spans"][0]
    assert span["match"] in ("normalized", "fuzzy") and span["score"] < 1.0
    assert span["text"] == sentences(record["trace"])[1]


# -- permanent errors, the cache and --retry-rejected ----------------------------------------------


def test_bad_request_is_not_retried_and_is_cached(judge_server, write_jsonl, tmp_path):
    server = judge_server(script={"refused": ["400", "ok"], "fine": ["ok"]})
    source = write_jsonl("in.jsonl", case_rows(["refused", "fine"]))
    out = tmp_path / "out"
    annotate(server, source, out)

    assert server.actions_for("refused") == ["400"]  # not retried
    record = by_case(read_annotations(out))["refused"]
    assert record["status"] == "rejected" and record["spans"] == []
    assert record["status_reason"].startswith("judge_request_refused: HTTP 400")
    assert manifest(out)["invocations"][-1]["errors"] == {"http_400": 1}

    # Resuming the same OUT: nothing is resent.
    counts, _ = annotate(server, source, out)
    assert counts.already_done == 2 and counts.requests == 0 and len(server.log) == 2

    # A fresh OUT with the same cache: the refusal is remembered, not resent.
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    shutil.copy(out / "cache.sqlite", fresh / "cache.sqlite")
    counts, _ = annotate(server, source, fresh)
    assert len(server.log) == 2 and counts.requests == 0
    assert by_case(read_annotations(fresh))["refused"]["status_reason"] == record["status_reason"]


def test_retry_rejected_asks_again_and_replaces_the_record(judge_server, write_jsonl, tmp_path):
    server = judge_server(script={"refused": ["400", "ok"], "prose": ["nonjson", "nonjson", "ok"],
                                  "down": ["503", "503", "ok"], "fine": ["ok"]})
    source = write_jsonl("in.jsonl", case_rows(["refused", "prose", "down", "fine"]))
    out = tmp_path / "out"
    annotate(server, source, out, max_attempts=2)
    first = by_case(read_annotations(out))
    assert first["refused"]["status_reason"].startswith("judge_request_refused")
    assert first["prose"]["status_reason"].startswith("judge_unusable_answer")
    assert first["down"]["status_reason"].startswith("judge_failed")
    assert first["fine"]["status"] == "accepted"
    sent = len(server.log)

    counts, _ = annotate(server, source, out, max_attempts=2, retry_rejected=True)
    assert counts.retried_rejected == 3 and counts.already_done == 1
    # Each rejected trace is asked again (its cached unusable answers are not replayed).
    assert server.actions_for("refused") == ["400", "ok"]
    assert server.actions_for("prose") == ["nonjson", "nonjson", "ok"]
    assert server.actions_for("down") == ["503", "503", "ok"]
    assert server.actions_for("fine") == ["ok"]
    assert counts.requests == len(server.log) - sent == 3

    records = read_annotations(out)
    assert sorted(record["trace_id"] for record in records) == ["u0:0", "u1:0", "u2:0", "u3:0"]
    assert all(record["status"] == "accepted" for record in records)
    assert manifest(out)["totals"]["status"] == {"accepted": 4}


def test_second_identical_run_uses_the_cache(judge_server, write_jsonl, tmp_path):
    cases = ["a", "b", "limited", "tex", "invented"]
    server = judge_server(script={"limited": ["429:0", "ok"], "tex": ["latex"], "invented": ["hallucinate"],
                                  "b": ["truncated", "ok"]})
    source = write_jsonl("in.jsonl", case_rows(cases))
    first_out, second_out = tmp_path / "first", tmp_path / "second"
    first_counts, _ = annotate(server, source, first_out)
    sent = len(server.log)
    assert first_counts.requests == sent == 7

    second_out.mkdir()
    shutil.copy(first_out / "cache.sqlite", second_out / "cache.sqlite")
    counts, _ = annotate(server, source, second_out)
    assert len(server.log) == sent and counts.requests == 0
    assert counts.cache_hits == 6  # one per answer received (the 429 was never an answer)
    assert annotation_lines(second_out) == annotation_lines(first_out)


def test_provenance_and_cache_key_follow_sampling_parameters(judge_server, write_jsonl, tmp_path):
    server = judge_server()
    source = write_jsonl("in.jsonl", case_rows(["a", "b"]))
    first_out = tmp_path / "t0"
    annotate(server, source, first_out, temperature=0.0, seed=7)
    for record in read_annotations(first_out):
        judge = record["judge"]
        assert judge["name"] == JUDGE and judge["backend"] == "openai" and judge["model"] == "scripted-judge"
        assert judge["prompt_hash"] == prompts.template_hash(TEMPLATE) and len(judge["prompt_hash"]) == 16
        expected = {"temperature": 0.0, "top_p": 1.0, "max_tokens": 4096, "seed": 7,
                    "response_format": "json_schema", "max_spans": 32}
        assert {key: judge["params"].get(key) for key in expected} == expected
    assert manifest(first_out)["config"]["judge"]["params"]["temperature"] == 0.0
    sent = [entry.payload for entry in server.log]
    assert all(payload["temperature"] == 0.0 and payload["seed"] == 7 for payload in sent)

    # Same OUT, another temperature: refused by design (would mix incomparable annotations).
    with pytest.raises(RunConfigError, match="different settings"):
        annotate(server, source, first_out, temperature=0.7, seed=7)
    assert len(server.log) == 2

    # A new OUT with the old cache: a different temperature is a different key, so new requests.
    other_out = tmp_path / "t7"
    other_out.mkdir()
    shutil.copy(first_out / "cache.sqlite", other_out / "cache.sqlite")
    counts, _ = annotate(server, source, other_out, temperature=0.7, seed=7)
    assert counts.requests == 2 and len(server.log) == 4
    assert server.log[2].payload["temperature"] == 0.7
    assert {e.payload_sha for e in server.log[:2]}.isdisjoint({e.payload_sha for e in server.log[2:]})
    assert {r["judge"]["params"]["temperature"] for r in read_annotations(other_out)} == {0.7}


def test_cache_key_covers_every_parameter_and_the_attempt():
    spec = resolve(JUDGE, load_aliases(), base_url="http://127.0.0.1:9/v1")
    trace = Trace(trace_id="t:0", uuid="t", generation_index=0, problem="p",
                  text="Some reasoning text that is long enough to quote.")
    messages = build_messages(trace, 0.15, 32)

    def key(attempt: int = 0, **sampling) -> str:
        judge = create_judge(spec, JudgeSettings(sampling=SamplingParams(**sampling)), cache=None)
        return cache_key(judge.build_payload(messages), attempt)

    base = key()
    assert key() == base
    variants = [key(temperature=0.5), key(top_p=0.9), key(max_tokens=1000), key(seed=1), key(attempt=1)]
    assert len({base, *variants}) == 6
    judge = create_judge(spec, JudgeSettings(response_format="json_object"), cache=None)
    assert cache_key(judge.build_payload(messages), 0) != base


def test_payload_sent_is_the_payload_hashed(judge_server, write_jsonl, tmp_path):
    """What is cached is keyed by exactly what went over the wire (no hidden fields, no key)."""
    server = judge_server()
    source = write_jsonl("in.jsonl", case_rows(["a"]))
    annotate(server, source, tmp_path / "out")
    spec = resolve(JUDGE, load_aliases(), base_url=server.base_url)
    judge = create_judge(spec, JudgeSettings(), cache=None)
    record = read_annotations(tmp_path / "out")[0]
    trace = Trace(trace_id=record["trace_id"], uuid="u0", generation_index=0, problem=record["problem"],
                  text=record["trace"])
    assert server.log[0].payload == judge.build_payload(build_messages(trace, 0.15, 32))


# -- rate limit and concurrency --------------------------------------------------------------------


def test_rpm_spaces_requests(judge_server, write_jsonl, tmp_path):
    server = judge_server()
    source = write_jsonl("in.jsonl", case_rows(["a", "b", "c", "d"]))
    _, elapsed = annotate(server, source, tmp_path / "out", rpm=120, concurrency=4)
    arrivals = sorted(entry.at for entry in server.log)
    assert len(arrivals) == 4
    assert arrivals[-1] - arrivals[0] >= 1.4  # 120/min: one every 0.5 s, no burst
    assert min(b - a for a, b in zip(arrivals, arrivals[1:])) >= 0.45
    assert elapsed >= 1.4


def test_concurrent_requests_overlap(judge_server, write_jsonl, tmp_path):
    server = judge_server(latency=0.2)
    source = write_jsonl("in.jsonl", case_rows([f"c{i}" for i in range(16)]))
    counts, elapsed = annotate(server, source, tmp_path / "out", concurrency=8)
    assert counts.annotated == 16 and len(server.log) == 16
    assert elapsed < 16 * 0.2 * 0.75  # serial would be 3.2 s; 8 at a time is about 0.4 s (slack for a busy machine)
    assert 4 <= server.max_in_flight <= 8
    assert len(read_annotations(tmp_path / "out")) == 16


# -- credentials ---------------------------------------------------------------------------------


def test_api_key_never_reaches_out(judge_server, write_jsonl, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    server = judge_server(script={"refused": ["404"], "bad": ["422"], "down": ["500"], "prose": ["nonjson"],
                                  "limited": ["429:0", "ok"]})
    source = write_jsonl("in.jsonl", case_rows(["ok", "refused", "bad", "down", "prose", "limited"]))
    out = tmp_path / "out"
    annotate(server, source, out, max_attempts=2)

    # The key was used...
    assert all(entry.headers.get("Authorization") == f"Bearer {SECRET}" for entry in server.log)
    # ...and is nowhere in OUT, not even in the SQLite bytes.
    files = [path for path in out.rglob("*") if path.is_file()]
    assert {path.name for path in files} >= {"run.json", "cache.sqlite", "shard-00000-of-00001.jsonl"}
    for path in files:
        data = path.read_bytes()
        assert SECRET.encode() not in data, path
        assert SECRET[-12:].encode() not in data, path
    statuses = {case: record["status_reason"].split(":")[0] for case, record in by_case(read_annotations(out)).items()}
    assert statuses["refused"] == "judge_request_refused" and statuses["bad"] == "judge_request_refused"
    assert statuses["down"] == "judge_failed" and statuses["prose"] == "judge_unusable_answer"


# -- unreachable or misconfigured judges: one clear line, exit code 2 ----------------------------


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "splitreason.cli", *args], capture_output=True, text=True,
                          env=env or cli_env(), timeout=120)


@pytest.fixture(scope="module")
def cli_errors(tmp_path_factory):
    """`splitreason annotate` against judges it cannot use, all started at once (each one is a
    fresh interpreter importing the SDKs, so running them side by side saves most of the wait)."""
    from tests.judge_server import ScriptedJudgeServer

    root = tmp_path_factory.mktemp("cli_errors")
    source = root / "in.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in case_rows(["a"])), encoding="utf-8")
    closed = f"http://127.0.0.1:{free_port()}/v1"
    env = cli_env(XDG_CONFIG_HOME=str(root / "xdg"))
    with ScriptedJudgeServer() as server:
        runs = {
            "unreachable": (["--judge", JUDGE, "--base-url", closed], env),
            "with_query": (["--judge", JUDGE, "--base-url", closed + "?api_key=sk-in-the-query-123"], env),
            "alias": (["--judge", "qwen-32b"], {**env, "SPLITREASON_QWEN_32B_URL": closed}),
            "no_key": (["--judge", "gpt-4o"], env),
            "mismatch": (["--judge", "openai:some-other-model", "--base-url", server.base_url], env),
        }
        processes = {
            name: subprocess.Popen([sys.executable, "-m", "splitreason.cli", "annotate", str(source),
                                    "-o", str(root / name), "--no-progress", *args],
                                   env=run_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for name, (args, run_env) in runs.items()
        }
        results = {}
        for name, process in processes.items():
            stdout, stderr = process.communicate(timeout=120)
            results[name] = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
        sent = len(server.log)
    return {"results": results, "closed": closed, "root": root, "sent_to_server": sent}


def assert_one_line_error(result: subprocess.CompletedProcess, code: int) -> str:
    """One error line and the exit code of its kind: 1 a judge that cannot be reached, 2 one set up wrong."""
    assert result.returncode == code, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.stderr
    return lines[0]


def test_unreachable_judge_is_one_clear_line(cli_errors):
    url = cli_errors["closed"]
    line = assert_one_line_error(cli_errors["results"]["unreachable"], 1)
    assert f"cannot reach {url}" in line and f"GET {url}/models" in line
    assert "--base-url" in line
    assert not (cli_errors["root"] / "unreachable" / "run.json").exists()


def test_the_probe_url_keeps_a_base_url_query_after_the_models_path(cli_errors):
    url = cli_errors["closed"]
    line = assert_one_line_error(cli_errors["results"]["with_query"], 1)
    assert f"GET {url}/models?api_key=*** -> APIConnectionError" in line, line
    assert "sk-in-the-query-123" not in line


def test_unreachable_alias_suggests_how_to_start_it(cli_errors):
    line = assert_one_line_error(cli_errors["results"]["alias"], 1)
    assert f"cannot reach {cli_errors['closed']}" in line
    assert "Start one with: vllm serve Qwen/Qwen2.5-32B-Instruct" in line and "--base-url" in line


def test_missing_api_key_is_a_clear_message(cli_errors):
    line = assert_one_line_error(cli_errors["results"]["no_key"], 2)
    assert "no API key" in line and "OPENAI_API_KEY" in line and "https://api.openai.com/v1" in line


def test_served_model_mismatch_is_a_clear_message(cli_errors):
    line = assert_one_line_error(cli_errors["results"]["mismatch"], 2)
    assert "serves scripted-judge, not some-other-model" in line
    assert "--judge openai:scripted-judge" in line
    assert cli_errors["sent_to_server"] == 0  # nothing was sent to the wrong model


def test_in_process_errors_say_unavailable_or_set_up_wrong(tmp_path, write_jsonl):
    source = write_jsonl("in.jsonl", case_rows(["a"]))
    with pytest.raises(JudgeUnavailable, match="cannot reach"):  # a ServiceUnavailable: exit 1
        annotate(None, source, tmp_path / "out", base_url=f"http://127.0.0.1:{free_port()}/v1")
    with pytest.raises(JudgeConfigError, match="OPENAI_API_KEY"):  # a UsageError: exit 2
        annotate(None, source, tmp_path / "out2", judge="gpt-4o")
    assert not (tmp_path / "out").exists() and not (tmp_path / "out2").exists()


@pytest.mark.slow
def test_cli_run_retries_and_resumes_from_cache(judge_server, write_jsonl, tmp_path):
    server = judge_server(script={"limited": ["429:1", "ok"], "down": ["503", "ok"], "refused": ["400"]})
    source = write_jsonl("in.jsonl", case_rows(["limited", "down", "refused", "ok"]))
    out = tmp_path / "out"
    args = ["annotate", str(source), "-o", str(out), "--judge", JUDGE, "--base-url", server.base_url,
            "--retry-initial", "0.01", "--no-progress"]
    started = time.monotonic()
    result = cli(*args, env=cli_env(XDG_CONFIG_HOME=str(tmp_path)))
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started >= 1.0  # Retry-After: 1
    assert "Traceback" not in result.stderr
    records = by_case(read_annotations(out))
    assert {case: record["status"] for case, record in records.items()} == {
        "limited": "accepted", "down": "accepted", "refused": "rejected", "ok": "accepted"}
    assert len(server.log) == 6

    # A second identical run into a fresh OUT with the cache: zero requests, same annotations.
    again = tmp_path / "again"
    again.mkdir()
    shutil.copy(out / "cache.sqlite", again / "cache.sqlite")
    result = cli(*[arg if arg != str(out) else str(again) for arg in args], env=cli_env(XDG_CONFIG_HOME=str(tmp_path)))
    assert result.returncode == 0, result.stderr
    assert len(server.log) == 6
    assert annotation_lines(again) == annotation_lines(out)
    assert manifest(again)["invocations"][-1]["requests"] == 0
