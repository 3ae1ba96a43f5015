"""Judge names: built-in aliases, the user's judges file, `backend:model` specs, env overrides,
and `splitreason judges`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from splitreason.judges.registry import JudgeConfigError, default_judges_file, load_aliases, resolve

BUILT_IN = {"qwen-32b", "deepseek-r1", "gpt-4o", "claude-sonnet"}


@pytest.fixture(autouse=True)
def _hermetic_env(hermetic_judge_env, monkeypatch):
    """Every test here runs with the shared hermetic judge environment (conftest)."""


def judges_file(tmp_path: Path, text: str, name: str = "judges.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_built_in_aliases():
    aliases = load_aliases()
    assert set(aliases) == BUILT_IN
    qwen = aliases["qwen-32b"]
    assert qwen.backend == "openai" and qwen.model == "Qwen/Qwen2.5-32B-Instruct"
    assert qwen.effective_base_url() == "http://127.0.0.1:8000/v1"
    assert "vllm serve" in qwen.start_hint and qwen.origin == "built-in"
    assert aliases["gpt-4o"].response_format == "json_schema_strict"
    assert aliases["deepseek-r1"].response_format == "none"
    assert aliases["claude-sonnet"].backend == "anthropic" and aliases["claude-sonnet"].base_url is None
    assert all(spec.api_key is None for spec in aliases.values())  # keys are never in the aliases


def test_judges_file_adds_and_overrides(tmp_path):
    path = judges_file(tmp_path, """
[judges.qwen-32b]
backend = "openai"
model = "Qwen/Qwen2.5-32B-Instruct"
base_url = "http://gpu-box:9000/v1"

[judges.local-r1]
backend = "openai"
model = "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B"
base_url = "http://127.0.0.1:8001/v1"
response_format = "json_object"
description = "team server"
""")
    aliases = load_aliases(path)
    assert set(aliases) == BUILT_IN | {"local-r1"}
    assert aliases["qwen-32b"].effective_base_url() == "http://gpu-box:9000/v1"
    assert aliases["qwen-32b"].origin == str(path)
    assert aliases["qwen-32b"].base_url_env is None  # the user's entry replaces the built-in whole
    assert aliases["local-r1"].response_format == "json_object"
    assert aliases["gpt-4o"].origin == "built-in"


def test_judges_file_from_environment_and_xdg(tmp_path, monkeypatch):
    path = judges_file(tmp_path, '[judges.mine]\nbackend = "openai"\nmodel = "m"\n')
    monkeypatch.setenv("SPLITREASON_JUDGES_FILE", str(path))
    assert default_judges_file() == path
    assert "mine" in load_aliases()
    monkeypatch.delenv("SPLITREASON_JUDGES_FILE")
    assert default_judges_file() is None
    config = tmp_path / "xdg" / "splitreason"
    config.mkdir(parents=True)
    judges_file(config, '[judges.from-xdg]\nbackend = "anthropic"\nmodel = "claude-x"\n')
    assert "from-xdg" in load_aliases()


@pytest.mark.parametrize("text, message", [
    ('[judges."bad name"]\nbackend = "openai"\nmodel = "m"\n', "invalid judge name 'bad name'"),
    ('[judges.x]\nbackend = "openai"\nmodel = "m"\nbogus = 1\n', r"\[judges.x\] has unknown keys \['bogus'\]"),
    ('[judges.x]\nbackend = "nope"\nmodel = "m"\n', r"\[judges.x\] backend must be one of"),
    ('[judges.x]\nmodel = "m"\n', r"\[judges.x\] backend must be one of"),
    ('[judges.x]\nbackend = "openai"\n', r"\[judges.x\] needs a model"),
    ('[judges.x]\nbackend = "openai"\nmodel = "m"\nresponse_format = "xml"\n', "response_format must be one of"),
    ("[judges]\nx = 3\n", r"\[judges.x\] must be a table"),
    ("judges = 3\n", "'judges' must be a table"),
    ("[judges.x\nbackend = 1\n", "not valid TOML"),
])
def test_invalid_judges_file(tmp_path, text, message):
    path = judges_file(tmp_path, text)
    with pytest.raises(JudgeConfigError, match=message) as caught:
        load_aliases(path)
    assert str(path) in str(caught.value)


def test_missing_judges_file(tmp_path):
    with pytest.raises(JudgeConfigError, match="does not exist"):
        load_aliases(tmp_path / "nowhere.toml")


def test_resolve_names():
    aliases = load_aliases()
    assert resolve("heuristic", aliases).backend == "heuristic"
    spec = resolve("openai:my-model", aliases)
    assert (spec.backend, spec.model, spec.origin) == ("openai", "my-model", "command line")
    assert spec.base_url_env == "OPENAI_BASE_URL" and spec.api_key_env == "OPENAI_API_KEY"
    spec = resolve("anthropic:claude-x", aliases)
    assert spec.base_url_env == "ANTHROPIC_BASE_URL" and spec.api_key_env == "ANTHROPIC_API_KEY"
    assert resolve("vllm:/models/qwen", aliases).model == "/models/qwen"
    # A model id with colons keeps them.
    assert resolve("openai:ft:gpt-4o:org:123", aliases).model == "ft:gpt-4o:org:123"


@pytest.mark.parametrize("name, message", [
    ("gpt-5-turbo", "unknown judge 'gpt-5-turbo'. Known: heuristic, claude-sonnet, deepseek-r1, gpt-4o, qwen-32b"),
    ("mistral:large", "unknown judge 'mistral:large'"),
    ("openai:", "names no model: use openai:<model>"),
    ("", "unknown judge ''"),
])
def test_resolve_invalid_names(name, message):
    with pytest.raises(JudgeConfigError, match=message.replace(".", r"\.")):
        resolve(name, load_aliases())


def test_base_url_precedence(monkeypatch):
    aliases = load_aliases()
    qwen = resolve("qwen-32b", aliases)
    assert qwen.effective_base_url() == "http://127.0.0.1:8000/v1"
    monkeypatch.setenv("SPLITREASON_QWEN_32B_URL", "http://gpu-box:8000/v1")
    assert qwen.effective_base_url() == "http://gpu-box:8000/v1"  # env over the alias
    flag = resolve("qwen-32b", aliases, base_url="http://flag:1/v1")
    assert flag.effective_base_url() == "http://flag:1/v1"  # --base-url over the env
    monkeypatch.setenv("OPENAI_BASE_URL", "http://proxy/v1")
    assert resolve("openai:m", aliases).effective_base_url() == "http://proxy/v1"


def test_api_key_from_env_and_never_in_repr(tmp_path, monkeypatch):
    path = judges_file(tmp_path, '[judges.keyed]\nbackend = "openai"\nmodel = "m"\napi_key = "sk-file-secret-123"\n'
                                 'api_key_env = "MY_JUDGE_KEY"\n')
    spec = load_aliases(path)["keyed"]
    assert spec.effective_api_key() == "sk-file-secret-123"
    assert "sk-file-secret-123" not in repr(spec)
    monkeypatch.setenv("MY_JUDGE_KEY", "sk-env-secret-456")
    assert spec.effective_api_key() == "sk-env-secret-456"


# -- `splitreason judges` ----------------------------------------------------------------------


def run_judges(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {key: value for key, value in os.environ.items()
             if not key.startswith(("OPENAI_", "ANTHROPIC_", "SPLITREASON_", "DEEPSEEK_"))}
    clean.update({"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "COLUMNS": "220", **env})
    return subprocess.run([sys.executable, "-m", "splitreason.cli", "judges", *args], capture_output=True,
                          text=True, env=clean, timeout=60)


def row(output: str, name: str) -> str:
    [line] = [line for line in output.splitlines() if line.startswith(f"{name} ")]  # piped: plain columns
    return line


def test_judges_command_lists_aliases_with_endpoints(tmp_path):
    result = run_judges(tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "http://127.0.0.1:8000/v1 (override with $SPLITREASON_QWEN_32B_URL)" in row(out, "qwen-32b")
    assert "https://api.deepseek.com" in row(out, "deepseek-r1") and "$DEEPSEEK_API_KEY" in row(out, "deepseek-r1")
    assert "https://api.openai.com/v1" in row(out, "gpt-4o") and "$OPENAI_API_KEY" in row(out, "gpt-4o")
    assert "SDK default (override with $ANTHROPIC_BASE_URL)" in row(out, "claude-sonnet")
    assert "offline" in row(out, "heuristic")
    assert "openai:<model>" in out


def test_judges_command_shows_overrides_and_file_entries_but_no_key(tmp_path):
    path = judges_file(tmp_path, '[judges.team]\nbackend = "openai"\nmodel = "team-model"\n'
                                 'base_url = "http://team:8000/v1"\napi_key = "sk-file-secret-789"\n')
    result = run_judges(tmp_path, "--judges-file", str(path), SPLITREASON_QWEN_32B_URL="http://gpu-box:8000/v1",
                        OPENAI_API_KEY="sk-env-secret-000")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "http://gpu-box:8000/v1 (from $SPLITREASON_QWEN_32B_URL)" in row(out, "qwen-32b")
    assert "$OPENAI_API_KEY (set)" in row(out, "gpt-4o")
    assert "http://team:8000/v1" in row(out, "team") and "team-model" in row(out, "team")
    assert "sk-file-secret-789" not in out and "sk-env-secret-000" not in out


def test_judges_command_narrow_terminal_wraps_never_cuts(tmp_path):
    result = run_judges(tmp_path, COLUMNS="80")
    assert result.returncode == 0
    assert "…" not in result.stdout


def test_judges_command_bad_file_is_one_line(tmp_path):
    path = judges_file(tmp_path, '[judges.x]\nbackend = "openai"\nmodel = "m"\nbogus = 1\n')
    result = run_judges(tmp_path, "--judges-file", str(path))
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr
    # The table name is shown as written (not eaten as console markup).
    assert "[judges.x] has unknown keys ['bogus']" in lines[0]
