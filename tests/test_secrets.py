"""No secret written, none printed (issue 9, item 4).

A judge server that repeats the request's credentials in its errors and even in its answers (the
scripted server's `echo_key` actions, a test double for an LLM server) must leave no trace of the
key in OUT, byte for byte over every file, nor on the terminal; credentials inside --base-url are
never printed. A placeholder key such as EMPTY is not a secret and is left alone.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from splitreason.io.redaction import redact, register_secret
from tests.helpers import assert_one_clean_error, cli_env, free_port, ok, run_cli
from tests.judge_server import by_case, case_rows, read_annotations

KEY = "sk-test-Secret-0123456789abcdef"
USER, PASSWORD = "alice", "hunter2-url-pass"
JUDGE = "openai:scripted-judge"


def every_byte(out: Path) -> dict[str, bytes]:
    """Every file under OUT (hidden ones, SQLite's -wal/-shm too), read as bytes."""
    return {str(path.relative_to(out)): path.read_bytes() for path in out.rglob("*") if path.is_file()}


def assert_nowhere(out: Path, texts: list[str], *secrets: str) -> None:
    files = every_byte(out)
    assert "cache.sqlite" in files and "run.json" in files
    for secret in secrets:
        for form in {secret.encode(), secret.encode("utf-16-le"), json.dumps(secret)[1:-1].encode()}:
            leaked = [name for name, data in files.items() if form in data]
            assert not leaked, f"{secret!r} found in {leaked}"
        for text in texts:
            assert secret not in text


@pytest.mark.slow
def test_a_server_that_echoes_the_key_leaves_no_trace_of_it_in_out(tmp_path: Path, judge_server, write_jsonl) -> None:
    server = judge_server(script={"refused": ["echo_key:400"], "down": ["echo_key:503"], "answer": ["echo_key"],
                                  "ok": ["ok"]})
    source = write_jsonl("in.jsonl", case_rows(["refused", "down", "answer", "ok"]))
    out = tmp_path / "out"
    args = ("annotate", source, "-o", out, "--judge", JUDGE, "--base-url", server.base_url, "--retry-initial", "0.01",
            "--max-attempts", "2", "--no-progress")
    env = cli_env(OPENAI_API_KEY=KEY, XDG_CONFIG_HOME=str(tmp_path / "xdg"))
    first = ok(run_cli(*args, env=env))
    # The server did get the key, and did repeat it: what follows is not vacuous.
    assert all(entry.headers["Authorization"] == f"Bearer {KEY}" for entry in server.log)
    records = by_case(read_annotations(out))
    assert records["refused"]["status_reason"].startswith("judge_request_refused: HTTP 400")
    assert "Authorization: Bearer ***" in records["refused"]["status_reason"]
    assert records["down"]["status_reason"].startswith("judge_failed: server_error")
    assert "Bearer ***" in records["down"]["status_reason"]
    assert any("Bearer ***" in item["text"] for item in records["answer"]["hallucinated"])
    # A rerun reads the cached failure back (nothing re-sent) and writes its line again: still nothing.
    second = ok(run_cli(*args, "--retry-rejected", env=env))
    assert_nowhere(out, [first.stdout, first.stderr, second.stdout, second.stderr], KEY)


@pytest.mark.slow
def test_url_credentials_are_neither_stored_nor_printed(tmp_path: Path, judge_server, write_jsonl) -> None:
    """`--base-url http://user:pass@host/v1`: the HTTP client sends them as a Basic header, which the
    server echoes; neither the password nor its base64 form may reach OUT or the terminal."""
    server = judge_server(script={"refused": ["echo_key:400"], "answer": ["echo_key"]})
    source = write_jsonl("in.jsonl", case_rows(["refused", "answer"]))
    with_credentials = server.base_url.replace("http://", f"http://{USER}:{PASSWORD}@")
    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    out = tmp_path / "out"
    env = cli_env(XDG_CONFIG_HOME=str(tmp_path / "xdg"))
    result = ok(run_cli("annotate", source, "-o", out, "--judge", JUDGE, "--base-url", with_credentials,
                        "--no-progress", env=env))
    assert server.log[0].headers["Authorization"] == f"Basic {basic}"  # what the server was given
    assert "Basic ***" in by_case(read_annotations(out))["refused"]["status_reason"]
    assert_nowhere(out, [result.stdout, result.stderr], PASSWORD, basic, f"{USER}:{PASSWORD}")

    closed = f"http://{USER}:{PASSWORD}@127.0.0.1:{free_port()}/v1"
    down = run_cli("annotate", source, "-o", tmp_path / "down", "--judge", JUDGE, "--base-url", closed,
                   "--no-progress", env=env)
    line = assert_one_clean_error(down, "cannot reach http://***@127.0.0.1:")
    assert PASSWORD not in down.stderr and USER not in line and down.returncode == 1


def test_the_judges_list_shows_no_credentials(tmp_path: Path) -> None:
    judges = tmp_path / "judges.toml"
    judges.write_text(f'[judges.mine]\nbackend = "openai"\nmodel = "m"\n'
                      f'base_url = "http://{USER}:{PASSWORD}@gpu-box:8000/v1"\napi_key = "{KEY}"\n')
    result = ok(run_cli("judges", "--judges-file", judges, env=cli_env(COLUMNS="300")))
    assert "http://***@gpu-box:8000/v1" in result.stdout
    assert PASSWORD not in result.stdout and KEY not in result.stdout


def test_redaction_rules(monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "EMPTY")  # a placeholder, not a secret: texts keep the word
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-0123456789")
    monkeypatch.setenv("MY_QWEN_KEY", "qwen-key-abcdefgh")
    register_secret(variable="MY_QWEN_KEY")  # what reading a judges file with api_key_env does
    register_secret("file-key-xyz-123")  # a key written in a judges file
    register_secret("short")  # under 8 characters: never counted
    text = ("EMPTY answers, sk-ant-0123456789 and qwen-key-abcdefgh and file-key-xyz-123 short; "
            "see https://bob:pw@host:1/v1?api_key=abc&x=1&token=t0k")
    assert redact(text) == ("EMPTY answers, *** and *** and *** short; "
                            "see https://***@host:1/v1?api_key=***&x=1&token=***")
    assert redact("") == "" and redact("plain text, x = 1") == "plain text, x = 1"
