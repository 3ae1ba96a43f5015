"""Run a function in worker processes, each call under a hard time limit, from any thread.

Grading an answer can take forever: sympy will happily try to decide whether 9^(9^(9^9)) equals
1. math-verify guards itself with `signal.alarm`, which works only on a process's main thread,
and TRL calls reward functions (and our evaluators call the grader) from other threads. So the
work runs in worker processes of our own: in a worker, the call runs on the main thread, where a
soft limit (SIGALRM, raised as a BaseException that math-verify's `except Exception` cannot
swallow) usually ends it cleanly; when even that does not come back (a C-level big-integer
operation ignores signals until it is done), the caller stops waiting at the hard limit and kills
that one worker. Other callers' workers are untouched; a fresh worker replaces the killed one on
demand.

A worker is a plain `python -m splitreason.evaluate.worker_pool` subprocess talking over a socket
pair. Not multiprocessing's "spawn": that re-runs the parent's main script in every child, which
breaks any training script without an `if __name__ == "__main__":` guard; and not "fork", which is
unsafe in a process that runs threads. Workers start on first use, at most `size` of them; each
imports what it needs once (`warm_up`) and reports ready before it gets work, so the import never
counts against a call's time limit. Workers ignore SIGINT (Ctrl-C is the parent's to handle) and
end when the parent goes away (their socket closes; on Linux the kernel also kills them then).
"""

from __future__ import annotations

import argparse
import importlib
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from typing import Any

from splitreason.errors import RunFailed

__all__ = ["CallFailed", "CallTimedOut", "SoftTimeout", "WorkerCrashed", "WorkerPool", "WorkerStartFailed"]

STARTUP_TIMEOUT_S = 120.0  # importing sympy on a loaded 2-core machine can take a while


class SoftTimeout(BaseException):
    """Raised inside a worker when a call passes its soft limit (a BaseException on purpose: the
    libraries we call catch `Exception` and would turn it into a wrong answer)."""


class CallTimedOut(Exception):
    """The call did not finish in time: it passed its soft limit (the worker stays), or its hard
    limit (the worker was killed)."""


class CallFailed(Exception):
    """The function raised in the worker; the message is its error, in one line."""


class WorkerCrashed(RunFailed):
    """A worker process died during a call."""


class WorkerStartFailed(WorkerCrashed):
    """A worker process could not start (its warm-up failed: a missing or broken package)."""


def _reference(function: Callable[..., Any]) -> str:
    module, name = function.__module__, function.__qualname__
    if "<" in name or module == "__main__":
        raise ValueError(f"{name} must be a top-level function of an importable module")
    return f"{module}:{name}"


def _resolve(reference: str) -> Callable[..., Any]:
    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)


def _on_alarm(signum: int, frame: Any) -> None:
    raise SoftTimeout()


def _serve(connection: Connection, function: Callable[..., Any], warm_up: Callable[[], None] | None) -> None:
    """The worker's loop: receive (args, soft limit), run `function(*args)`, send the outcome."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGALRM, _on_alarm)
    try:
        if warm_up is not None:
            warm_up()
    except Exception as error:  # e.g. a missing or broken package: the parent says so in one line
        connection.send(("failed", f"{type(error).__name__}: {error}"[:500]))
        return
    connection.send(("ready", None))
    while True:
        try:
            args, soft_limit_s = connection.recv()
        except (EOFError, OSError):
            return  # the parent is gone
        try:
            if soft_limit_s:
                signal.setitimer(signal.ITIMER_REAL, soft_limit_s)
            outcome = ("ok", function(*args))
        except SoftTimeout:
            outcome = ("soft_timeout", None)
        except Exception as error:  # the function's own failure, reported to the caller as data
            outcome = ("error", f"{type(error).__name__}: {error}"[:500])
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        try:
            connection.send(outcome)
        except OSError:
            return


class _Worker:
    def __init__(self, function: str, warm_up: str | None, launcher: ThreadPoolExecutor):
        ours, theirs = socket.socketpair()
        command = [sys.executable, "-m", "splitreason.evaluate.worker_pool", "--fd", str(theirs.fileno()),
                   "--function", function] + (["--warm-up", warm_up] if warm_up else [])
        # The child sees the modules the parent sees (a worktree on PYTHONPATH, a test's sys.path).
        environment = {**os.environ, "PYTHONPATH": os.pathsep.join(path for path in sys.path if path)}
        quiet = not os.environ.get("SPLITREASON_DEBUG")
        # Started from the pool's one long-lived launcher thread: the kernel's parent-death signal
        # follows the thread that started a process, and a caller's thread may end any time.
        self.process = launcher.submit(subprocess.Popen, command, pass_fds=(theirs.fileno(),), env=environment,
                                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL if quiet else None).result()
        theirs.close()
        self.connection = Connection(ours.detach())
        if not self.connection.poll(STARTUP_TIMEOUT_S):
            self.kill()
            raise WorkerStartFailed(f"a worker process did not start within {STARTUP_TIMEOUT_S:.0f} s")
        try:
            status, detail = self.connection.recv()
        except (EOFError, OSError):
            self.kill()
            raise WorkerStartFailed(f"a worker process died while starting (exit code {self.process.poll()}; "
                                    "SPLITREASON_DEBUG=1 shows its error)") from None
        if status != "ready":
            self.kill()
            raise WorkerStartFailed(f"a worker process could not start: {detail}")

    def alive(self) -> bool:
        return self.process.poll() is None

    def call(self, args: tuple[Any, ...], soft_limit_s: float | None, hard_limit_s: float) -> tuple[str, Any]:
        self.connection.send((args, soft_limit_s))
        if not self.connection.poll(hard_limit_s):
            raise CallTimedOut()
        return self.connection.recv()

    def kill(self) -> None:
        if self.alive():
            self.process.kill()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - a killed process that does not go away
            pass
        self.connection.close()


class WorkerPool:
    """At most `size` worker processes running `function`; `call` may be used from any thread.

    `function` and `warm_up` must be top-level functions of importable modules: workers import
    them by name.
    """

    def __init__(self, function: Callable[..., Any], *, size: int, warm_up: Callable[[], None] | None = None):
        if size < 1:
            raise ValueError("a worker pool needs at least one worker")
        self._function = _reference(function)
        self._warm_up = _reference(warm_up) if warm_up is not None else None
        self._idle: queue.LifoQueue[_Worker] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()
        self._workers: set[_Worker] = set()
        self._closed = False
        self._launcher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="worker-launcher")
        self.killed = 0  # workers killed at the hard limit, for the caller's counts

    def call(self, args: tuple[Any, ...], *, hard_limit_s: float, soft_limit_s: float | None = None) -> Any:
        """`function(*args)` in a worker. Raises `CallTimedOut` past either limit, `CallFailed`
        with the function's own error, `WorkerCrashed` when the worker died, `WorkerStartFailed`
        when no worker could start."""
        with self._slots:
            worker = self._checkout()
            try:
                status, value = worker.call(args, soft_limit_s, hard_limit_s)
            except CallTimedOut:
                self._discard(worker, killed=True)
                raise
            except (EOFError, OSError) as error:
                self._discard(worker)
                raise WorkerCrashed(f"a worker process died during a call (exit code {worker.process.poll()}): "
                                    f"{type(error).__name__}") from None
            self._checkin(worker)
        if status == "soft_timeout":
            raise CallTimedOut()
        if status == "error":
            raise CallFailed(value)
        return value

    def close(self) -> None:
        """Stop every worker (a call still running in one of them ends with WorkerCrashed)."""
        with self._lock:
            self._closed = True
            workers, self._workers = list(self._workers), set()
        for worker in workers:
            worker.kill()
        self._launcher.shutdown(wait=False)

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _checkout(self) -> _Worker:
        if self._closed:
            raise RuntimeError("the worker pool is closed")
        while True:
            try:
                idle = self._idle.get_nowait()
            except queue.Empty:
                break
            if idle.alive():
                return idle
            self._discard(idle)  # died while idle (killed from outside, out of memory)
        worker = _Worker(self._function, self._warm_up, self._launcher)  # the slot guarantees room
        with self._lock:
            if self._closed:
                worker.kill()
                raise RuntimeError("the worker pool is closed")
            self._workers.add(worker)
        return worker

    def _checkin(self, worker: _Worker) -> None:
        if self._closed:
            worker.kill()
        else:
            self._idle.put(worker)

    def _discard(self, worker: _Worker, *, killed: bool = False) -> None:
        worker.kill()
        with self._lock:
            self._workers.discard(worker)
            self.killed += killed


def _die_with_parent() -> None:
    """On Linux, have the kernel kill this worker when the thread that started it ends (the pool's
    launcher thread, which lives as long as the pool): a worker stuck in a computation would
    otherwise outlive a killed run."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - best effort
        pass


def _main() -> None:
    parser = argparse.ArgumentParser(description="A splitreason worker process (started by WorkerPool).")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--function", required=True)
    parser.add_argument("--warm-up")
    options = parser.parse_args()
    _die_with_parent()
    connection = Connection(options.fd)
    try:
        function = _resolve(options.function)
        warm_up = _resolve(options.warm_up) if options.warm_up else None
    except Exception as error:
        connection.send(("failed", f"{type(error).__name__}: {error}"[:500]))
        return
    _serve(connection, function, warm_up)


if __name__ == "__main__":
    _main()
