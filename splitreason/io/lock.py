"""One writer per output: an exclusive lock on a run directory or on a file written in place.

Two processes appending to the same run directory write every trace twice (duplicated training
data), so every command that writes an output holds its lock for the whole run. The lock is the
kernel's `flock` on a small file: the operating system releases it when the holder exits in any
way (a SIGKILLed run never blocks the next one), and a second writer is refused at once with one
line naming the holder (pid, host, command, since when), which the holder writes into the lock
file when it takes the lock.

    OUT/.lock                 for a run directory (annotate, curate, shard, merge, train, evaluate)
    DIR/.NAME.lock            for a file written in place (export's target file)

The lock file is never deleted: unlinking it while another process waits on the old inode would
let two holders in. Readers never take the lock; they read only complete lines.

`flock` is advisory and local to one kernel on most network filesystems' clients; on NFS it is
emulated with POSIX locks (Linux >= 2.6.12), which work across clients where the server supports
them. A lock that cannot be taken for another reason (a read-only or full filesystem) is an error
of its own, not "held by another process".
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import socket
import sys
import time
from pathlib import Path
from types import TracebackType

from splitreason.errors import RunFailed

__all__ = ["LOCK_NAME", "LockHeld", "OutputLock", "lock_path_for_file"]

LOCK_NAME = ".lock"


class LockHeld(RunFailed):
    """Another process is writing the same output."""


def lock_path_for_file(target: Path) -> Path:
    """Where the lock of a single output file lives: beside it, hidden."""
    return target.parent / f".{target.name}.lock"


class OutputLock:
    """Exclusive, non-blocking lock on `path` (created if missing), held until `release()`.

    `what` names the output in messages ("output directory out", "export target train.jsonl").
    Use as a context manager, or `acquire()` / `release()` around a run.
    """

    def __init__(self, path: Path, what: str, *, command: str | None = None):
        self.path = Path(path)
        self.what = what
        self.command = command if command is not None else _current_command()
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> OutputLock:
        if self._fd is not None:
            return self  # a driver never refuses itself
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(fd)
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise LockHeld(self._held_message()) from None
            raise
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "command": self.command,
                  "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(holder, ensure_ascii=False) + "\n").encode("utf-8"), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)  # no stale holder shown to the next reader; the file itself stays
        except OSError:
            pass
        finally:
            os.close(fd)  # closing the last descriptor releases the flock

    def _held_message(self) -> str:
        try:
            holder = json.loads(self.path.read_text(encoding="utf-8"))
            who = (f"pid {holder['pid']} on {holder['host']} ({holder['command']}, since {holder['since']})")
        except (OSError, ValueError, KeyError, TypeError):
            who = "another process (it has not said which yet)"
        return (f"{self.what} is in use by {who}; wait for that run to finish or stop it, "
                "or write to another output")

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


_URL_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]+@")


def _current_command() -> str:
    """`splitreason annotate ...` as the user typed it, with no URL credentials (`user:pass@`)."""
    args = [os.path.basename(sys.argv[0]) if sys.argv else "python", *sys.argv[1:]]
    if args[0] in ("cli.py", "__main__.py", "-m", "-c"):
        args[0] = "splitreason"
    return _URL_CREDENTIALS.sub("***@", " ".join(args))[:300]
