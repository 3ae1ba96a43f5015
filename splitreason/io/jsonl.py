"""Crash-safe JSONL and small-file writing for splitreason's own outputs.

* Records are written one per line (``\\n``-terminated, UTF-8); a pydantic model is
  serialized with ``model_dump_json()``, a dict with ``json.dumps(ensure_ascii=False)``.
  Strings that cannot be encoded as UTF-8 (lone surrogates) fall back to ASCII escapes.
* `append_records` and `JsonlAppender` only ever append, a whole line per write; ``sync()`` and
  ``close()`` ``os.fsync`` (the one place the fsync policy is decided).
  Before appending to an existing file they call `repair_tail`, so a line torn by a
  crash (SIGKILL, power loss) is removed instead of being glued to the next record.
* `iter_jsonl` reads our own files back: a corrupt line in the middle raises
  `JsonlCorruptError`; an unterminated last line is yielded when it is a complete JSON
  object and skipped otherwise (a torn tail).
* `atomic_write_text` / `atomic_write_bytes` / `atomic_write_json` (and `atomic_writer`, for a
  stream) write a temp file in the same directory, fsync it and ``os.replace`` it over the target.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from pydantic import BaseModel
from splitreason.errors import UsageError

__all__ = [
    "JsonlAppender",
    "JsonlCorruptError",
    "append_records",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "atomic_writer",
    "iter_jsonl",
    "record_to_line",
    "repair_tail",
]

_CHUNK = 1 << 16


def _new_file_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


# The mode open() gives a new file (0o644 under the usual umask). mkstemp makes its files 0o600,
# which would leave exports and run files unreadable to the other users of a shared machine.
NEW_FILE_MODE = _new_file_mode()  # read once, at import, before any thread starts


class JsonlCorruptError(UsageError, ValueError):
    """A line of one of our own JSONL files is not a JSON object."""


def record_to_line(record: BaseModel | dict[str, Any]) -> bytes:
    """Serialize one record to a single ``\\n``-terminated UTF-8 line."""
    if isinstance(record, BaseModel):
        try:
            text = record.model_dump_json()
        except Exception:  # lone surrogates cannot be encoded as UTF-8 by pydantic-core
            text = json.dumps(record.model_dump(mode="json"), ensure_ascii=True, allow_nan=False)
    elif isinstance(record, dict):
        text = json.dumps(record, ensure_ascii=False, allow_nan=False)
    else:
        raise TypeError(f"expected a pydantic model or a dict, got {type(record).__name__}")
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        plain = json.loads(text)
        data = json.dumps(plain, ensure_ascii=True, allow_nan=False).encode("ascii")
    if b"\n" in data:  # cannot happen with json.dumps / model_dump_json, but never write two lines
        raise ValueError("serialized record contains a raw newline")
    return data + b"\n"


def fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def repair_tail(path: str | os.PathLike[str]) -> int:
    """Truncate a trailing partial line (no final newline); return the number of bytes removed.

    A missing or empty file, or one ending with ``\\n``, is left alone (returns 0).
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return 0
    if size == 0:
        return 0
    with open(path, "r+b") as handle:
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return 0
        keep = 0
        end = size
        while end > 0:
            start = max(0, end - _CHUNK)
            handle.seek(start)
            chunk = handle.read(end - start)
            pos = chunk.rfind(b"\n")
            if pos >= 0:
                keep = start + pos + 1
                break
            end = start
        handle.truncate(keep)
        handle.flush()
        os.fsync(handle.fileno())
    return size - keep


class JsonlAppender:
    """Append records to a JSONL file, durably: the one append writer of every stage (the
    annotator's shard files and rejects, `shard`'s files, curate's ledgers). Use as a context
    manager.

    Each record is one ``write()`` of its whole line on an ``O_APPEND`` descriptor, so a process
    killed at any moment leaves whole lines; a write that fails (a full disk) is cut back off the
    file, so it never ends in half a line, and the error names the file. The fsync policy lives
    here and nowhere else: ``sync()`` (also ``flush()``) and ``close()`` fsync; with
    ``sync_interval`` a write also fsyncs when that many seconds passed since the last fsync.
    ``suspend()`` gives the descriptor back without closing the appender (for callers that keep
    many files and a cap on open ones); the next write opens it again.

    ``repair=True`` (default) first removes a torn last line left by a crash; the number of
    bytes removed is in ``repaired_bytes``.
    """

    def __init__(self, path: str | os.PathLike[str], *, repair: bool = True,
                 sync_interval: float | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.repaired_bytes = repair_tail(self.path) if repair else 0
        self.sync_interval = sync_interval
        self.count = 0
        self._closed = False
        self._fd: int | None = None
        self._size = 0
        self._unsynced = False
        self._last_sync = time.monotonic()
        self._open()

    def _open(self) -> int:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, NEW_FILE_MODE)
            self._size = os.fstat(self._fd).st_size
        return self._fd

    def write(self, record: BaseModel | dict[str, Any]) -> None:
        self.write_line(record_to_line(record))

    def write_line(self, line: bytes) -> None:
        """Append one already serialized, ``\\n``-terminated line."""
        if self._closed:
            raise ValueError(f"{self.path} is closed")
        fd = self._open()
        try:
            view = memoryview(line)
            while view:
                view = view[os.write(fd, view):]
        except OSError as error:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, self._size)  # no half line left behind (what a full disk would leave)
            raise OSError(error.errno, error.strerror, str(self.path)) from error  # os.write names no file
        self._size += len(line)
        self.count += 1
        self._unsynced = True
        if self.sync_interval is not None and time.monotonic() - self._last_sync > self.sync_interval:
            self.sync()

    def write_many(self, records: Iterable[BaseModel | dict[str, Any]]) -> int:
        n = 0
        for record in records:
            self.write(record)
            n += 1
        return n

    def sync(self) -> None:
        """fsync what was written (a suspended file is opened again for it)."""
        if self._unsynced and not self._closed:
            os.fsync(self._open())
            self._unsynced = False
        self._last_sync = time.monotonic()

    flush = sync

    def suspend(self) -> None:
        """Close the descriptor without fsync; the next write or sync opens the file again."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        if self._closed:
            return
        try:
            self.sync()
        finally:
            self._closed = True
            self.suspend()

    def __enter__(self) -> JsonlAppender:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def append_records(path: str | os.PathLike[str], records: Iterable[BaseModel | dict[str, Any]]) -> int:
    """Append `records` to `path` (created if needed), flush and fsync; return how many were written."""
    with JsonlAppender(path) as appender:
        return appender.write_many(records)


def iter_jsonl(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Yield the JSON objects of one of our JSONL files (see the module docstring for torn tails)."""
    path = Path(path)
    with open(path, "rb") as handle:
        line_no = 0
        for raw in handle:
            line_no += 1
            terminated = raw.endswith(b"\n")
            if not raw.strip():
                continue
            try:
                value = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                if not terminated:
                    return  # torn last line left by a crash
                raise JsonlCorruptError(f"{path}:{line_no}: corrupt JSONL line: {exc}") from exc
            if not isinstance(value, dict):
                if not terminated:
                    return
                raise JsonlCorruptError(f"{path}:{line_no}: line is not a JSON object")
            yield value


@contextmanager
def atomic_writer(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temp file next to `path` for writing; on a clean exit it is fsynced and replaces
    `path`, on an error it is removed. For outputs written as a stream (an export, a copied
    shard): a crash leaves the previous file, never half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, NEW_FILE_MODE)
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to `path` atomically (temp file in the same directory + fsync + os.replace)."""
    with atomic_writer(path) as handle:
        handle.write(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], obj: Any, *, indent: int | None = 2) -> None:
    """Write `obj` (JSON-able value or pydantic model) as JSON plus a final newline, atomically."""
    if isinstance(obj, BaseModel):
        text = obj.model_dump_json(indent=indent)
    else:
        text = json.dumps(obj, ensure_ascii=False, indent=indent, allow_nan=False)
    atomic_write_text(path, text + "\n")


def file_sha256(path: str | os.PathLike[str], *, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks (a shard may be larger than memory should hold)."""
    hasher = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            hasher.update(chunk)
    return hasher.hexdigest()
