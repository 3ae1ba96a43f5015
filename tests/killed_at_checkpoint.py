"""`python -m tests.killed_at_checkpoint STEP ARGS...` runs `splitreason ARGS` and SIGKILLs itself
right after the trainer has saved checkpoint-STEP: a kill at a known place. Watching OUT from another
process and killing it there misses when the window is shorter than the watcher's interval, which a
tiny model's GRPO step (a fraction of a second) and the final save after the last checkpoint are."""

from __future__ import annotations

import os
import signal
import sys

from transformers import Trainer

from splitreason.cli import main

KILL_AT_STEP = int(sys.argv[1])
_save_checkpoint = Trainer._save_checkpoint


def _save_then_die(self, model, trial):
    _save_checkpoint(self, model, trial)
    if self.state.global_step == KILL_AT_STEP:
        os.kill(os.getpid(), signal.SIGKILL)


Trainer._save_checkpoint = _save_then_die
sys.argv = ["splitreason", *sys.argv[2:]]
main()
