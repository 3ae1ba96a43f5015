"""Keep secrets out of everything splitreason stores or prints.

A judge server may echo the request's key in its error text, and a URL may carry credentials
(`http://user:pass@host/v1`, `?api_key=...`). Any text that came from a judge or names an
endpoint passes through `redact` before it is written (annotations, cache entries, run.json,
the lock's holder line) or printed (error lines):

* the values of the process's own keys are replaced by `***`: the variables the judges read their
  keys from (every alias's `api_key_env`, registered when the judges file is read or a judge is
  resolved, and the well-known `KNOWN_KEY_VARIABLES`), and keys written in a judges file
  (registered the same way). Only values of at least `MIN_SECRET_CHARS` characters count: a
  placeholder such as `EMPTY` is not a secret, and replacing every "EMPTY" in a text would garble it;
* URL credentials: the user-info part (`user:pass@` becomes `***@`) and the values of query
  parameters named like keys (`api_key`, `key`, `token`, `access_token`, `password`, `secret`,
  `sig`, `signature`).

The environment is read on every call (a key set after import is still caught).
"""

from __future__ import annotations

import os
import re
import threading

__all__ = ["KNOWN_KEY_VARIABLES", "MIN_SECRET_CHARS", "REDACTED", "redact", "register_secret",
           "register_url_credentials", "secret_values"]

REDACTED = "***"
MIN_SECRET_CHARS = 8

KNOWN_KEY_VARIABLES = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "DEEPSEEK_API_KEY", "ARGILLA_API_KEY", "HF_TOKEN",
                       "HUGGING_FACE_HUB_TOKEN")
_USERINFO = re.compile(r"(?<=://)[^/@\s?#]+@")
_SECRET_QUERY = re.compile(r"(?<=[?&])((?:api[_-]?key|key|token|access[_-]?token|password|secret|sig|signature)=)"
                           r"[^&#\s\"']+", re.IGNORECASE)
_registered: set[str] = set()
_registered_names: set[str] = set(KNOWN_KEY_VARIABLES)
_lock = threading.Lock()


def register_secret(value: str | None = None, *, variable: str | None = None) -> None:
    """Treat `value` (a key from a judges file) or the value of environment `variable` (a judge's
    `api_key_env`, read at every `redact`) as a secret from now on."""
    with _lock:
        if value and len(value) >= MIN_SECRET_CHARS:
            _registered.add(value)
        if variable:
            _registered_names.add(variable)


def register_url_credentials(url: str | None) -> None:
    """Treat the credentials inside `url` (`user:pass@`) as secrets in every form a server may echo:
    the password, `user:pass`, and its base64 (HTTP clients turn URL credentials into a Basic
    Authorization header, which a server may quote back)."""
    if not url or "@" not in url:
        return
    from base64 import b64encode
    from urllib.parse import unquote, urlsplit

    try:
        parts = urlsplit(url)
        user, password = parts.username, parts.password
    except ValueError:
        return
    if user is None and password is None:
        return
    for raw_user, raw_password in {(user or "", password or ""), (unquote(user or ""), unquote(password or ""))}:
        pair = f"{raw_user}:{raw_password}"
        with _lock:
            _registered.add(b64encode(pair.encode()).decode())  # always long enough, and never plain text
        register_secret(pair)
        register_secret(raw_password)


def secret_values() -> list[str]:
    """The secrets `redact` replaces now, longest first (so a key that contains another goes whole)."""
    with _lock:
        values = set(_registered)
        names = set(_registered_names)
    for name in names:
        value = os.environ.get(name)
        if value is not None and len(value) >= MIN_SECRET_CHARS:
            values.add(value)
    return sorted(values, key=len, reverse=True)


def redact(text: str) -> str:
    """`text` with every secret and every URL credential replaced by `***`."""
    if not text:
        return text
    for secret in secret_values():
        if secret in text:
            text = text.replace(secret, REDACTED)
    if "://" in text:
        text = _USERINFO.sub(REDACTED + "@", text)
    if "=" in text and ("?" in text or "&" in text):
        text = _SECRET_QUERY.sub(lambda match: match.group(1) + REDACTED, text)
    return text
