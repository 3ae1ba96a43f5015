"""The hub, unreachable or switched off: one line at once naming the dataset and how to use a
local copy (exit 1), never ~25 s of huggingface_hub retries. An id the hub does not know, while
the hub answers, is a usage error (exit 2).

The machine has no network. "Unreachable" is made deterministic with HF_ENDPOINT (or a proxy)
pointing at a closed port on 127.0.0.1; "the hub answers" is a tiny stand-in hub on 127.0.0.1
that says 404 to everything (a test double at a network boundary we do not own).
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from pathlib import Path

import pytest

from splitreason.io.hub import HubUnavailable, is_network_failure, why_hub_unusable
from splitreason.io.readers import InputError, iter_rows
from tests.helpers import assert_one_clean_error, cli_env, free_port, run_cli

#: Interpreter start and imports included; huggingface_hub's retries alone took ~25 s.
CLI_SECONDS = 8.0
LIBRARY_SECONDS = 5.0


def online_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The CLI's environment with the offline variables removed and an empty hub cache."""
    env = cli_env(HF_HOME=str(tmp_path / "hf-home"))
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_DATASETS_CACHE",
                 "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        env.pop(name, None)
    return {**env, **extra}


def timed(*args, env: dict[str, str]):
    started = time.monotonic()
    result = run_cli(*args, env=env)
    return result, time.monotonic() - started


COMMANDS = {
    "annotate": lambda tmp: ("annotate", "someone/some-dataset", "-o", tmp / "out", "--no-progress"),
    "shard": lambda tmp: ("shard", "someone/some-dataset", "-o", tmp / "out", "--shards", "2"),
    "curate --eval-set": lambda tmp: ("curate", "splitreason/data/openr1_sample.jsonl", "-o", tmp / "out",
                                      "--eval-set", "aime24", "--no-progress"),
    "evaluate grade --eval-set": lambda tmp: ("evaluate", "grade", tmp / "p.jsonl", "--eval-set", "math500"),
}
DATASET = {"annotate": "someone/some-dataset", "shard": "someone/some-dataset",
           "curate --eval-set": "HuggingFaceH4/aime_2024", "evaluate grade --eval-set": "HuggingFaceH4/MATH-500"}


@pytest.mark.parametrize("how", ["HF_HUB_OFFLINE=1", "HF_DATASETS_OFFLINE=1", "endpoint refuses", "proxy refuses"])
@pytest.mark.parametrize("command", list(COMMANDS))
def test_an_unusable_hub_is_one_line_at_once(tmp_path: Path, command: str, how: str) -> None:
    (tmp_path / "p.jsonl").write_text(json.dumps({"id": "a", "text": "1"}) + "\n")
    extra = {"HF_HUB_OFFLINE=1": {"HF_HUB_OFFLINE": "1"}, "HF_DATASETS_OFFLINE=1": {"HF_DATASETS_OFFLINE": "1"},
             "endpoint refuses": {"HF_ENDPOINT": f"http://127.0.0.1:{free_port()}"},
             "proxy refuses": {"HTTPS_PROXY": f"http://127.0.0.1:{free_port()}"}}[how]
    result, seconds = timed(*COMMANDS[command](tmp_path), env=online_env(tmp_path, **extra))
    line = assert_one_clean_error(result, DATASET[command], "local cache", "hf download", "--local-dir")
    assert result.returncode == 1, line
    assert seconds < CLI_SECONDS, f"{seconds:.1f} s"
    if how.startswith("HF_"):
        assert how.split("=")[0] in line
    elif how == "proxy refuses":
        assert "proxy 127.0.0.1:" in line and "https://huggingface.co" in line
    else:
        assert "cannot connect" in line
    if command.startswith(("curate", "evaluate")):
        assert "--eval-set takes that file" in line
    assert not (tmp_path / "out").exists()


def test_the_decision_is_quick_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The reader alone, interpreter start left out: well under the bound, and an HubUnavailable."""
    import datasets.config
    import huggingface_hub.constants

    # The reader switches this process to offline mode: put everything back afterwards.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", huggingface_hub.constants.HF_HUB_OFFLINE)
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.setattr(datasets.config, name, getattr(datasets.config, name))
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_ENDPOINT", "http://")
    assert "names no host" in why_hub_unusable()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    assert "cannot connect" in why_hub_unusable()
    started = time.monotonic()
    with pytest.raises(HubUnavailable) as info:
        iter_rows("someone/some-dataset")
    assert time.monotonic() - started < LIBRARY_SECONDS
    assert info.value.exit_code == 1 and "\n" not in str(info.value)


def test_a_cached_dataset_is_tried_offline_and_a_useless_cache_is_one_line(tmp_path: Path) -> None:
    """Something of the dataset in the local cache: datasets is asked, offline (no retries); when the
    cache cannot serve it, the line says so."""
    home = tmp_path / "hf-home"
    (home / "datasets" / "someone___some-dataset").mkdir(parents=True)
    env = online_env(tmp_path, HF_HUB_OFFLINE="1")
    result, seconds = timed("annotate", "someone/some-dataset", "-o", tmp_path / "out", "--no-progress", env=env)
    line = assert_one_clean_error(result, "someone/some-dataset", "the local cache cannot serve it", "hf download")
    assert result.returncode == 1 and seconds < CLI_SECONDS + 5, (line, seconds)


class NotFoundHub(http.server.BaseHTTPRequestHandler):
    """A hub that answers: every repository is unknown (404, as the real hub says it)."""

    requests: list[str] = []

    def _answer(self) -> None:
        NotFoundHub.requests.append(f"{self.command} {self.path}")
        body = json.dumps({"error": "Repository not found"}).encode()
        self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Error-Code", "RepoNotFound")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.slow
def test_an_unknown_id_while_the_hub_answers_is_a_usage_error(tmp_path: Path) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFoundHub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        env = online_env(tmp_path, HF_ENDPOINT=f"http://127.0.0.1:{server.server_address[1]}")
        result = run_cli("annotate", "someone/no-such-dataset", "-o", tmp_path / "out", "--no-progress", env=env)
    finally:
        server.shutdown()
        server.server_close()
    line = assert_one_clean_error(result, "someone/no-such-dataset", "check the id")
    assert result.returncode == 2, line
    assert any("someone/no-such-dataset" in request for request in NotFoundHub.requests)
    assert not (tmp_path / "out").exists()


def test_network_failures_are_told_apart_from_unknown_ids() -> None:
    import httpx
    from datasets.exceptions import DatasetNotFoundError

    class Answered(Exception):
        def __init__(self, status: int):
            super().__init__(f"HTTP {status}")
            self.response = type("Response", (), {"status_code": status})()

    wrapped = ValueError("loading failed")
    wrapped.__cause__ = httpx.ConnectError("refused")
    for error in (ConnectionError("x"), TimeoutError("x"), httpx.ReadTimeout("x"), wrapped, Answered(503),
                  Answered(429)):
        assert is_network_failure(error), error
    for error in (DatasetNotFoundError("no such dataset"), ValueError("unknown split"), FileNotFoundError("x"),
                  Answered(404), Answered(401)):
        assert not is_network_failure(error), error
    assert issubclass(HubUnavailable, Exception) and not issubclass(HubUnavailable, InputError)


MODEL_COMMANDS = {
    "annotate --judge surprisal:": lambda tmp: ("annotate", "-o", tmp / "out", "--judge", "surprisal:someone/some-model",
                                                "--no-progress"),
    "evaluate offload": lambda tmp: ("evaluate", "offload", "--small", "someone/some-model", "--large",
                                     "someone/some-model", "--eval-set", tmp / "p.jsonl", "-o", tmp / "out"),
    "train grpo": lambda tmp: ("train", "grpo", "--model", "someone/some-model", "--problems", tmp / "p.jsonl",
                               "-o", tmp / "out", "--no-progress"),
}


@pytest.mark.parametrize("command", list(MODEL_COMMANDS))
def test_a_model_by_hub_id_with_the_hub_unusable_is_one_line_at_once(tmp_path: Path, command: str) -> None:
    # transformers alone retries for half a minute before it gives up; the loaders ask io.hub first.
    (tmp_path / "p.jsonl").write_text(json.dumps({"problem": "What is 1+1?", "answer": "2"}) + "\n")
    env = online_env(tmp_path, HF_ENDPOINT=f"http://127.0.0.1:{free_port()}")
    result, seconds = timed(*MODEL_COMMANDS[command](tmp_path), env=env)
    assert result.returncode == 1, result.stderr
    assert_one_clean_error(result, "someone/some-model", "is not a local path", "hf download")
    assert seconds < CLI_SECONDS, f"{command}: {seconds:.1f} s"
    assert not (tmp_path / "out").exists()


def test_an_unusable_hub_is_told_before_transformers_is_imported(tmp_path: Path) -> None:
    """Importing transformers (and torch under it) takes seconds: a hub id that cannot be had is one
    line before that, so the error comes well inside CLI_SECONDS even on a loaded machine."""
    import subprocess
    import sys

    probe = ("import sys\n"
             "from splitreason.io.hub import HubUnavailable\n"
             "from splitreason.models.tokenizer import load_tokenizer\n"
             "try:\n"
             "    load_tokenizer('someone/some-model')\n"
             "except HubUnavailable:\n"
             "    print(sorted(name for name in ('torch', 'transformers') if name in sys.modules))\n")
    env = online_env(tmp_path, HF_ENDPOINT=f"http://127.0.0.1:{free_port()}")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=60,
                            cwd=Path(__file__).resolve().parents[1])
    assert result.stdout.strip() == "[]", result.stdout + result.stderr
