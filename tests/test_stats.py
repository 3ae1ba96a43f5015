"""`splitreason stats`: the numbers it prints equal a recount from the files in OUT."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from statistics import mean

import pytest

from tests.judge_server import ScriptedJudgeServer
from tests.helpers import annotations, assert_one_clean_error, ok, read_jsonl, run_cli
from tests.builders import SCRIPTED_CASES, write_scripted_input


@pytest.fixture(scope="module")
def mixed_out(tmp_path_factory) -> Path:
    """Accepted, review and rejected traces, hallucinated excerpts, tokens and input rejects."""
    tmp = tmp_path_factory.mktemp("stats")
    source = write_scripted_input(tmp / "in.jsonl")
    with open(source, "a", encoding="utf-8") as handle:
        handle.write("{broken json\n[1, 2]\n")
    out = tmp / "out"
    script = {case: [action] for case, action in SCRIPTED_CASES.items()}
    with ScriptedJudgeServer(script=script) as server:
        ok(run_cli("annotate", source, "-o", out, "--judge", "openai:scripted-judge", "--base-url", server.base_url,
                   "--no-progress", "--max-attempts", "2", "--retry-initial", "0"))
    return out


def test_json_numbers_equal_a_recount(mixed_out: Path) -> None:
    data = json.loads(ok(run_cli("stats", mixed_out, "--json")).stdout)
    records = annotations(mixed_out)
    rejects = read_jsonl(mixed_out / "rejects.jsonl")

    assert data["traces"] == len(records) == len(SCRIPTED_CASES)
    assert data["status"] == dict(Counter(record["status"] for record in records))
    assert set(data["status"]) == {"accepted", "review", "rejected"}
    assert data["reasons"] == dict(Counter(f"{r['status']}/{r['status_reason'].split(':', 1)[0]}" for r in records))
    assert data["input_rejects"] == dict(Counter(reject["reason"] for reject in rejects)) \
        == {"invalid_json": 1, "not_an_object": 1}
    assert data["prompt_tokens"] == sum(record["usage"]["prompt_tokens"] for record in records) > 0
    assert data["completion_tokens"] == sum(record["usage"]["completion_tokens"] for record in records) > 0
    assert data["judges"] == {"openai:scripted-judge": len(records)}
    assert data["target_coverage"] == 0.15

    # Traces the judge gave no answer for say nothing about spans or hallucination.
    answered = [record for record in records if not record["status_reason"].startswith("judge_")]
    assert len(answered) == len(records) - 1  # the nonjson case
    excerpts = sum(record["excerpts"] for record in answered)
    hallucinated = sum(len(record["hallucinated"]) for record in answered)
    assert data["excerpts"] == excerpts and data["hallucinated"] == hallucinated == 2  # two "hallucinate" cases
    assert data["hallucination_rate"] == round(hallucinated / excerpts, 4)
    assert data["match_kinds"] == dict(Counter(span["match"] for r in answered for span in r["spans"]))
    coverages = [record["coverage"] for record in answered]
    assert data["coverage"]["min"] == round(min(coverages), 4)
    assert data["coverage"]["max"] == round(max(coverages), 4)
    assert data["coverage"]["mean"] == round(mean(coverages), 4)
    assert sum(data["coverage_histogram"].values()) == len(answered)
    spans = [len(record["spans"]) for record in answered]
    assert data["spans_per_trace"]["max"] == max(spans) and data["spans_per_trace"]["mean"] == round(mean(spans), 4)

    # The totals the annotate run sealed into run.json agree.
    manifest = json.loads((mixed_out / "run.json").read_text())
    assert manifest["totals"]["status"] == data["status"]
    assert manifest["totals"]["input_rejects"] == len(rejects)


def test_human_output(mixed_out: Path) -> None:
    data = json.loads(ok(run_cli("stats", mixed_out, "--json")).stdout)
    result = ok(run_cli("stats", mixed_out))
    text = result.stdout
    for status, count in data["status"].items():
        assert any(status in line and f" {count} " in line for line in text.splitlines()), (status, text)
    assert f"{data['hallucinated']} of {data['excerpts']} ({data['hallucination_rate']:.1%})" in text
    assert f"{data['prompt_tokens']:,} / {data['completion_tokens']:,}" in text
    assert "coverage distribution" in text and "input reject" in text and "invalid_json" in text
    assert result.stderr.strip() == ""


def test_stats_errors(tmp_path: Path) -> None:
    missing = run_cli("stats", tmp_path / "missing")
    assert missing.returncode == 2 and "Traceback" not in missing.stderr and "does not exist" in missing.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_one_clean_error(run_cli("stats", empty, "--json"), "no annotations")
