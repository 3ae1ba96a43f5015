"""The machine said no: full disk, read-only file system, permission denied, a path through a file.

These are not bugs of ours and not the user's typo either; each becomes one line that says which
path, what happened and what to do, with the exit code of its kind:

    DiskFull            exit 1   no space (or quota) left: what was saved is kept, the same command resumes
    OutputNotWritable   exit 2   read-only file system, permission denied, a parent that is a file

`environment_error(error, saved=...)` translates an `OSError` or an SQLite error (which carries
no path) into one of them, or returns None for anything else (a bug stays a bug). Commands wrap
their writing in `environment_errors(saved)`, where `saved` says what the user keeps; `cli.main`
translates whatever still escapes, with a generic `saved`.
"""

from __future__ import annotations

import errno
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from splitreason.errors import RunFailed, SplitReasonError, UsageError

__all__ = ["DiskFull", "OutputNotWritable", "environment_error", "environment_errors", "first_file_on_path"]

_NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_SQLITE_NO_SPACE = ("database or disk is full", "disk is full")
_SQLITE_READ_ONLY = ("readonly database", "read-only")
_SQLITE_CANNOT_OPEN = ("unable to open database file",)
_SQLITE_IO = ("disk i/o error",)  # what SQLite says when a write of its journal fails on a full disk, too
GENERIC_SAVED = "what was written before is kept"


class DiskFull(RunFailed):
    """No space left where an output is written; what was saved is kept and the command resumes."""


class OutputNotWritable(UsageError):
    """An output cannot be written at that path: read-only, permission denied, or a parent is a file."""


def first_file_on_path(path: Path) -> Path | None:
    """The first ancestor of `path` (or `path` itself, unless it is the last part) that exists and is
    not a directory: what makes creating `path` fail with "Not a directory"."""
    for ancestor in reversed([path, *path.parents]):
        if ancestor.exists() and not ancestor.is_dir():
            return ancestor
        if not ancestor.exists():
            return None
    return None


def _where(error: BaseException, fallback: Path | str | None) -> str:
    name = getattr(error, "filename", None)
    return str(name if name is not None else fallback if fallback is not None else "an output file")


def environment_error(error: BaseException, *, saved: str = GENERIC_SAVED,
                      path: Path | str | None = None) -> SplitReasonError | None:
    """The one-line error for an environmental failure, or None when `error` is not one.

    `path` names the file when the error does not (SQLite's errors never do)."""
    if isinstance(error, SplitReasonError):
        return error
    if isinstance(error, sqlite3.OperationalError):
        message = str(error).lower()
        where = str(path) if path is not None else "a database file"
        if any(text in message for text in _SQLITE_NO_SPACE):
            return DiskFull(f"disk full: no space left to write {where}; {saved}. Free some space and run the same "
                            "command again to resume")
        if any(text in message for text in _SQLITE_READ_ONLY):
            return OutputNotWritable(f"cannot write {where}: it is read-only (or on a read-only file system); "
                                     "choose another output (-o)")
        if any(text in message for text in _SQLITE_CANNOT_OPEN):
            return OutputNotWritable(f"cannot open {where} for writing (permission denied, or its directory is "
                                     "gone); choose an output this user may write to (-o)")
        if any(text in message for text in _SQLITE_IO):
            return DiskFull(f"input/output error while writing {where} (a full disk, a failing disk or a lost "
                            f"network mount); {saved}. Check the device and run the same command again to resume")
        return None
    if not isinstance(error, OSError) or error.errno is None:
        return None
    where = _where(error, path)
    if error.errno in _NO_SPACE:
        what = "disk quota exceeded" if error.errno == errno.EDQUOT else "no space left on the device"
        return DiskFull(f"disk full: {what} while writing {where}; {saved}. Free some space and run the same "
                        "command again to resume")
    if error.errno == errno.EROFS:
        return OutputNotWritable(f"cannot write {where}: read-only file system; choose an output on a writable "
                                 "file system (-o)")
    if error.errno in (errno.EACCES, errno.EPERM):
        return OutputNotWritable(f"cannot write {where}: permission denied; choose an output this user may write "
                                 "to (-o), or change the directory's permissions")
    if error.errno == errno.ENOTDIR or (error.errno == errno.EEXIST and first_file_on_path(Path(where)) is not None):
        blocker = first_file_on_path(Path(where))
        because = f"{blocker} is a file, not a directory" if blocker is not None else "a part of it is not a directory"
        return OutputNotWritable(f"cannot create {where}: {because}; choose another output (-o)")
    if error.errno == errno.EIO:
        return DiskFull(f"input/output error while writing {where} (a failing disk or a lost network mount); "
                        f"{saved}. Check the device and run the same command again to resume")
    return None


@contextmanager
def environment_errors(saved: str | Callable[[], str] = GENERIC_SAVED, path: Path | str | None = None, *,
                       name_path: bool = False) -> Iterator[None]:
    """Translate environmental failures raised inside into their one-line errors.

    `saved` (or a function giving it, called only on failure) says what the user keeps. `path` names
    the file when the error does not; with `name_path`, always (when the error's own file is a
    temporary one the user never asked for)."""
    try:
        yield
    except (OSError, sqlite3.OperationalError) as error:
        if name_path and path is not None and isinstance(error, OSError):
            error = OSError(error.errno, error.strerror, str(path))
        translated = environment_error(error, saved=saved() if callable(saved) else saved, path=path)
        if translated is None or translated is error:
            raise
        raise translated from error
