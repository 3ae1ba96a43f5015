"""`evaluate offload --backend openai`: the same samples as the hf backend, token for token, from a
real vLLM (CPU) server (float32, as the hf backend computes); an unreachable server is one line."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest

from tests.helpers import assert_one_clean_error, free_port, ok, read_jsonl
from tests.offload_fixtures import run_cli

pytest.importorskip("torch")

FAST = ("--chunk-tokens", "8", "--max-segment-tokens", "32", "--max-tokens", "100", "--no-progress")


@pytest.fixture
def eval_file(tmp_path) -> Path:
    path = tmp_path / "eval.jsonl"
    path.write_text("".join(json.dumps({"id": f"q{i}", "problem": f"Problem {20000 + i}: work out the value step by step.",
                                        "answer": "44"}) + "\n" for i in range(2)), encoding="utf-8")
    return path


def test_an_unreachable_server_is_one_line_and_nothing_is_written(tagged_model, eval_file, tmp_path):
    dead = f"http://127.0.0.1:{free_port()}/v1"
    line = assert_one_clean_error(run_cli("evaluate", "offload", "--small", tagged_model, "--large", tagged_model,
                                          "--eval-set", eval_file, "-o", tmp_path / "out", "--backend", "openai",
                                          "--small-url", dead, "--large-url", dead, *FAST), "cannot be reached")
    assert dead in line
    assert not (tmp_path / "out").exists()


@pytest.mark.vllm
@pytest.mark.slow
def test_openai_backend_writes_what_the_hf_backend_writes(tagged_model, eval_file, tmp_path):
    from tests.vllm_fixtures import require_vllm_venv
    from tests.vllm_server import start_vllm_server

    venv = require_vllm_venv()
    # one server holds the tagged model; it plays both parts (as the large model it may not write the tags)
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(start_vllm_server(Path(tagged_model), venv=venv, max_model_len=2048,
                                                    extra_args=["--dtype", "float32", "--enforce-eager"]))
        served = tmp_path / "openai"
        ok(run_cli("evaluate", "offload", "--small", tagged_model, "--large", tagged_model, "--eval-set", eval_file,
                   "-o", served, "--backend", "openai", "--small-url", url, "--large-url", url, "--mode", "learned",
                   "--mode", "large", *FAST))
    local = tmp_path / "hf"
    ok(run_cli("evaluate", "offload", "--small", tagged_model, "--large", tagged_model, "--eval-set", eval_file,
               "-o", local, "--mode", "learned", "--mode", "large", *FAST))
    served_rows, local_rows = read_jsonl(served / "samples.jsonl"), read_jsonl(local / "samples.jsonl")
    assert len(served_rows) == len(local_rows) == 4
    for remote, mine in zip(served_rows, local_rows):
        assert [(s["model"], s["token_ids"], s["forced"]) for s in remote["segments"]] == \
            [(s["model"], s["token_ids"], s["forced"]) for s in mine["segments"]]
        assert remote["close_checks"] == mine["close_checks"]  # one request per chunk
    assert any(row["handoffs"] for row in served_rows)
