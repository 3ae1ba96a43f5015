"""The dedup indexes on disk (SQLite), so memory does not grow with the number of problems.

datasketch's in-memory MinHashLSH keeps a Python set per band bucket: about 8.5 kB per problem
at 25 bands, 0.8 GB for the ~94k problems of OpenR1-Math-220k. Here the same banding lives in
one SQLite table (band hash -> problem), beside the kept problems' signatures and the exact
dedup keys, in a scratch file of the curate work directory; SQLite's page cache (bounded by
CACHE_KIB) is all that stays in memory.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import tempfile
from pathlib import Path

CACHE_KIB = 32 * 1024  # SQLite page cache per index


def band_keys(values: bytes, bands: int, rows: int) -> list[int]:
    """One signed 64-bit key per band of a MinHash signature (uint32 values, `rows` per band)."""
    width = 4 * rows
    return [int.from_bytes(hashlib.blake2b(bytes([band]) + values[band * width:(band + 1) * width],
                                           digest_size=8).digest(), "big", signed=True)
            for band in range(bands)]


DEDUP_INDEX_NAME = "dedup-index.sqlite"


class DedupIndex:
    """Exact keys, LSH band buckets and kept signatures of one curate run."""

    def __init__(self, directory: Path | None = None):
        self._owned = directory is None  # a scratch file of our own, removed on close
        if directory is None:
            directory = Path(tempfile.mkdtemp(prefix="splitreason-dedup-"))
        self.path = directory / DEDUP_INDEX_NAME
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        for pragma in ("journal_mode=OFF", "synchronous=OFF", f"cache_size=-{CACHE_KIB}", "temp_store=FILE"):
            self._db.execute(f"PRAGMA {pragma}")  # a scratch file: rebuilt from the input if lost
        self._db.executescript("""
            CREATE TABLE IF NOT EXISTS exact (key BLOB PRIMARY KEY, uuid TEXT NOT NULL) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS kept (item INTEGER PRIMARY KEY, uuid TEXT NOT NULL UNIQUE,
                                             numbers INTEGER NOT NULL, signature BLOB NOT NULL);
            CREATE TABLE IF NOT EXISTS buckets (key INTEGER NOT NULL, item INTEGER NOT NULL,
                                                PRIMARY KEY (key, item)) WITHOUT ROWID;
        """)
        self._db.execute("BEGIN")  # one transaction for the run: no commit per problem

    # -- exact dedup
    def first_with_key(self, key: bytes, uuid: str) -> str:
        """The uuid that first had `key` (this one, if none did)."""
        self._db.execute("INSERT OR IGNORE INTO exact (key, uuid) VALUES (?, ?)", (key, uuid))
        return self._db.execute("SELECT uuid FROM exact WHERE key = ?", (key,)).fetchone()[0]

    # -- near dedup
    def is_kept(self, uuid: str) -> bool:
        return self._db.execute("SELECT 1 FROM kept WHERE uuid = ?", (uuid,)).fetchone() is not None

    def candidates(self, keys: list[int], numbers: int | None) -> list[tuple[str, bytes]]:
        """Kept problems sharing a band (and, when given, the numbers key): (uuid, signature)."""
        marks = ",".join("?" * len(keys))
        query = f"SELECT uuid, signature FROM kept WHERE item IN (SELECT item FROM buckets WHERE key IN ({marks}))"
        if numbers is None:
            return self._db.execute(query, keys).fetchall()
        return self._db.execute(query + " AND numbers = ?", [*keys, numbers]).fetchall()

    def keep(self, uuid: str, keys: list[int], numbers: int, signature: bytes) -> None:
        item = self._db.execute("INSERT INTO kept (uuid, numbers, signature) VALUES (?, ?, ?)",
                                (uuid, numbers, signature)).lastrowid
        self._db.executemany("INSERT OR IGNORE INTO buckets (key, item) VALUES (?, ?)", [(key, item) for key in keys])

    def close(self) -> None:
        self._db.close()
        if self._owned:
            for path in (self.path, self.path.parent):
                try:
                    path.unlink() if path.is_file() else os.rmdir(path)
                except OSError:
                    pass
