"""SQLite cache of judge answers keyed by the request payload.

An answer already received is never requested again: the key is the sha256 of the sorted-key
JSON of everything that determines the answer (model, messages, every sampling parameter,
response format), the prompt template hash, the sample number (--samples) and the answer
attempt number. Deterministic failures (4xx other than 429)
are cached too so a resumed run does not resend them; `--retry-rejected` clears those (and every
other cached answer of the traces it asks again).
API keys are never part of a payload, so they never reach the cache.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Completion:
    """One raw answer from a judge backend."""

    text: str
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True)
class CachedFailure:
    """A deterministic failure (e.g. HTTP 400: prompt too long) remembered so it is not resent."""

    status: int
    message: str


def cache_key(payload: dict[str, Any], attempt: int, prompt_hash: str = "", sample: int = 0) -> str:
    key: dict[str, Any] = {"payload": payload, "attempt": attempt, "prompt": prompt_hash}
    if sample:  # absent for the first sample, so single-sample runs keep their cache keys
        key["sample"] = sample
    canonical = json.dumps(key, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class RequestCache:
    """Thin wrapper over one SQLite file; commits every write so SIGKILL loses nothing received."""

    def __init__(self, path: Path):
        self.path = path
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS answers ("
            " key TEXT PRIMARY KEY, trace_id TEXT NOT NULL, created REAL NOT NULL,"
            " ok INTEGER NOT NULL, body TEXT NOT NULL)"
        )
        self._db.execute("CREATE INDEX IF NOT EXISTS answers_trace ON answers(trace_id)")

    def get(self, key: str) -> Completion | CachedFailure | None:
        row = self._db.execute("SELECT ok, body FROM answers WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        ok, body = row
        data = json.loads(body)
        return Completion(**data) if ok else CachedFailure(**data)

    def put(self, key: str, trace_id: str, value: Completion | CachedFailure) -> None:
        ok = isinstance(value, Completion)
        self._db.execute(
            "INSERT OR REPLACE INTO answers (key, trace_id, created, ok, body) VALUES (?, ?, ?, ?, ?)",
            (key, trace_id, time.time(), int(ok), json.dumps(asdict(value), ensure_ascii=False)),
        )

    def forget_traces(self, trace_ids: set[str]) -> int:
        """Drop every cached answer of these traces (failures and the unusable answers alike).

        For `--retry-rejected`: a trace the judge failed on may have cached answers that were
        truncated or unparseable; replaying them would only reproduce the same rejection.
        """
        removed = 0
        for trace_id in trace_ids:
            removed += self._db.execute("DELETE FROM answers WHERE trace_id = ?", (trace_id,)).rowcount
        return removed

    def count(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM answers").fetchone()[0]

    def close(self) -> None:
        self._db.close()
