"""`splitreason calibrate OUT`: how the judge's confidence relates to what reviewers changed.

Reading OUT (annotations, OUT/review.sqlite reconciled per trace, run.json) happens here; the numbers
come from splitreason/review/calibrate.py, which documents them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from splitreason.commands.options import RunDirArg, result_console

if TYPE_CHECKING:
    from splitreason.review.calibrate import JudgedTrace

console = result_console()  # tables that fit the terminal, plain columns in a pipe; "a[b]" prints as is
err = Console(stderr=True, markup=False, emoji=False, highlight=False)

_SKIP_REASONS = {
    "not_in_run": "reviewed trace(s) not among this run's annotations, left out",
    "spans_do_not_fit": "reviewed trace(s) with spans that do not fit the run's trace text, left out",
    "judge_failed": "reviewed trace(s) that are judge failures (never sent to review), left out",
}


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _ci(interval: tuple[float, float] | None) -> str:
    return "-" if interval is None else f"{interval[0]:.0%}–{interval[1]:.0%}"


@dataclass
class ReviewedRun:
    annotations: list[JudgedTrace]  # every annotation of the run (the columns calibration reads)
    changed_by_trace: dict[str, bool]  # ReviewOutcome.changed of each reviewed trace of the run
    skipped_reviews: dict[str, int]  # reviewed traces left out, by reason


def load_reviewed_run(out: Path) -> ReviewedRun:
    """Annotations of OUT and whether the reconciled reviews changed each reviewed trace (the run's
    polars frames, tables/run.py: reviews reconciled there, once)."""
    import polars as pl

    from splitreason.review.calibrate import CalibrateError, JudgedTrace
    from splitreason.tables.run import load_run

    loaded = load_run(out)
    rows = loaded.read_annotations(["trace_id", "confidence", "status", "status_reason"], span_text=False)
    if not rows.height:
        raise CalibrateError(f"{out} holds no annotations; run `splitreason annotate -o {out}` first")
    hint = f"review some traces first: splitreason review serve {out} / splitreason review pull {out} --dataset NAME"
    if not loaded.has_review_store:  # checked first: opening the store would create the file
        raise CalibrateError(f"{out} has no reviews yet (no review.sqlite); {hint}")
    outcomes = loaded.collect(loaded.review_outcomes.select("trace_id", "state", "changed"))
    if not outcomes.height:
        raise CalibrateError(f"{out / 'review.sqlite'} holds no reviews; {hint}")
    changed = dict(outcomes.filter(pl.col("state") == "applied").select("trace_id", "changed").iter_rows())
    if not changed:
        raise CalibrateError(f"none of the {outcomes.height} reviewed traces in {out / 'review.sqlite'} belongs to "
                             "this run's annotations; were the reviews made for another run?")
    return ReviewedRun([JudgedTrace(*row) for row in rows.iter_rows()], changed, loaded.skipped_reviews)


def run_accept_threshold(out: Path) -> float | None:
    """config.accept_threshold from OUT/run.json, or None when the run does not record one."""
    try:
        value = json.loads((out / "run.json").read_text(encoding="utf-8"))["config"]["accept_threshold"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return float(value) if isinstance(value, int | float) and 0 <= value <= 1 else None


def calibrate(
    run: RunDirArg,
    budget: Annotated[float, typer.Option("--budget", help="Share of judged traces to send to review (0 < b < 1).")] = 0.1,
    thresholds: Annotated[str | None, typer.Option(
        "--thresholds", help='Comma-separated confidence thresholds to report (default "0.0,0.1,…,0.9" '
                             "plus the run's accept threshold).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the numbers as JSON.")] = False,
) -> None:
    """Report how often reviewers changed traces above and below confidence thresholds, and suggest
    the threshold that sends a given share of traces to review."""
    from splitreason.review import calibrate as calibration

    calibration.check_budget(budget)  # before reading anything: a typo should not wait for a big run
    grid = calibration.parse_thresholds(thresholds) if thresholds is not None else calibration.DEFAULT_THRESHOLDS
    loaded = load_reviewed_run(run)
    accept = run_accept_threshold(run)
    result = calibration.calibrate(loaded.annotations, loaded.changed_by_trace, budget=budget, thresholds=grid,
                                   accept_threshold=accept, skipped_reviews=loaded.skipped_reviews)
    for reason, count in result.skipped_reviews.items():
        err.print(f"warning: {count} {_SKIP_REASONS.get(reason, reason)}")
    if as_json:
        print(json.dumps(result.as_dict(), indent=2, ensure_ascii=False))
        return

    failed = result.annotations - result.judged
    console.print(f"{run}: {result.annotations} annotations, {result.judged} judged"
                  + (f" ({failed} judge failures left out)" if failed else "")
                  + f"; {result.reviewed.traces} reviewed, {result.reviewed.changed} changed by reviewers "
                  f"({_pct(result.reviewed.rate)}, 95% CI {_ci(result.reviewed.interval)})")

    table = Table(title="reviewer changes by judge confidence (changed = rejected or other spans)")
    table.add_column("threshold t", justify="right")
    for side in ("≥ t", "< t"):
        table.add_column(f"reviewed {side}", justify="right")
        table.add_column("changed", justify="right")
        table.add_column("rate", justify="right")
        table.add_column("95% CI", justify="right")
    for row in result.rows:
        label = f"{row.threshold:g}" + (" (accept)" if row.threshold == result.accept_threshold else "")
        cells = [label]
        for rate in (row.above, row.below):
            cells += [str(rate.traces), str(rate.changed), _pct(rate.rate), _ci(rate.interval)]
        table.add_row(*cells)
    console.print(table)

    if result.auc is None:
        console.print("rank correlation: needs both changed and unchanged reviewed traces")
    else:
        console.print(f"rank correlation: AUC {result.auc:.3f} that an unchanged trace has higher confidence "
                      "than a changed one (0.5 = confidence says nothing)")

    suggestion = result.suggestion
    if suggestion.threshold is not None:
        console.print(f"budget {suggestion.budget:g}: review traces with confidence < {suggestion.threshold:g} "
                      f"({suggestion.sent_to_review} of {suggestion.judged} judged traces, "
                      f"{suggestion.sent_to_review / suggestion.judged:.1%}); {suggestion.skip_review} skip review")
        missed = suggestion.expected_missed
        if missed is not None:
            console.print(f"expected changed traces among those skipping review: {missed[0]:.1f} "
                          f"(95% CI {missed[1]:.1f}–{missed[2]:.1f})")
    console.print(("note: " if suggestion.evidence != "enough" else "") + suggestion.message)
    if result.reviewed.traces and result.reviewed_accepted == 0:
        console.print("note: no trace the router accepted has been reviewed, so nothing here measures how often "
                      "accepted traces are wrong")
