"""`--backend vllm`: the two engines in two processes, each vLLM's OpenAI-compatible server on
127.0.0.1 with prefix caching on, started here and stopped when the run ends; the pair then talks
to them through the openai backend (`openai_server.py`). vLLM cannot hold two engines in one
process, and a server process per model is what a user would run by hand. When the small and the
large model are the same path, one server serves both.

The servers run under the Python that has vLLM: `$SPLITREASON_VLLM_PYTHON`, else
`$SPLITREASON_VLLM_VENV/bin/python`, else this interpreter when it can import vllm. On a GPU the
small model's engine takes 25 % of its memory and the large one's 60 %.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from splitreason.errors import ServiceUnavailable

__all__ = ["VllmUnavailable", "server_command", "vllm_python", "vllm_server"]

GPU_SHARE = {"small": 0.25, "large": 0.6}


class VllmUnavailable(ServiceUnavailable):
    """vLLM cannot be found or its server does not start."""


def vllm_python() -> str:
    explicit = os.environ.get("SPLITREASON_VLLM_PYTHON")
    if explicit:
        return explicit
    venv = os.environ.get("SPLITREASON_VLLM_VENV")
    if venv and (Path(venv) / "bin" / "python").exists():
        return str(Path(venv) / "bin" / "python")
    if importlib.util.find_spec("vllm") is not None:
        return sys.executable
    raise VllmUnavailable("--backend vllm needs vLLM: pip install 'splitreason[vllm]', or point "
                          "SPLITREASON_VLLM_VENV (or SPLITREASON_VLLM_PYTHON) at an environment that has it "
                          "(scripts/setup_vllm_cpu.sh builds one)")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/models", timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def server_command(python: str, model: str, *, port: int, role: str, dtype: str = "auto",
                   max_model_len: int | None = None, gpu_share: float | None = None, tensor_parallel: int = 1,
                   gpu: bool = True) -> list[str]:
    """The server's command line. On a GPU: `--gpu-memory-utilization` (`gpu_share`, default the
    role's share in GPU_SHARE) and `--tensor-parallel-size` when above 1; without one, eager mode."""
    command = [python, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model), "--host", "127.0.0.1",
               "--port", str(port), "--enable-prefix-caching", "--seed", "0"]
    if dtype != "auto":
        command += ["--dtype", {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}.get(dtype, dtype)]
    if max_model_len:
        command += ["--max-model-len", str(max_model_len)]
    if gpu:
        share = gpu_share if gpu_share is not None else GPU_SHARE.get(role)
        if share is not None:
            command += ["--gpu-memory-utilization", str(share)]
        if tensor_parallel > 1:
            command += ["--tensor-parallel-size", str(tensor_parallel)]
    else:
        command += ["--enforce-eager"]  # no graph capture on the CPU: starts in seconds, not minutes
    return command


@contextlib.contextmanager
def vllm_server(model: str, *, role: str, dtype: str = "auto", max_model_len: int | None = None,
                gpu_share: float | None = None, tensor_parallel: int = 1, start_timeout_s: float = 900.0,
                python: str | None = None, extra_args: Sequence[str] = (), extra_environment: Mapping[str, str] | None = None) -> Iterator[str]:
    """A vLLM server for `model`; yields its base URL (…/v1); stopped (its process group) on exit.
    `gpu_share` and `tensor_parallel`: see `server_command`.

    `python` (default: `vllm_python()`), `extra_args` (appended to the server's command line; the
    last of a repeated flag wins) and `extra_environment` (added to the server's) are for callers with
    needs of their own, such as the tests' judge server with its grammar backend."""
    python = python or vllm_python()
    port = _free_port()
    url = f"http://127.0.0.1:{port}/v1"
    scratch = Path(tempfile.mkdtemp(prefix=f"splitreason-vllm-{role}-"))
    log_path = scratch / "server.log"
    command = server_command(python, model, port=port, role=role, dtype=dtype, max_model_len=max_model_len,
                             gpu_share=gpu_share, tensor_parallel=tensor_parallel, gpu=_has_gpu())
    environment = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    environment.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    environment.update({"VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1",
                        "VLLM_CACHE_ROOT": str(scratch / "vllm-cache"),
                        "TORCHINDUCTOR_CACHE_DIR": str(scratch / "inductor-cache")})
    command += list(extra_args)
    environment.update(extra_environment or {})
    log = open(log_path, "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               env=environment, cwd=str(scratch), start_new_session=True)
    try:
        deadline = time.monotonic() + start_timeout_s
        while not _ready(url):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = " ".join(log_path.read_text(errors="replace").split()[-40:])
                why = f"exited with code {process.returncode}" if process.poll() is not None else \
                    f"not ready after {start_timeout_s:.0f} s"
                raise VllmUnavailable(f"the {role} model's vLLM server {why}: …{tail[-400:]}")
            time.sleep(0.5)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # the engine core left behind, if any
        log.close()
        shutil.rmtree(scratch, ignore_errors=True)


def _has_gpu() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False
