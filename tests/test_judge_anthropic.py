"""The Anthropic judge through the real anthropic SDK, against the scripted server's /v1/messages.

Base URL: the anthropic SDK appends "/v1/messages" (and "/v1/models") to its base URL itself,
so the base URL is the bare origin, `--base-url http://127.0.0.1:PORT` (the server's
`root_url`), unlike the openai SDK's ".../v1". A URL written OpenAI-style with a trailing /v1
is accepted too: the judge drops the /v1 rather than sending every request to /v1/v1/messages.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from pathlib import Path

import pytest
from rich.console import Console

from splitreason.executors.local import run_annotate
from splitreason.schemas.annotate import AnnotateSettings
from splitreason.judges.base import JudgeUnavailable
from splitreason.judges.registry import JudgeConfigError
from tests.helpers import free_port
from tests.judge_server import by_case, case_rows, read_annotations, sentences

JUDGE = "anthropic:scripted-judge"
SECRET = "sk-ant-splitreason-test-0b7e44a1-DO-NOT-LEAK"


@pytest.fixture(autouse=True)
def _hermetic_env(hermetic_judge_env, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "dummy-test-key")


def _judges(judge) -> list[str]:
    """--judge as the settings hold it: a list, the first judge first."""
    return [judge] if isinstance(judge, str) else list(judge)


def annotate(base_url: str, source: Path, out: Path, **options):
    options.setdefault("retry_initial", 0.01)
    options.setdefault("retry_max", 0.05)
    request = AnnotateSettings(input=str(source), out=out, judge=_judges(options.pop("judge", JUDGE)), base_url=base_url,
                              progress=False, **options)
    started = time.monotonic()
    counts = asyncio.run(run_annotate(request, Console(stderr=True, quiet=True)))
    return counts, time.monotonic() - started


def test_success_through_the_sdk(judge_server, write_jsonl, tmp_path):
    server = judge_server(script={"tex": ["latex"]})
    source = write_jsonl("in.jsonl", case_rows(["plain", "tex"]))
    counts, _ = annotate(server.root_url, source, tmp_path / "out")

    assert counts.requests == 2 and len(server.log) == 2
    records = by_case(read_annotations(tmp_path / "out"))
    plain = records["plain"]
    assert plain["status"] == "accepted" and plain["status_reason"] == "ok"
    assert [span["text"] for span in plain["spans"]] == sentences(plain["trace"])[1:4]
    assert all(span["match"] == "exact" for span in records["tex"]["spans"])
    assert plain["judge"]["backend"] == "anthropic" and plain["judge"]["model"] == "scripted-judge"

    # The Messages API request: system apart, max_tokens and temperature sent (temperature goes
    # through extra_body, which anthropic>=1.0 requires), no top_p, no response_format.
    payload = server.requests_for("plain")[0].payload
    assert set(payload) == {"model", "system", "messages", "max_tokens", "temperature"}
    assert payload["temperature"] == 0.0 and payload["max_tokens"] == 4096
    assert payload["messages"][0]["role"] == "user" and "[case:plain]" in payload["messages"][0]["content"]
    assert "anthropic-version" in server.requests_for("plain")[0].headers


def test_base_url_with_v1_works_too(judge_server, write_jsonl, tmp_path):
    server = judge_server()
    source = write_jsonl("in.jsonl", case_rows(["a"]))
    annotate(server.base_url, source, tmp_path / "out")  # ".../v1", as for openai judges
    assert len(server.log) == 1
    assert read_annotations(tmp_path / "out")[0]["status"] == "accepted"


def test_429_then_overloaded_then_500_are_retried(judge_server, write_jsonl, tmp_path):
    server = judge_server(script={"busy": ["429:1", "529", "500", "ok"], "overloaded": ["529", "ok"]})
    source = write_jsonl("in.jsonl", case_rows(["busy", "overloaded"]))
    counts, elapsed = annotate(server.root_url, source, tmp_path / "out")

    assert server.actions_for("busy") == ["429:1", "529", "500", "ok"]
    assert server.actions_for("overloaded") == ["529", "ok"]
    first, second = server.requests_for("busy")[:2]
    assert second.at - first.at >= 0.95 and elapsed >= 1.0  # Retry-After: 1 honoured
    records = by_case(read_annotations(tmp_path / "out"))
    assert all(record["status"] == "accepted" for record in records.values())
    invocation = json.loads((tmp_path / "out" / "run.json").read_text())["invocations"][-1]
    assert invocation["retries"] == 4
    assert invocation["errors"] == {"rate_limited": 1, "server_error": 3}


def test_exhaustion_and_bad_request_are_rejected(judge_server, write_jsonl, tmp_path):
    server = judge_server(script={"down": ["529"], "refused": ["400"]})
    source = write_jsonl("in.jsonl", case_rows(["down", "refused"]))
    annotate(server.root_url, source, tmp_path / "out", max_attempts=3)
    assert server.actions_for("down") == ["529"] * 3
    assert server.actions_for("refused") == ["400"]
    records = by_case(read_annotations(tmp_path / "out"))
    assert records["down"]["status_reason"].startswith("judge_failed: server_error after 3 attempts")
    assert records["refused"]["status_reason"].startswith("judge_request_refused: HTTP 400")
    assert records["down"]["spans"] == records["refused"]["spans"] == []


def test_hang_and_reset_are_retried(judge_server, write_jsonl, tmp_path):
    server = judge_server(script={"slow": ["hang", "ok"], "flaky": ["reset", "ok"]})
    source = write_jsonl("in.jsonl", case_rows(["slow", "flaky"]))
    annotate(server.root_url, source, tmp_path / "out", timeout=0.5)
    assert server.actions_for("slow") == ["hang", "ok"]
    assert server.actions_for("flaky") == ["reset", "ok"]
    assert all(record["status"] == "accepted" for record in read_annotations(tmp_path / "out"))


def test_max_tokens_truncation_is_asked_again_and_usage_recorded(judge_server, write_jsonl, tmp_path):
    server = judge_server(script={"cut": ["truncated", "ok"]})
    source = write_jsonl("in.jsonl", case_rows(["cut", "whole"]))
    counts, _ = annotate(server.root_url, source, tmp_path / "out")

    assert server.actions_for("cut") == ["truncated", "ok"]
    # stop_reason max_tokens with nothing finished: asked again with twice the max_tokens.
    assert [entry.payload["max_tokens"] for entry in server.requests_for("cut")] == [4096, 8192]
    records = by_case(read_annotations(tmp_path / "out"))
    assert records["cut"]["status"] == "accepted" and len(records["cut"]["spans"]) == 3
    for case, record in records.items():
        entries = server.requests_for(case)
        # input_tokens / output_tokens of every answer, the truncated one included
        assert record["usage"] == {"prompt_tokens": sum(e.tokens[0] for e in entries),
                                   "completion_tokens": sum(e.tokens[1] for e in entries)}
        assert record["usage"]["prompt_tokens"] > 0 and record["usage"]["completion_tokens"] > 0
    assert counts.usage.prompt_tokens == sum(e.tokens[0] for e in server.log)


def test_cache_makes_a_second_run_free(judge_server, write_jsonl, tmp_path):
    server = judge_server(script={"b": ["529", "ok"]})
    source = write_jsonl("in.jsonl", case_rows(["a", "b"]))
    annotate(server.root_url, source, tmp_path / "first")
    sent = len(server.log)
    (tmp_path / "second").mkdir()
    shutil.copy(tmp_path / "first" / "cache.sqlite", tmp_path / "second" / "cache.sqlite")
    counts, _ = annotate(server.root_url, source, tmp_path / "second")
    assert counts.requests == 0 and counts.cache_hits == 2 and len(server.log) == sent

    def lines(out):
        return sorted((out / "annotations" / "shard-00000-of-00001.jsonl").read_text().splitlines())

    assert lines(tmp_path / "second") == lines(tmp_path / "first")


def test_api_key_never_reaches_out(judge_server, write_jsonl, tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    server = judge_server(script={"refused": ["400"], "down": ["529"], "prose": ["nonjson"]})
    source = write_jsonl("in.jsonl", case_rows(["ok", "refused", "down", "prose"]))
    out = tmp_path / "out"
    annotate(server.root_url, source, out, max_attempts=2)
    # The SDK sent the key (as x-api-key or a bearer token, depending on its version)...
    assert all(SECRET in (entry.headers.get("x-api-key", "") + entry.headers.get("Authorization", ""))
               for entry in server.log)
    # ...and no file in OUT holds it.
    files = [path for path in out.rglob("*") if path.is_file()]
    assert any(path.name == "cache.sqlite" for path in files)
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), path
    reasons = {case: record["status_reason"].split(":")[0] for case, record in by_case(read_annotations(out)).items()}
    assert reasons == {"ok": "ok", "refused": "judge_request_refused", "down": "judge_failed",
                       "prose": "judge_unusable_answer"}


def test_missing_key_and_unreachable_server(tmp_path, write_jsonl, monkeypatch):
    source = write_jsonl("in.jsonl", case_rows(["a"]))
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(JudgeUnavailable, match=f"cannot reach {url}"):
        annotate(url, source, tmp_path / "out")
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    with pytest.raises(JudgeConfigError, match="ANTHROPIC_API_KEY"):  # set up wrong: exit 2, not 1
        annotate(url, source, tmp_path / "out2")
    assert not (tmp_path / "out").exists() and not (tmp_path / "out2").exists()


def test_refused_credentials_stop_the_run(judge_server, write_jsonl, tmp_path, monkeypatch):
    """A 401 would refuse every trace alike: the run stops with one clear error instead."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-wrong")
    server = judge_server(script={"a": ["401"]})
    source = write_jsonl("in.jsonl", case_rows(["a"]))
    with pytest.raises(JudgeConfigError, match="refused the credentials"):  # set up wrong: exit 2
        annotate(server.root_url, source, tmp_path / "out")
