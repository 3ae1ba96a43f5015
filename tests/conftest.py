"""Shared fixtures. Test doubles live here and are named as such: the scripted judge server
stands in for an LLM server (a network boundary we do not own); nothing of ours is faked."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.judge_server import ScriptedJudgeServer


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
    from tests.helpers import ok, run_cli

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


# Two tiny models made to disagree on planted steps (tests/grounded_fixtures.py), shared by the
# model-grounded judge and `evaluate labels` tests. Read-only.
@pytest.fixture(scope="session")
def grounded_pair(tmp_path_factory):
    pytest.importorskip("torch")
    from tests.grounded_fixtures import build_pair

    return build_pair(tmp_path_factory.mktemp("grounded"))


from tests.vllm_fixtures import vllm_server_url, vllm_tiny_model  # noqa: E402,F401


@pytest.fixture(scope="session")
def large_model(tagged_model, tmp_path_factory) -> Path:
    """The offload evaluator's tiny "large" model: shares `tagged_model`'s tokenizer (read-only)."""
    from tests.offload_fixtures import build_large_model

    return build_large_model(tmp_path_factory.mktemp("large") / "model", tagged_model)
