"""OUT/review.sqlite: every review decision, kept the moment it is made.

    reviews(trace_id, reviewer, origin, record)   one row per reviewer and path: the latest
                                                  Review as JSON (pulling or deciding again
                                                  replaces it, never duplicates it)
    drafts(trace_id, reviewer, record)            the UI's unsaved work on a trace (spans and
                                                  edit history), so a reload loses nothing

WAL mode and one short transaction per write: a crash keeps every decision already made.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

from splitreason.schemas.review import Review

REVIEW_DB_NAME = "review.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS reviews (
    trace_id TEXT NOT NULL,
    reviewer TEXT NOT NULL,
    origin TEXT NOT NULL,
    reviewed_at TEXT NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (trace_id, reviewer, origin)
);
CREATE TABLE IF NOT EXISTS drafts (
    trace_id TEXT NOT NULL,
    reviewer TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (trace_id, reviewer)
);
"""


class ReviewStore:
    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a decision is on disk when save() returns
        self._db.executescript(_SCHEMA)

    @classmethod
    def for_run(cls, out: Path) -> ReviewStore:
        return cls(out / REVIEW_DB_NAME)

    @staticmethod
    def exists_for(out: Path) -> bool:
        return (out / REVIEW_DB_NAME).is_file()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> ReviewStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- final decisions -------------------------------------------------------------------
    def save(self, review: Review) -> None:
        """Insert or replace this reviewer's decision on the trace (and drop their draft)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "INSERT OR REPLACE INTO reviews (trace_id, reviewer, origin, reviewed_at, record) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (review.trace_id, review.reviewer, review.origin, review.reviewed_at.isoformat(),
                     review.model_dump_json()),
                )
                self._db.execute("DELETE FROM drafts WHERE trace_id = ? AND reviewer = ?",
                                 (review.trace_id, review.reviewer))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def reviews(self, trace_id: str | None = None) -> list[Review]:
        query = "SELECT record FROM reviews"
        args: tuple = ()
        if trace_id is not None:
            query += " WHERE trace_id = ?"
            args = (trace_id,)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY trace_id, reviewed_at", args).fetchall()
        return [Review.model_validate_json(row[0]) for row in rows]

    def reviews_by_trace(self) -> dict[str, list[Review]]:
        grouped: dict[str, list[Review]] = defaultdict(list)
        for review in self.reviews():
            grouped[review.trace_id].append(review)
        return dict(grouped)

    def reviewed_ids(self) -> set[str]:
        with self._lock:
            return {row[0] for row in self._db.execute("SELECT DISTINCT trace_id FROM reviews")}

    # -- drafts (the UI's work in progress) --------------------------------------------------
    def save_draft(self, trace_id: str, reviewer: str, record: dict[str, Any], updated_at: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO drafts (trace_id, reviewer, updated_at, record) VALUES (?, ?, ?, ?)",
                (trace_id, reviewer, updated_at, json.dumps(record, ensure_ascii=False)),
            )

    def draft(self, trace_id: str, reviewer: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT record FROM drafts WHERE trace_id = ? AND reviewer = ?",
                                   (trace_id, reviewer)).fetchone()
        return json.loads(row[0]) if row else None

    def delete_draft(self, trace_id: str, reviewer: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM drafts WHERE trace_id = ? AND reviewer = ?", (trace_id, reviewer))
