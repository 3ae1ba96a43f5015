"""One error family for everything the user is told in one line.

Every error a command expects to happen (bad options, bad input, a service that cannot be
reached, a run that could not finish) is a `SplitReasonError`: its message is the whole story,
including what to do, and its class carries the process exit code. `cli.main` catches the base
class; anything else is a bug of ours (exit 3, traceback only with SPLITREASON_DEBUG=1).

    0  done
    1  a run that could not finish (a service down, disk full, the output directory in use)
    2  usage and input errors (bad options, unreadable input, an output directory that conflicts)
    3  a bug

A module's own error subclasses one of the three below, never `SplitReasonError` itself, so
that the exit code is decided where the error is defined. Errors keep `ValueError` as a second
base where callers (or tests) already catch them as such.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = ["RunFailed", "ServiceUnavailable", "SplitReasonError", "UsageError", "exit_code_of", "one_line"]

#: The longest detail kept in a one-line message (a reject's detail, a wrapped library error).
DETAIL_MAX = 300


class SplitReasonError(Exception):
    """Base of every error whose message is meant for the user as it is."""

    exit_code: ClassVar[int] = 2


class UsageError(SplitReasonError):
    """The command was asked for something it cannot do: bad options, bad or missing input, an
    output directory made with other settings. Fixing the command line fixes it."""

    exit_code = 2


class ServiceUnavailable(SplitReasonError):
    """Something the run needs cannot be reached or started: a judge server, a hub, a model, an
    optional package. Nothing was lost; the same command works once the service is back."""

    exit_code = 1


class RunFailed(SplitReasonError):
    """A run started and could not finish: disk full, the output directory in use by another
    process, a failed shard. What was saved is kept and the same command resumes."""

    exit_code = 1


def exit_code_of(error: BaseException) -> int:
    """The exit code a command ends with when `error` stops it (3 for anything unexpected)."""
    return error.exit_code if isinstance(error, SplitReasonError) else 3


def one_line(text: str, max_len: int = DETAIL_MAX) -> str:
    """Collapse whitespace to single spaces and cut to `max_len` characters: how a detail from
    elsewhere (a library's error, a bad value) goes into one of our one-line messages."""
    text = " ".join(str(text).split())
    if len(text) > max_len:
        text = text[: max_len - 1] + "…"
    return text
