"""The LLM judge path against a real vLLM (CPU): the OpenAI-compatible server with structured
output, and the in-process `vllm:<path>` judge. The model is a tiny random Llama built by the
test, so its quotes are nonsense: these tests check the plumbing (request, schema-constrained
JSON, parsing, alignment, routing, cache, usage), not the judgement."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import openr1_record
from tests.vllm_fixtures import TINY_MODEL_NAME, require_vllm_venv
from tests.vllm_server import _child_env, venv_python

pytestmark = [pytest.mark.vllm, pytest.mark.slow, pytest.mark.timeout(900)]

# Short traces and small answers: the tiny model's context is 4096 tokens and its byte-level
# tokenizer spends about one token per character.
TRACES = [
    "<think>\nWe need x with 3x + 5 = 20. Subtract 5: 3x = 15. Divide by 3: x = 5. "
    "Wait, check: 3 * 5 + 5 = 20. Yes.\n</think>\nThe answer is \\(\\boxed{5}\\).",
    "<think>\nThe sum 1 + 2 + ... + 10 equals \\(\\frac{10 \\cdot 11}{2} = 55\\). "
    "Hmm, pair 1 with 10, 2 with 9: five pairs of 11, so 55.\n</think>\nSo \\(\\boxed{55}\\).",
    "<think>\nFactor \\(x^2 - 5x + 6 = (x-2)(x-3)\\), so the roots are 2 and 3 and their product "
    "is 6. Let me double-check with Vieta: c/a = 6.\n</think>\n\\(\\boxed{6}\\)",
]
SMALL_ANSWER = ["--max-spans", "2", "--max-excerpt-chars", "80", "--max-tokens", "1500"]


def _input(tmp_path: Path) -> Path:
    path = tmp_path / "in.jsonl"
    with open(path, "w", encoding="utf-8") as handle:
        for i, trace in enumerate(TRACES):
            handle.write(json.dumps(openr1_record(f"v{i}", [trace], problem=f"Problem {i}.")) + "\n")
    return path


def _annotations(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "annotations" / "shard-00000-of-00001.jsonl").read_text().splitlines()]


def _check_plumbing(out: Path) -> list[dict]:
    records = _annotations(out)
    assert sorted(r["trace_id"] for r in records) == ["v0:0", "v1:0", "v2:0"]
    for record in records:
        # Structured output made every answer parseable: no trace failed at the judge.
        assert not record["status_reason"].startswith("judge_"), record["status_reason"]
        assert record["usage"]["prompt_tokens"] > 0 and record["usage"]["completion_tokens"] > 0
        for span in record["spans"]:
            assert record["trace"][span["start"] : span["end"]] == span["text"]
    return records


def test_annotate_against_a_real_vllm_server(tmp_path, vllm_server_url):
    source, out = _input(tmp_path), tmp_path / "out"
    command = [sys.executable, "-m", "splitreason.cli", "annotate", str(source), "-o", str(out),
               "--judge", f"openai:{TINY_MODEL_NAME}", "--base-url", vllm_server_url,
               "--concurrency", "3", "--timeout", "300", "--no-progress", *SMALL_ANSWER]
    first = subprocess.run(command, capture_output=True, text=True, timeout=800)
    assert first.returncode == 0, first.stderr
    records = _check_plumbing(out)
    assert records[0]["judge"]["params"]["response_format"] == "json_schema"

    # Answers are cached by payload: running again sends nothing and changes nothing.
    before = (out / "annotations" / "shard-00000-of-00001.jsonl").read_bytes()
    again = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    run = json.loads((out / "run.json").read_text())
    assert run["invocations"][-1]["requests"] == 0
    assert (out / "annotations" / "shard-00000-of-00001.jsonl").read_bytes() == before


def test_in_process_vllm_judge(tmp_path, vllm_tiny_model):
    venv = require_vllm_venv()
    source, out = _input(tmp_path), tmp_path / "out"
    cache_dir = tmp_path / "vllm-cache"
    env = _child_env({
        "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_ENABLE_V1_MULTIPROCESSING": "0", "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1", "VLLM_CACHE_ROOT": str(cache_dir), "TORCHINDUCTOR_CACHE_DIR": str(cache_dir),
        "VLLM_NO_USAGE_STATS": "1",
    })
    command = [str(venv_python(venv)), "-m", "splitreason.cli", "annotate", str(source), "-o", str(out),
               "--judge", f"vllm:{vllm_tiny_model}", "--concurrency", "3", "--no-progress", *SMALL_ANSWER,
               "--vllm-arg", "enforce_eager=true", "--vllm-arg", "max_model_len=4096",
               "--vllm-arg", "dtype=float32", "--vllm-arg", "seed=0"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=800, env=env,
                            cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 0, result.stderr[-4000:]
    records = _check_plumbing(out)
    assert records[0]["judge"]["backend"] == "vllm"
    assert os.path.exists(out / "cache.sqlite")
