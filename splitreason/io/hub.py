"""Can the Hugging Face hub be used now? Decided in a few seconds, before datasets is imported.

Left to itself, an unreachable hub costs ~25 s of huggingface_hub retries before datasets gives up
with one useful line. So the readers ask first:

- offline by choice: `HF_HUB_OFFLINE` or `HF_DATASETS_OFFLINE` set to 1/true/yes/on;
- otherwise one TCP connection to the hub's endpoint (`HF_ENDPOINT`, default
  https://huggingface.co), or to the proxy the environment names for it (`HTTPS_PROXY`,
  `HTTP_PROXY`, `ALL_PROXY`; `NO_PROXY` honoured), name resolution included, within
  `CONNECT_TIMEOUT_S`. A refused or timed-out connection means unreachable; an answer of any kind
  means reachable (what the hub then says is the loader's business).

When the hub cannot be used, the process goes offline (huggingface_hub and datasets read their
local caches only, with no retries); a dataset found in the local cache is still read, any other
is refused at once with `HubUnavailable`, whose line names the dataset and how to use a local copy.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import getproxies, proxy_bypass

from splitreason.errors import ServiceUnavailable

__all__ = ["CONNECT_TIMEOUT_S", "HubUnavailable", "go_offline", "in_local_cache", "is_network_failure",
           "local_copy_hint", "why_hub_unusable"]

CONNECT_TIMEOUT_S = 3.0
DEFAULT_ENDPOINT = "https://huggingface.co"
OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
_TRUE = {"1", "true", "yes", "on"}


class HubUnavailable(ServiceUnavailable):
    """The hub cannot be reached (or offline mode is on) and the dataset is not in the local cache."""


def local_copy_hint(hub_id: str) -> str:
    return (f"give a local copy instead of the id: a .jsonl/.parquet file or a folder of them (where the hub "
            f"is reachable, `hf download {hub_id} --repo-type dataset --local-dir DIR` makes one; pass DIR)")


def offline_by_choice() -> str | None:
    """The offline variable that is set, as NAME=value, else None."""
    for name in OFFLINE_VARIABLES:
        value = os.environ.get(name, "")
        if value.strip().lower() in _TRUE:
            return f"{name}={value}"
    return None


def _endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "").strip().rstrip("/") or DEFAULT_ENDPOINT


def _connect_target(endpoint: str) -> tuple[str, int, str]:
    """(host, port, what) to connect to for `endpoint`: the endpoint itself or the proxy for it."""
    parts = urlsplit(endpoint)
    host = parts.hostname or ""
    default_port = 443 if parts.scheme == "https" else 80
    proxy = getproxies().get(parts.scheme) or getproxies().get("all")
    if proxy and not proxy_bypass(host):
        proxy_parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        if proxy_parts.hostname:
            return proxy_parts.hostname, proxy_parts.port or 8080, f"the proxy {proxy_parts.hostname}:" \
                                                                      f"{proxy_parts.port or 8080} for {endpoint}"
    return host, parts.port or default_port, endpoint


def _connects(host: str, port: int, timeout: float) -> str | None:
    """None when a TCP connection to host:port opens within `timeout` (resolution included), else why not."""
    outcome: list[str | None] = []

    def attempt() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                outcome.append(None)
        except socket.gaierror as error:
            outcome.append(f"cannot resolve {host} ({error.strerror or error})")
        except OSError as error:
            outcome.append(f"cannot connect ({error.strerror or type(error).__name__})")

    # Name resolution ignores socket timeouts: a thread bounds it (left behind as a daemon if stuck).
    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(timeout)
    return outcome[0] if outcome else f"no answer within {timeout:g} s"


def why_hub_unusable(timeout: float = CONNECT_TIMEOUT_S) -> str | None:
    """None when the hub can be tried; otherwise why not, in a few words."""
    chosen = offline_by_choice()
    if chosen is not None:
        return f"offline mode is on ({chosen})"
    endpoint = _endpoint()
    host, port, what = _connect_target(endpoint)
    if not host:
        return f"HF_ENDPOINT {endpoint!r} names no host"
    failure = _connects(host, port, timeout)
    return None if failure is None else f"the hub cannot be reached: {what}: {failure}"


def go_offline() -> None:
    """From now on this process uses the hub's local caches only (no requests, no retries)."""
    for name in OFFLINE_VARIABLES:
        os.environ[name] = "1"  # for huggingface_hub and datasets when they are imported later
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:
        constants.HF_HUB_OFFLINE = True
    config = sys.modules.get("datasets.config")
    if config is not None:
        config.HF_HUB_OFFLINE = True
        config.HF_DATASETS_OFFLINE = True


def _cache_roots() -> tuple[Path, Path]:
    home = Path(os.environ.get("HF_HOME") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
                / "huggingface")
    hub = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE") or home / "hub"
    datasets = os.environ.get("HF_DATASETS_CACHE") or home / "datasets"
    return Path(hub), Path(datasets)


def in_local_cache(hub_id: str) -> bool:
    """Whether huggingface_hub's or datasets' cache holds anything of `hub_id` (worth trying offline)."""
    owner, _, name = hub_id.partition("/")
    hub, datasets = _cache_roots()
    return (hub / f"datasets--{owner}--{name}").is_dir() or (datasets / f"{owner}___{name}").is_dir()


def model_in_local_cache(hub_id: str) -> bool:
    """Whether huggingface_hub's cache holds anything of the model `hub_id` (worth loading offline)."""
    owner, _, name = hub_id.partition("/")
    return (_cache_roots()[0] / f"models--{owner}--{name}").is_dir() if name else False


def require_hub_for_model(hub_id: str, what: str) -> None:
    """Before a model or tokenizer is loaded by hub id: if the hub cannot be used, go offline when the
    cache holds it, else one line now (transformers would retry for half a minute, then fail)."""
    why = why_hub_unusable()
    if why is None:
        return
    if model_in_local_cache(hub_id):
        go_offline()
        return
    raise HubUnavailable(f"cannot load {what} {hub_id}: it is not a local path and {why}; give a local model "
                         f"directory (where the hub is reachable, `hf download {hub_id} --local-dir DIR` makes one)")


def is_network_failure(error: BaseException) -> bool:
    """The error (or one it was raised from) is the network's or the hub's fault: a connection that
    failed or timed out, offline mode, or a 5xx/429 answer. Not found, bad split and the like are not."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (ConnectionError, TimeoutError)):
            return True
        if type(current).__module__.split(".")[0] in ("httpx", "requests", "urllib3") and any(
                word in type(current).__name__ for word in ("Connect", "Timeout", "Proxy", "Network", "Protocol")):
            return True
        response = getattr(current, "response", None)
        status = getattr(response, "status_code", None)
        if isinstance(status, int) and (status >= 500 or status == 429):
            return True
        current = current.__cause__ or current.__context__
    return False
