"""What a training run shows and logs, as transformers `TrainerCallback`s (main process only):
a rich progress bar on stderr (step, loss, tokens/s, ETA) and OUT/log.jsonl, one JSON object per
logging step (step, epoch, loss, learning rate, tokens/s, …), appended a whole line at a time through
io.jsonl's writer (a line cut by a kill is repaired on resume), and the same step as a --verbose line."""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

from transformers import TrainerCallback

log = logging.getLogger(__name__)

__all__ = ["JsonlLog", "ProgressBar"]


class _TokenRate:
    """Tokens per second since the run (or its resume) started."""

    def __init__(self) -> None:
        self.start_time = time.monotonic()
        self.start_tokens = 0

    def reset(self, tokens: int) -> None:
        self.start_time, self.start_tokens = time.monotonic(), tokens

    def __call__(self, tokens: int) -> float:
        elapsed = time.monotonic() - self.start_time
        return (tokens - self.start_tokens) / elapsed if elapsed > 0 else 0.0


class JsonlLog(TrainerCallback):
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.rate = _TokenRate()

    def on_train_begin(self, args, state, control, **kwargs):
        self.rate.reset(int(state.num_input_tokens_seen or 0))

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        from splitreason.io.jsonl import JsonlAppender

        entry = {"step": state.global_step, "epoch": round(state.epoch or 0.0, 4),
                 **{key: _plain(value) for key, value in logs.items()},
                 "tokens_seen": int(state.num_input_tokens_seen or 0),
                 "tokens_per_second": round(self.rate(int(state.num_input_tokens_seen or 0)), 1),
                 "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        with JsonlAppender(self.path) as handle:
            handle.write(entry)
        log.info("step %d of %d: %s", state.global_step, state.max_steps,
                 ", ".join(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}"
                           for key, value in entry.items() if key not in ("step", "time")))

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            log.info("saved checkpoint-%d in %s", state.global_step, args.output_dir)


class ProgressBar(TrainerCallback):
    def __init__(self, console=None, label: str = "train sft") -> None:
        self.console = console
        self.label = label
        self.progress = None
        self.task = None
        self.rate = _TokenRate()
        self.loss: float | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.rate.reset(int(state.num_input_tokens_seen or 0))
        self.progress = Progress(TextColumn(f"[bold]{self.label}"), BarColumn(), MofNCompleteColumn(), TextColumn("steps"),
                                 TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[rate]} tok/s"),
                                 TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                                 console=self.console or Console(stderr=True), transient=False)
        self.progress.start()
        self.task = self.progress.add_task("train", total=state.max_steps, completed=state.global_step,
                                           loss="-", rate="-")

    def on_step_end(self, args, state, control, **kwargs):
        if self.progress is None:
            return
        rate = self.rate(int(state.num_input_tokens_seen or 0))
        self.progress.update(self.task, completed=state.global_step, rate=f"{rate:,.0f}")

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.progress is not None and logs and "loss" in logs:
            self.progress.update(self.task, loss=f"{logs['loss']:.4f}")

    def on_train_end(self, args, state, control, **kwargs):
        if self.progress is not None:
            self.progress.update(self.task, completed=state.global_step)
            self.progress.stop()
            self.progress = None


def _plain(value):
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if hasattr(value, "item"):
        return _plain(value.item())
    return value
