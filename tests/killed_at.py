"""`python -m tests.killed_at WHERE ARGS...` runs `splitreason ARGS` and SIGKILLs itself at a known
place, WHERE being one of

    checkpoint:N        right after the trainer saved checkpoint-N
    line:FILENAME:N     right after the N-th line written to a file named FILENAME (a JsonlAppender's)

Watching OUT from another process and killing it there misses when the window is shorter than the
watcher's interval, which a tiny model's GRPO step (a fraction of a second), the final save after
the last checkpoint, and a tiny model's evaluation sample all are. SIGKILL from inside is the same
kill for the files on disk: what was written is in the kernel, nothing else runs."""

from __future__ import annotations

import os
import signal
import sys


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _kill_after_checkpoint(step: int) -> None:
    from transformers import Trainer

    save_checkpoint = Trainer._save_checkpoint

    def save_then_die(self, model, trial):  # type: ignore[no-untyped-def]
        save_checkpoint(self, model, trial)
        if self.state.global_step == step:
            _die()

    Trainer._save_checkpoint = save_then_die


def _kill_after_line(filename: str, count: int) -> None:
    from splitreason.io.jsonl import JsonlAppender

    write_line = JsonlAppender.write_line
    written = 0

    def write_then_die(self, line: bytes) -> None:
        nonlocal written
        write_line(self, line)
        if os.path.basename(self.path) == filename:
            written += 1
            if written == count:
                _die()

    JsonlAppender.write_line = write_then_die


if __name__ == "__main__":
    kind, *where = sys.argv[1].split(":")
    if kind == "checkpoint":
        _kill_after_checkpoint(int(where[0]))
    elif kind == "line":
        _kill_after_line(where[0], int(where[1]))
    else:
        raise SystemExit(f"unknown kill point {sys.argv[1]!r}: checkpoint:N or line:FILENAME:N")
    from splitreason.cli import main

    sys.argv = ["splitreason", *sys.argv[2:]]
    main()
