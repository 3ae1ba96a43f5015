"""The in-process `vllm:<path>` judge under concurrency: one engine, requests batched, every
trace in exactly one record.

`splitreason annotate` runs in the vLLM venv's python with a real vLLM (CPU) engine and the
tiny random Llama the fixtures build. The model writes nonsense inside the JSON schema, so these
tests check what the engine was given and what came back (run.json's `batching` record, vLLM's
own log, the annotation files), not the quality of the spans.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.helpers import openr1_record, reasoning_trace
from tests.vllm_fixtures import TINY_MODEL_MAX_LEN, require_vllm_venv
from tests.vllm_server import REPO_ROOT, _child_env, venv_python

pytestmark = [pytest.mark.vllm, pytest.mark.slow, pytest.mark.timeout(600)]

CONCURRENCY = 16
# vLLM logs this once per engine it creates: counted independently of splitreason's own count.
ENGINE_LOG_LINE = "Initializing a V1 LLM engine"
# A small answer budget keeps each run to seconds on two cores; the answers are mostly truncated
# (the tiny model rarely closes its JSON within 48 tokens), which is a judge failure the pipeline
# records, not a batching failure.
SMALL_ANSWER = ["--max-spans", "2", "--max-excerpt-chars", "80", "--max-tokens", "48"]


def _write_input(path: Path, traces: list[tuple[str, str]]) -> Path:
    with open(path, "w", encoding="utf-8") as handle:
        for uuid, trace in traces:
            handle.write(json.dumps(openr1_record(uuid, [trace])) + "\n")
    return path


def _annotate(model: Path, source: Path, out: Path, tmp_path: Path, *options: str) -> subprocess.CompletedProcess:
    venv = require_vllm_venv()
    cache_dir = tmp_path / "vllm-cache"
    env = _child_env({
        "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_ENABLE_V1_MULTIPROCESSING": "0", "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1", "VLLM_CACHE_ROOT": str(cache_dir), "TORCHINDUCTOR_CACHE_DIR": str(cache_dir),
        "VLLM_NO_USAGE_STATS": "1", "NO_COLOR": "1", "COLUMNS": "200",
    })
    command = [str(venv_python(venv)), "-m", "splitreason.cli", "annotate", str(source), "-o", str(out),
               "--judge", f"vllm:{model}", "--no-progress", *options,
               "--vllm-arg", "enforce_eager=true", "--vllm-arg", f"max_model_len={TINY_MODEL_MAX_LEN}",
               "--vllm-arg", "dtype=float32", "--vllm-arg", "seed=0"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=500, env=env, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "Traceback" not in result.stderr, result.stderr[-4000:]
    return result


def _records(out: Path) -> list[dict]:
    path = out / "annotations" / "shard-00000-of-00001.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _last_invocation(out: Path) -> dict:
    return json.loads((out / "run.json").read_text(encoding="utf-8"))["invocations"][-1]


def test_one_engine_batches_concurrent_requests(tmp_path, vllm_tiny_model):
    traces = [(f"t{i:03d}", reasoning_trace(i, paragraphs=5)) for i in range(40)]  # ~1.7k characters each
    # ~9k tokens with the tiny tokenizer, over max_model_len: vLLM refuses it. It must fail alone,
    # not take the requests judged beside it down with it.
    traces.append(("too-long", reasoning_trace(999, paragraphs=40)))
    source, out = _write_input(tmp_path / "in.jsonl", traces), tmp_path / "out"

    result = _annotate(vllm_tiny_model, source, out, tmp_path, "--concurrency", str(CONCURRENCY),
                       "--max-attempts", "1", *SMALL_ANSWER)

    assert (result.stdout + result.stderr).count(ENGINE_LOG_LINE) == 1
    invocation = _last_invocation(out)
    stats = invocation["batching"][f"vllm:{vllm_tiny_model}"]
    assert stats["engines"] == 1
    # Every trace is one record, the refused one included.
    records = _records(out)
    assert sorted(record["trace_id"] for record in records) == sorted(f"{uuid}:0" for uuid, _ in traces)
    by_id = {record["trace_id"]: record for record in records}
    refused = by_id.pop("too-long:0")
    assert refused["status"] == "rejected"
    assert refused["status_reason"].startswith("judge_request_refused: HTTP 400"), refused["status_reason"]
    assert invocation["errors"] == {"http_400": 1}
    assert not any(record["status_reason"].startswith("judge_request_refused") for record in by_id.values())
    assert stats["requests"] == stats["structured_requests"] == 40 and stats["refused_requests"] == 1

    # Batched: the engine held the requests of all concurrent traces at once, and produced many
    # tokens per step (one request at a time would take at least one step per completion token).
    assert stats["max_batch_size"] == CONCURRENCY
    assert stats["mean_batch_size"] >= CONCURRENCY / 2, stats
    assert invocation["completion_tokens"] > 4 * stats["steps"], (invocation["completion_tokens"], stats)

    # No error text stored as data: the trace is the input's, spans are slices of it, and a
    # failed trace has no spans at all.
    inputs = dict(traces)
    for trace_id, record in {**by_id, "too-long:0": refused}.items():
        assert record["trace"] == inputs[trace_id.removesuffix(":0")]
        for span in record["spans"]:
            assert record["trace"][span["start"]:span["end"]] == span["text"]
        if record["status_reason"].startswith("judge_"):
            assert record["spans"] == [] and record["hallucinated"] == [], record


def test_timed_out_requests_leave_the_engine(tmp_path, vllm_tiny_model):
    """A request the transport gives up on (--timeout) is aborted in the engine, so its retry
    does not run beside it: the engine never holds more than --concurrency requests."""
    concurrency = 8
    traces = [(f"s{i}", reasoning_trace(i, paragraphs=4)) for i in range(concurrency)]
    source, out = _write_input(tmp_path / "in.jsonl", traces), tmp_path / "out"

    _annotate(vllm_tiny_model, source, out, tmp_path, "--concurrency", str(concurrency), "--timeout", "0.5",
              "--max-attempts", "2", "--retry-initial", "0", "--retry-max", "0", "--max-tokens", "2000")

    invocation = _last_invocation(out)
    stats = invocation["batching"][f"vllm:{vllm_tiny_model}"]
    records = _records(out)
    assert len(records) == concurrency
    for record in records:
        assert record["status"] == "rejected"
        assert record["status_reason"] == "judge_failed: timeout after 2 attempts: no answer within 0.5 s"
    assert invocation["errors"] == {"timeout": 2 * concurrency}
    assert stats["requests"] == stats["aborted_requests"] == 2 * concurrency
    assert stats["max_batch_size"] == concurrency, stats
