"""One writer per output: an exclusive lock on a run directory or on a file written in place.

Two processes appending to the same run directory write every trace twice (duplicated training
data), so every command that writes an output holds its lock for the whole run. The lock is the
kernel's `flock` on a small file: the operating system releases it when the holder exits in any
way (a SIGKILLed run never blocks the next one), and a second writer is refused at once with one
line naming the holder (pid, host, command, since when), which the holder writes into the lock
file when it takes the lock.

    OUT/.lock                 for a run directory (annotate, curate, shard, merge, train, evaluate)
    DIR/.NAME.lock            for a file written in place (export's target file, the report)

The holder removes the lock file when it lets go, so a finished run leaves none behind (a killed
one leaves a stale file that the next run simply locks). Removing is safe because taking the lock
checks, after `flock` succeeded, that the file locked is still the one at the path: a process that
opened the old file just before it was removed, or before a directory was swapped under it, finds
a different file there and opens again. Readers never take the lock; they read only complete lines.

`flock` is advisory and local to one kernel on most network filesystems' clients; on NFS it is
emulated with POSIX locks (Linux >= 2.6.12), which work across clients where the server supports
them. A lock that cannot be taken for another reason (a read-only or full filesystem, a parent
that is a file, permission denied) is an error of its own (io/environment.py), not "held by
another process".
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path
from types import TracebackType

from splitreason.errors import RunFailed
from splitreason.io.environment import OutputNotWritable, environment_errors, first_file_on_path
from splitreason.io.redaction import redact

__all__ = ["LOCK_NAME", "LockHeld", "OutputLock", "claim_output_dir", "claim_output_file", "is_lock_file",
           "lock_path_for_file", "replace_locked_dir"]

LOCK_NAME = ".lock"
_REOPEN_ATTEMPTS = 20  # a lock file replaced this many times in a row is not a race but a loop


class LockHeld(RunFailed):
    """Another process is writing the same output."""


def lock_path_for_file(target: Path) -> Path:
    """Where the lock of a single output file lives: beside it, hidden."""
    return target.parent / f".{target.name}.lock"


def is_lock_file(path: Path) -> bool:
    """True for a lock file of ours: what "OUT holds nothing else" and "the files of a run" ignore."""
    return path.name == LOCK_NAME or (path.name.startswith(".") and path.name.endswith(".lock"))


class OutputLock:
    """Exclusive, non-blocking lock on `path` (created if missing), held until `release()`.

    `what` names the output in messages ("output directory out", "export target train.jsonl").
    Use as a context manager, or `acquire()` / `release()` around a run. `created_dir` is the
    directory `claim_output_dir` made for this run (None when it existed): `discard()` removes it
    again after a failed start, when it holds nothing but the lock.
    """

    def __init__(self, path: Path, what: str, *, command: str | None = None, created_dir: Path | None = None):
        self.path = Path(path)
        self.what = what
        self.command = command if command is not None else _current_command()
        self.created_dir = created_dir
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> OutputLock:
        if self._fd is not None:
            return self  # a driver never refuses itself
        for _ in range(_REOPEN_ATTEMPTS):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as error:
                os.close(fd)
                if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise LockHeld(self._held_message()) from None
                raise
            if _same_file(fd, self.path):
                break
            os.close(fd)  # removed or replaced since we opened it: lock the file that is there now
        else:
            raise LockHeld(f"{self.what} is being locked and released in a loop by other processes; "
                           "wait for them to finish")
        self._fd = fd
        self._write_holder(fd)
        return self

    def _write_holder(self, fd: int) -> None:
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "command": self.command,
                  "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(holder, ensure_ascii=False) + "\n").encode("utf-8"), 0)
        except OSError:
            pass  # a full disk: the lock holds all the same; a refused writer just cannot name us

    def release(self) -> None:
        """Let go: remove the lock file (still ours: checked), then close it, which unlocks it."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            if _same_file(fd, self.path):
                self.path.unlink()
        except OSError:
            pass  # a read-only or vanished directory: closing still releases the lock
        finally:
            os.close(fd)

    def discard(self) -> None:
        """Release, and remove the directory this run created for its output when it holds nothing
        else: a run that could not start leaves no half-made output behind."""
        self.release()
        if self.created_dir is None:
            return
        try:
            self.created_dir.rmdir()  # only when empty: another process's lock or files keep it
        except OSError:
            pass

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


def _same_file(fd: int, path: Path) -> bool:
    try:
        opened, there = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (opened.st_dev, opened.st_ino) == (there.st_dev, there.st_ino)


def refuse_dash_for_directory(path: Path, option: str = "-o") -> None:
    """`-` streams to stdout only where a command writes one file; as a directory it would be a folder
    named `-` that later breaks `-o -` (a file '-' that is a directory)."""
    if str(path) == "-":
        raise OutputNotWritable(f"{option} -: this output is a directory and cannot go to stdout (- streams only "
                                "where a command writes one file: export, report, evaluate grade); give a directory")


def claim_output_dir(out: Path, what: str | None = None) -> OutputLock:
    """Create the run directory `out` if needed and lock it (OUT/.lock) for this run.

    Call it once everything checkable was checked; then check again what depends on OUT's
    contents, under the lock. Environmental failures (a parent that is a file, read-only, permission
    denied, disk full) are one-line errors. After a failed start, `discard()` removes `out` again
    if this call created it."""
    out = Path(out)
    what = what or f"output directory {out}"
    refuse_dash_for_directory(out)
    if out.exists() and not out.is_dir():
        raise OutputNotWritable(f"output {out} exists and is not a directory; choose another output (-o)")
    if (blocker := first_file_on_path(out)) is not None:
        raise OutputNotWritable(f"cannot create {out}: {blocker} is a file, not a directory; choose another "
                                "output (-o)")
    created: Path | None = None
    with environment_errors("nothing was written", path=out):
        out.parent.mkdir(parents=True, exist_ok=True)
        try:
            out.mkdir()
            created = out
        except FileExistsError:
            if not out.is_dir():
                raise OutputNotWritable(f"output {out} exists and is not a directory; choose another output (-o)") \
                    from None
        lock = OutputLock(out / LOCK_NAME, what, created_dir=created)
        try:
            lock.acquire()
        except BaseException:
            lock.discard()
            raise
    return lock


def claim_output_file(target: Path, what: str | None = None) -> OutputLock:
    """Lock a single output written in place, a file (or a directory written whole, like a saved
    dataset), with DIR/.NAME.lock beside it; its directory is created if needed."""
    target = Path(target)
    what = what or f"output {target}"
    with environment_errors("nothing was written", path=target):
        target.parent.mkdir(parents=True, exist_ok=True)
        return OutputLock(lock_path_for_file(target), what).acquire()


def replace_locked_dir(lock: OutputLock, new: Path, old_to: Path) -> None:
    """Put directory `new` where the locked run directory is, atomically, without letting go of the
    lock: the lock file is hard-linked into `new` first, then the two directories are exchanged in
    one step (Linux renameat2 RENAME_EXCHANGE), so OUT/.lock is the held lock at every moment. The
    old directory ends at `old_to` for the caller to remove. Where the exchange is not supported
    (another OS, some network filesystems) it is two renames, with OUT briefly absent."""
    out = lock.path.parent
    with contextlib.suppress(OSError):
        os.link(lock.path, new / lock.path.name)
    if _exchange(new, out):
        os.rename(new, old_to)  # `new` now names the old directory
        return
    os.rename(out, old_to)
    os.rename(new, out)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically; False where renameat2 or RENAME_EXCHANGE is not available."""
    import ctypes

    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def _current_command() -> str:
    """`splitreason annotate ...` as the user typed it, without secrets or URL credentials."""
    args = [os.path.basename(sys.argv[0]) if sys.argv else "python", *sys.argv[1:]]
    if args[0] in ("cli.py", "__main__.py", "-m", "-c"):
        args[0] = "splitreason"
    return redact(" ".join(args))[:300]
