"""`evaluate offload --backend vllm|openai`: the same samples as the hf backend, token for token,
from a real vLLM (CPU) server the command starts (float32, as the hf backend computes; the vllm
backend talks to it through the openai backend's client); an unreachable server is one line."""

from __future__ import annotations

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
@pytest.mark.timeout(900)  # a vLLM server starts in 1-3 minutes on a shared 2-core machine
def test_vllm_backend_writes_what_the_hf_backend_writes(tagged_model, eval_file, tmp_path):
    """--backend vllm starts the server itself (one: the same model plays both parts, and as the
    large one it may not write the tags) and talks to it as the openai backend does."""
    from tests.vllm_fixtures import require_vllm_venv

    venv = require_vllm_venv()
    served = tmp_path / "vllm"
    both = ("--small", tagged_model, "--large", tagged_model, "--eval-set", eval_file, "--mode", "learned",
            "--mode", "large", "--dtype", "float32", *FAST)
    ok(run_cli("evaluate", "offload", *both, "-o", served, "--backend", "vllm", "--vllm-max-model-len", "2048",
               env={"SPLITREASON_VLLM_VENV": str(venv)}))
    local = tmp_path / "hf"
    ok(run_cli("evaluate", "offload", *both, "-o", local))
    served_rows, local_rows = read_jsonl(served / "samples.jsonl"), read_jsonl(local / "samples.jsonl")
    assert len(served_rows) == len(local_rows) == 4
    for remote, mine in zip(served_rows, local_rows):
        assert [(s["model"], s["token_ids"], s["forced"]) for s in remote["segments"]] == \
            [(s["model"], s["token_ids"], s["forced"]) for s in mine["segments"]]
        assert remote["close_checks"] == mine["close_checks"]  # one prompt-logprobs request per chunk
    assert any(row["handoffs"] for row in served_rows)
