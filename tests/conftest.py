"""Shared fixtures. Test doubles live here and are named as such: the scripted judge server
stands in for an LLM server (a network boundary we do not own); nothing of ours is faked."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.judge_server import ScriptedJudgeServer


def openr1_record(uuid: str, generations: list[str], *, problem: str | None = None, **overrides) -> dict:
    """A record in the OpenR1-Math-220k schema; every generation correct, stopped and complete."""
    n = len(generations)
    record = {
        "problem": problem if problem is not None else f"Compute the thing for record {uuid}.",
        "solution": "A short reference solution.",
        "answer": "42",
        "problem_type": "Algebra",
        "question_type": "math-word-problem",
        "source": "olympiads",
        "uuid": uuid,
        "is_reasoning_complete": [True] * n,
        "generations": generations,
        "correctness_math_verify": [True] * n,
        "correctness_llama": None,
        "finish_reasons": ["stop"] * n,
        "correctness_count": n,
        "messages": [{"role": "user", "content": "p"}, {"role": "assistant", "content": generations[0] if n else ""}],
    }
    record.update(overrides)
    return record


def reasoning_trace(seed: int, paragraphs: int = 12) -> str:
    """A deterministic R1-like trace with LaTeX, reflections and long enough sentences to quote."""
    lines = ["<think>", f"Okay, so I need to work through problem number {seed} carefully and check every step."]
    for i in range(paragraphs):
        a, b = seed + i + 2, 2 * i + 3
        lines.append(
            f"Let me compute step {i}: we have \\( \\frac{{{a}}}{{{b}}} + \\sqrt{{{a * b}}} \\) which simplifies "
            f"after multiplying through by {b} to give {a} plus {b} times the root of {a * b}."
        )
        lines.append(f"Wait, I should double-check that the factor {b} was applied to both terms in step {i} here.")
        lines.append(f"So the running total after step {i} becomes {a * b + i}, and that matches the estimate.")
    lines += ["</think>", f"The answer is \\(\\boxed{{{seed}}}\\)."]
    return "\n\n".join(lines)


@pytest.fixture
def hermetic_judge_env(monkeypatch, tmp_path):
    """No judge settings from the developer's environment or ~/.config leak into a test."""
    for name in list(os.environ):
        if name.startswith(("OPENAI_", "ANTHROPIC_", "SPLITREASON_", "DEEPSEEK_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))


@pytest.fixture
def write_jsonl(tmp_path: Path) -> Callable[[str, list], Path]:
    def write(name: str, rows: list) -> Path:
        path = tmp_path / name
        with open(path, "w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(row if isinstance(row, str) else json.dumps(row, ensure_ascii=False))
                handle.write("\n")
        return path

    return write


@pytest.fixture
def judge_server() -> Iterator[Callable[..., ScriptedJudgeServer]]:
    """Start scripted judge servers on 127.0.0.1; all are stopped after the test."""
    started: list[ScriptedJudgeServer] = []

    def start(**kwargs) -> ScriptedJudgeServer:
        server = ScriptedJudgeServer(**kwargs)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


# Real vLLM (CPU) server and tiny model, shared by the whole session (see tests/vllm_fixtures.py).
@pytest.fixture(scope="session")
def sample_in_review(tmp_path_factory) -> Path:
    """The bundled sample annotated by the offline judge with --accept-threshold 1.0, so most
    traces are routed to review (one holds characters outside the BMP). Shared: copy it with
    `review_run` before writing into it."""
    from tests.test_cli_annotate import ok, run_cli

    out = tmp_path_factory.mktemp("review") / "sample"
    ok(run_cli("annotate", "-o", out, "--accept-threshold", "1.0", "--no-progress"))
    return out


@pytest.fixture
def review_run(sample_in_review: Path, tmp_path: Path) -> Path:
    """A private copy of `sample_in_review` for one test."""
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(sample_in_review, copy)
    return copy


# The synthetic offload export and the one tiny tagged model trained on it through
# `splitreason train sft`, shared by the trainer, evaluator, GRPO and label tests (see
# tests/offload_fixtures.py). Read-only: copy a directory before writing into it.
@pytest.fixture(scope="session")
def offload_export(tmp_path_factory):
    pytest.importorskip("trl")
    from tests.offload_fixtures import make_offload_export

    return make_offload_export(tmp_path_factory.mktemp("offload"))


@pytest.fixture(scope="session")
def tagged_model(offload_export, tmp_path_factory) -> Path:
    from tests.offload_fixtures import train_tagged_model

    return train_tagged_model(tmp_path_factory.mktemp("tagged") / "model", offload_export.train,
                              offload_export.base_model)


from tests.vllm_fixtures import vllm_server_url, vllm_tiny_model  # noqa: E402,F401
