"""What a person watching `annotate` sees: a progress bar (rate, ETA, tokens, status counts)
and the end-of-run summary table. Presentation only; the pipeline decides nothing here."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from splitreason.annotator.runner import RunCounts
from splitreason.schemas import Annotation


class _RateColumn(ProgressColumn):
    def __init__(self, unit: str = "traces"):
        super().__init__()
        self.unit = unit

    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.1f} {self.unit}/s" if speed else f"- {self.unit}/s")


class _Tracker:
    """Counts traces when their number is known up front (shard manifest, --limit); otherwise input
    rows read against the input's row count (parquet metadata, counted or estimated jsonl lines)."""

    def __init__(self, progress: Progress | None, expected: int | None, rows: int | None, rows_read, cost=None):
        self.progress, self.cost = progress, cost
        self.by_rows = expected is None and rows is not None and rows_read is not None
        self.rows_read = rows_read
        total = rows if self.by_rows else expected
        label = "annotating (input rows)" if self.by_rows else "annotating"
        self.task = progress.add_task(label, total=total, tokens="0", status="") if progress else None

    def update(self, counts: RunCounts, annotation: Annotation | None) -> None:
        if self.progress is None:
            return
        usage = counts.usage
        tokens = f"{usage.prompt_tokens + usage.completion_tokens:,}"
        if self.cost is not None:  # this invocation's tokens at the judge's list price
            dollars = self.cost(usage.prompt_tokens, usage.completion_tokens)
            tokens += " (no price)" if dollars is None else f" (${dollars:,.2f})"
        done = counts.annotated + counts.already_done
        completed = self.rows_read() if self.by_rows else done
        traces = f"{done:,} traces " if self.by_rows else ""
        self.progress.update(self.task, completed=completed, tokens=tokens,
                             status=f"{traces}✓{counts.status['accepted']} ?{counts.status['review']} "
                             f"✗{counts.status['rejected']}")


class progress_bar:
    """On stderr: done/total, rate, elapsed and the remaining time (ETA) once a total is known."""

    def __init__(self, console: Console, enabled: bool, expected: int | None, *, rows: int | None = None,
                 rows_estimated: bool = False, rows_read=None, tokens: bool = True, cost=None):
        self.cost = cost
        self.console, self.enabled, self.expected, self.tokens = console, enabled, expected, tokens
        self.rows, self.rows_estimated, self.rows_read = rows, rows_estimated, rows_read
        self._progress: Progress | None = None

    def __enter__(self) -> _Tracker:
        if self.enabled:
            columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn()]
            if self.expected is None and self.rows is not None and self.rows_estimated:
                columns.append(TextColumn("(estimated)"))
            by_rows = self.expected is None and self.rows is not None and self.rows_read is not None
            columns += [_RateColumn("rows" if by_rows else "traces"), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn()]
            if self.tokens:  # judges that are paid by the token; the offline heuristic uses none
                columns.append(TextColumn("tokens {task.fields[tokens]}"))
            columns.append(TextColumn("{task.fields[status]}"))
            self._progress = Progress(*columns, console=self.console, transient=False)
            self._progress.start()
        tracker = _Tracker(self._progress, self.expected, self.rows, self.rows_read, self.cost)
        if self._progress:
            self._progress.update(tracker.task, status="")
        return tracker

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
