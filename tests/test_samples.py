"""Several answers per trace (--samples k, several --judge): agreement, consensus, routing.

Against the scripted judge server (a real HTTP server on 127.0.0.1); `pick:I,J` makes a sample
quote sentences I and J of the trace, so samples agree or differ exactly as a test needs.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys

import pytest
from rich.console import Console

from splitreason.agreement import char_f1, vote_regions
from splitreason.executors.local import run_annotate
from splitreason.schemas.annotate import AnnotateSettings
from splitreason.schemas.run_manifest import RunConfigError
from tests.judge_server import by_case, case_rows, read_annotations, sentences

JUDGE = "openai:scripted-judge"


@pytest.fixture(autouse=True)
def _hermetic_env(hermetic_judge_env):
    """The shared hermetic judge environment (conftest)."""


def _judges(judge) -> list[str]:
    """--judge as the settings hold it: a list, the first judge first."""
    return [judge] if isinstance(judge, str) else list(judge)


def annotate(server, source, out, **options):
    options.setdefault("retry_initial", 0.01)
    options.setdefault("retry_max", 0.05)
    request = AnnotateSettings(input=str(source), out=out, judge=_judges(options.pop("judge", JUDGE)),
                              base_url=server.base_url, progress=False, **options)
    return asyncio.run(run_annotate(request, Console(stderr=True, quiet=True)))


def _offsets(trace: str, indices: list[int]) -> list[tuple[int, int]]:
    found = []
    for index in indices:
        quote = sentences(trace)[index]
        start = trace.index(quote)
        found.append((start, start + len(quote)))
    return found


def test_three_samples_vote_by_character_and_report_agreement(judge_server, write_jsonl, tmp_path):
    server = judge_server(script={"agree": ["pick:1,2,3", "pick:1,2,3", "pick:1,2,4"],
                                  "split": ["pick:1", "pick:5", "pick:9"]})
    source = write_jsonl("in.jsonl", case_rows(["agree", "split"]))
    annotate(server, source, tmp_path / "out", samples=3, temperature=0.7)

    records = by_case(read_annotations(tmp_path / "out"))
    agree = records["agree"]
    trace = agree["trace"]
    # Sentences 1-3 have two or three votes of three; sentence 4 only one.
    assert [(s["start"], s["end"]) for s in agree["spans"]] == _offsets(trace, [1, 2, 3])
    a, b = _offsets(trace, [1, 2, 3]), _offsets(trace, [1, 2, 4])
    expected = (1.0 + 2 * char_f1(a, b)) / 3
    assert agree["agreement"] == pytest.approx(expected, abs=1e-4)
    assert len(agree["samples"]) == 3 and {s["sample"] for s in agree["samples"]} == {0, 1, 2}
    assert agree["excerpts"] == 9

    split = records["split"]
    assert split["agreement"] == 0.0 and split["spans"] == []
    assert (split["status"], split["status_reason"]) == ("review", "samples_disagree")
    assert split["confidence"] == 0.0

    # Every sample is its own request at the run's temperature, each cached apart.
    assert len(server.requests_for("agree")) == 3
    assert {r.payload["temperature"] for r in server.requests_for("agree")} == {0.7}
    config = json.loads((tmp_path / "out" / "run.json").read_text())["config"]
    assert config["samples"] == 3

    # Rebuilt from the cache alone: the same records, no request sent.
    shutil.rmtree(tmp_path / "out" / "annotations")
    sent = len(server.log)
    counts = annotate(server, source, tmp_path / "out", samples=3, temperature=0.7)
    assert len(server.log) == sent and counts.cache_hits == 6
    assert by_case(read_annotations(tmp_path / "out")) == records


def test_a_failed_sample_agrees_with_nothing(judge_server, write_jsonl, tmp_path):
    server = judge_server(script={"flaky": ["pick:1,2", "pick:1,2", "400"]})
    source = write_jsonl("in.jsonl", case_rows(["flaky"]))
    annotate(server, source, tmp_path / "out", samples=3, temperature=0.7)

    record = by_case(read_annotations(tmp_path / "out"))["flaky"]
    assert record["agreement"] == pytest.approx(1 / 3, abs=1e-4)
    assert sorted(str(s["failed"]) for s in record["samples"]) == ["None", "None", "judge_request_refused"]
    # The two usable samples agree, so their spans stand; the failure still sends it to review.
    assert [(s["start"], s["end"]) for s in record["spans"]] == _offsets(record["trace"], [1, 2])
    assert (record["status"], record["status_reason"]) == ("review", "samples_disagree")


def test_two_judges_are_compared_like_samples(judge_server, write_jsonl, tmp_path):
    server = judge_server(script={"pair": ["pick:1,2"]})
    source = write_jsonl("in.jsonl", case_rows(["pair"]))
    annotate(server, source, tmp_path / "out", judge=["heuristic", JUDGE])

    record = by_case(read_annotations(tmp_path / "out"))["pair"]
    assert record["judge"]["name"] == "heuristic"
    assert [j["name"] for j in record["other_judges"]] == [JUDGE]
    assert [s["judge"] for s in record["samples"]] == ["heuristic", JUDGE]
    heuristic, scripted = (s["spans"] for s in record["samples"])
    assert record["agreement"] == pytest.approx(char_f1(heuristic, scripted), abs=1e-4)
    # Two voters: a character needs both, so the consensus is what they share.
    assert [(x["start"], x["end"]) for x in record["spans"]] == vote_regions([heuristic, scripted], 2)
    config = json.loads((tmp_path / "out" / "run.json").read_text())["config"]
    assert [j["name"] for j in config["other_judges"]] == [JUDGE]


def test_resume_with_other_samples_is_refused(judge_server, write_jsonl, tmp_path):
    server = judge_server(script={"ok": ["pick:1,2"]})
    source = write_jsonl("in.jsonl", case_rows(["ok"]))
    annotate(server, source, tmp_path / "out", samples=2, temperature=0.7)
    with pytest.raises(RunConfigError, match="samples"):
        annotate(server, source, tmp_path / "out", samples=3, temperature=0.7)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--samples", "2"], "gives the same answer every time"),
        (["--samples", "2", "-j", JUDGE, "--base-url", "http://127.0.0.1:9/v1"], "needs --temperature above 0"),
        (["-j", "heuristic", "-j", "heuristic"], "the same judge is given twice"),
        (["--embedding-model", "x"], "need --semantic-rescue"),
    ],
)
def test_sampling_mistakes_are_one_line_errors(args, message, tmp_path):
    result = subprocess.run([sys.executable, "-m", "splitreason.cli", "annotate", "-o", str(tmp_path / "out"),
                             "--no-progress", *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
