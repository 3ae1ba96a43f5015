"""Judge names: built-in aliases, the user's judges file, and `backend:model` specs.

    heuristic                 offline rules (default)
    qwen-32b, gpt-4o, ...     aliases (splitreason judges lists them)
    openai:<model>            any OpenAI-compatible endpoint (--base-url)
    anthropic:<model>         Claude through the Messages API
    vllm:<model path>         in-process vLLM
    surprisal:<small>         model-grounded: where the small model's own loss is highest
    divergence:<small>,<large>  model-grounded: where the small model's prediction departs from the large one's
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from splitreason.errors import UsageError
from splitreason.io.redaction import register_secret

BACKENDS = ("heuristic", "openai", "anthropic", "vllm", "surprisal", "divergence")
RESPONSE_FORMATS = ("json_schema", "json_schema_strict", "json_object", "none")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_KEYS = {"backend", "model", "base_url", "base_url_env", "api_key_env", "api_key", "response_format",
         "start_hint", "description"}


class JudgeConfigError(UsageError, ValueError):
    """A judge set up wrong: a name or judges file that cannot be used, no key or a refused key, a
    model the server does not serve; the message says what to fix."""


@dataclass(frozen=True)
class JudgeSpec:
    name: str
    backend: str
    model: str
    base_url: str | None = None
    base_url_env: str | None = None
    api_key_env: str | None = None
    # Only from the user's own judges file; never printed, logged, cached or exported.
    api_key: str | None = field(default=None, repr=False)
    response_format: str = "json_schema"
    start_hint: str = ""
    description: str = ""
    origin: str = "built-in"

    def effective_base_url(self) -> str | None:
        """Environment variable (if set) over the configured URL."""
        if self.base_url_env and os.environ.get(self.base_url_env):
            return os.environ[self.base_url_env]
        return self.base_url

    def effective_api_key(self) -> str | None:
        if self.api_key_env and os.environ.get(self.api_key_env):
            return os.environ[self.api_key_env]
        return self.api_key


def default_judges_file() -> Path | None:
    explicit = os.environ.get("SPLITREASON_JUDGES_FILE")
    if explicit:
        return Path(explicit)
    home = Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config")) / "splitreason" / "judges.toml"
    return home if home.is_file() else None


def _parse_table(text: str, origin: str) -> dict[str, JudgeSpec]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise JudgeConfigError(f"judges file {origin} is not valid TOML: {error}") from error
    specs: dict[str, JudgeSpec] = {}
    judges = data.get("judges", {})
    if not isinstance(judges, dict):
        raise JudgeConfigError(f"judges file {origin}: 'judges' must be a table of [judges.<name>] entries")
    for name, entry in judges.items():
        if not _NAME.match(name):
            raise JudgeConfigError(f"judges file {origin}: invalid judge name {name!r} (letters, digits, . _ -)")
        if not isinstance(entry, dict):
            raise JudgeConfigError(f"judges file {origin}: [judges.{name}] must be a table")
        unknown = set(entry) - _KEYS
        if unknown:
            raise JudgeConfigError(f"judges file {origin}: [judges.{name}] has unknown keys {sorted(unknown)}")
        backend = entry.get("backend")
        if backend not in BACKENDS:
            raise JudgeConfigError(f"judges file {origin}: [judges.{name}] backend must be one of {BACKENDS}")
        if backend != "heuristic" and not entry.get("model"):
            raise JudgeConfigError(f"judges file {origin}: [judges.{name}] needs a model")
        fmt = entry.get("response_format", "json_schema")
        if fmt not in RESPONSE_FORMATS:
            raise JudgeConfigError(f"judges file {origin}: [judges.{name}] response_format must be one of {RESPONSE_FORMATS}")
        specs[name] = JudgeSpec(name=name, origin=origin, **{"model": "", **entry})
        register_secret(entry.get("api_key"), variable=entry.get("api_key_env"))  # never written, never printed
    return specs


def load_aliases(judges_file: Path | None = None) -> dict[str, JudgeSpec]:
    """Built-in aliases, then the user's file on top (same name: the user's wins)."""
    builtin = resources.files("splitreason.judges").joinpath("aliases.toml").read_text(encoding="utf-8")
    aliases = _parse_table(builtin, "built-in")
    path = judges_file or default_judges_file()
    if path is not None:
        if not path.is_file():
            raise JudgeConfigError(f"judges file {path} does not exist")
        aliases.update(_parse_table(path.read_text(encoding="utf-8"), str(path)))
    return aliases


def resolve(name: str, aliases: dict[str, JudgeSpec], *, base_url: str | None = None) -> JudgeSpec:
    """Turn what the user typed into a spec; `base_url` (from --base-url) overrides any configured one."""
    if name == "heuristic":
        spec = JudgeSpec(name="heuristic", backend="heuristic", model="rules")
    elif name in aliases:
        spec = aliases[name]
    elif ":" in name and name.split(":", 1)[0] in BACKENDS:
        backend, model = name.split(":", 1)
        if not model:
            raise JudgeConfigError(f"judge {name!r} names no model: use {backend}:<model>")
        defaults: dict[str, Any] = {
            "openai": {"base_url_env": "OPENAI_BASE_URL", "api_key_env": "OPENAI_API_KEY"},
            "anthropic": {"base_url_env": "ANTHROPIC_BASE_URL", "api_key_env": "ANTHROPIC_API_KEY"},
        }.get(backend, {})
        if backend == "divergence" and (model.count(",") != 1 or not all(part.strip() for part in model.split(","))):
            raise JudgeConfigError(f"judge {name!r}: divergence needs two models, divergence:<small>,<large>")
        spec = JudgeSpec(name=name, backend=backend, model=model, origin="command line", **defaults)
    else:
        known = ", ".join(["heuristic", *sorted(aliases)])
        raise JudgeConfigError(
            f"unknown judge {name!r}. Known: {known}; or openai:<model>, anthropic:<model>, vllm:<path>, "
            "surprisal:<small>, divergence:<small>,<large>."
        )
    if base_url:
        spec = replace(spec, base_url=base_url, base_url_env=None)
    register_secret(spec.api_key, variable=spec.api_key_env)
    return spec
