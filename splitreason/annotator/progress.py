"""What a person watching `annotate` sees: a progress bar (rate, ETA, tokens, status counts)
and the end-of-run summary table. Presentation only; the pipeline decides nothing here."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console
from rich.progress import Progress, ProgressColumn
from rich.table import Table
from rich.text import Text

from splitreason.annotator.runner import RunCounts
from splitreason.schemas import Annotation


# In a pipe or a log file nothing redraws: a plain line this often instead, and the last state at the end.
PLAIN_LINE_EVERY_S = 30.0
_BAR_MIN, _BAR_MAX = 10, 40


def _compact(n: int) -> str:
    """1,234 -> 1.2k, 1,100,000 -> 1.1M: token counts that stay short."""
    for limit, suffix in ((1_000_000_000, "G"), (1_000_000, "M"), (1_000, "k")):
        if n >= limit:
            return f"{n / limit:.1f}{suffix}"
    return str(n)


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "-:--:--"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class _LineColumn(ProgressColumn):
    """The whole line in one column, fitted to the console's width rather than cut by rich: what a
    reader needs (done/total, rate with its unit, ETA, tokens and dollars for paid judges) always
    shows; the status counts, the elapsed time and the bar follow as far as the width allows."""

    def __init__(self, console: Console, unit: str, estimated: bool, cost=None):
        super().__init__()
        self.console, self.unit, self.estimated, self.cost = console, unit, estimated, cost

    def line(self, task, *, bar: bool) -> Text:
        fields, unit = task.fields, self.unit
        total = "" if task.total is None else f"/{'~' if self.estimated else ''}{int(task.total)}"
        speed = task.finished_speed or task.speed
        rate = _compact(int(speed)) if speed and speed >= 10 else f"{speed:.1f}" if speed else "-"
        eta = 0 if task.finished else task.time_remaining
        required = [task.description, f"{int(task.completed)}{total} {unit}", f"{rate} {unit}/s", f"eta {_clock(eta)}"]
        if fields.get("tokens") is not None:  # judges paid by the token; the offline heuristic uses none
            prompt, completion = fields["tokens"]
            tokens = f"{_compact(prompt + completion)} tok"
            if self.cost is not None:  # this invocation's tokens at the judge's list price
                dollars = self.cost(prompt, completion)
                tokens += " (no price)" if dollars is None else f" ${dollars:,.2f}"
            required.append(tokens)
        width = self.console.width - 1
        parts = list(required)

        def add(part: str, reserve: int = 0) -> None:
            if part and len(" ".join([*parts, part])) + reserve <= width:
                parts.append(part)

        add(fields.get("status") or "")
        # a bar where there is room for one, before the extras; periodic plain lines have none
        size = min(width - len(" ".join(parts)) - 1, _BAR_MAX) if bar and task.total else 0
        size = size if size >= _BAR_MIN else 0
        add(fields.get("traces") or "", reserve=size + 1 if size else 0)
        add(f"elapsed {_clock(task.elapsed)}", reserve=size + 1 if size else 0)
        text = " ".join(parts)
        if not size:
            return Text(text)
        filled = round(size * min(task.completed / task.total, 1.0))
        head, tail = text.split(" ", 1)
        return Text.assemble(head, " ", ("━" * filled, "bar.finished" if task.finished else "bar.complete"),
                             ("━" * (size - filled), "bar.back"), " ", tail)

    def render(self, task) -> Text:
        return self.line(task, bar=True)


class _Tracker:
    """Counts traces when their number is known up front (shard manifest, --limit); otherwise input
    rows read against the input's row count (parquet metadata, counted or estimated jsonl lines)."""

    def __init__(self, progress: Progress | None, column: _LineColumn | None, expected: int | None,
                 rows: int | None, rows_read, tokens: bool):
        self.progress, self.column, self.tokens = progress, column, tokens
        self.by_rows = expected is None and rows is not None and rows_read is not None
        self.rows_read = rows_read
        total = rows if self.by_rows else expected
        self.task = progress.add_task("annotating", total=total, tokens=(0, 0) if tokens else None,
                                      status="", traces="") if progress else None
        console = progress.console if progress else None
        # rich redraws only on a terminal; elsewhere it prints the last state once, at the end
        self.plain = console is not None and (not console.is_terminal or console.is_dumb_terminal)
        self.last_plain = time.monotonic()

    def update(self, counts: RunCounts, annotation: Annotation | None) -> None:
        if self.progress is None:
            return
        usage = counts.usage
        done = counts.annotated + counts.already_done
        completed = self.rows_read() if self.by_rows else done
        self.progress.update(self.task, completed=completed,
                             tokens=(usage.prompt_tokens, usage.completion_tokens) if self.tokens else None,
                             traces=f"{done:,} traces" if self.by_rows else "",
                             status=f"✓{counts.status['accepted']} ?{counts.status['review']} ✗{counts.status['rejected']}")
        if self.plain and time.monotonic() - self.last_plain >= PLAIN_LINE_EVERY_S:
            self.last_plain = time.monotonic()
            task = next(task for task in self.progress.tasks if task.id == self.task)
            self.progress.console.print(self.column.line(task, bar=False), highlight=False, soft_wrap=True)


class progress_bar:
    """On stderr, one line that fits the terminal: done/total, rate, ETA, tokens and dollars for paid
    judges, then status counts, elapsed time and a bar as the width allows. Not on a terminal: a plain
    line every PLAIN_LINE_EVERY_S seconds and the last state at the end."""

    def __init__(self, console: Console, enabled: bool, expected: int | None, *, rows: int | None = None,
                 rows_estimated: bool = False, rows_read=None, tokens: bool = True, cost=None):
        self.cost = cost
        self.console, self.enabled, self.expected, self.tokens = console, enabled, expected, tokens
        self.rows, self.rows_estimated, self.rows_read = rows, rows_estimated, rows_read
        self._progress: Progress | None = None

    def __enter__(self) -> _Tracker:
        column = None
        if self.enabled:
            by_rows = self.expected is None and self.rows is not None and self.rows_read is not None
            column = _LineColumn(self.console, "rows" if by_rows else "traces",
                                 estimated=by_rows and self.rows_estimated, cost=self.cost)
            self._progress = Progress(column, console=self.console, transient=False)
            self._progress.start()
        return _Tracker(self._progress, column, self.expected, self.rows, self.rows_read, self.tokens)

    def __exit__(self, *exc: object) -> None:
        if self._progress:
            self._progress.stop()


def print_summary(console: Console, out: Path, counts: RunCounts, totals: dict, selection: dict,
                  batching: dict | None = None, *, config=None) -> None:
    if config is not None:  # a forgotten INPUT reads the bundled sample: say what was read, by whom, into where
        judges = ", ".join(judge.name for judge in [config.judge, *config.other_judges])
        console.print(f"input: {config.input}  judge: {judges}  out: {out}", highlight=False, soft_wrap=True)
    table = Table(title=f"splitreason annotate → {out}", show_header=True)
    table.add_column("")
    table.add_column("this run", justify="right")
    table.add_column("in OUT", justify="right")
    for status in ("accepted", "review", "rejected"):
        table.add_row(status, str(counts.status.get(status, 0)), str(totals["status"].get(status, 0)))
    table.add_row("input rejects", str(sum(counts.input_rejects.values())), str(totals["input_rejects"]))
    table.add_row("resumed (already done)", str(counts.already_done), "")
    table.add_row("judge requests / cache hits", f"{counts.requests} / {counts.cache_hits}", "")
    table.add_row("tokens (prompt / completion)", f"{counts.usage.prompt_tokens:,} / {counts.usage.completion_tokens:,}", "")
    rate = counts.annotated / counts.elapsed if counts.elapsed else 0.0
    table.add_row("time", f"{counts.elapsed:.1f} s ({rate:.1f} traces/s)", "")
    for name, stats in (batching or {}).items():
        suffix = f" {name}" if len(batching) > 1 else ""
        if "forward_passes" in stats:  # a model-grounded judge (judges/grounded.py)
            table.add_row("traces per forward pass (mean / max)" + suffix,
                          f"{stats['mean_batch_size']:g} / {stats['max_batch_size']} over {stats['forward_passes']:,} "
                          f"passes, {stats['tokens_per_second']:,.0f} tokens/s", "")
            continue
        table.add_row("vLLM batch size (mean / max)" + suffix, f"{stats['mean_batch_size']:g} / {stats['max_batch_size']} "
                      f"over {stats['steps']:,} steps", "")
    console.print(table)
    if counts.reasons:
        reasons = ", ".join(f"{reason} {n}" for reason, n in counts.reasons.most_common())
        console.print(f"reasons: {reasons}", highlight=False)
    if counts.input_rejects:
        rejects = ", ".join(f"{reason} {n}" for reason, n in counts.input_rejects.most_common())
        console.print(f"input rejects: {rejects} (see {out / 'rejects.jsonl'})", highlight=False)
    not_selected = selection.get("not_selected") or {}
    if not_selected:
        console.print("not selected: " + ", ".join(f"{k} {v}" for k, v in not_selected.items()), highlight=False)
