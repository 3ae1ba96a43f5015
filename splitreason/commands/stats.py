"""`splitreason stats`: what an annotation run holds."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from splitreason.commands.options import RunDirArg, result_console

err = Console(stderr=True, markup=False, emoji=False, highlight=False)
console = result_console()  # tables that fit the terminal, plain columns in a pipe; "a[b]" prints as is


def stats(
    run: RunDirArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print the numbers as JSON.")] = False,
) -> None:
    """Counts by status and reason, coverage, spans, hallucination rate, tokens, agreement, review progress."""
    from splitreason.report.run_stats import run_stats
    from splitreason.tables.run import load_run

    loaded = load_run(run)
    result = run_stats(loaded)
    for warning in loaded.review_warnings():
        err.print(warning)
    data = result.as_dict()
    if as_json:
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return

    overview = Table(title=f"{run}: {result.traces} traces", show_header=False)
    for status in ("accepted", "review", "rejected"):
        overview.add_row(status, str(result.status.get(status, 0)))
    overview.add_row("input rejects", str(sum(result.input_rejects.values())))
    overview.add_row("hallucinated excerpts", f"{result.hallucinated} of {result.excerpts} ({result.hallucination_rate:.1%})")
    overview.add_row("tokens (prompt / completion)", f"{result.prompt_tokens:,} / {result.completion_tokens:,}")
    overview.add_row("span matches", ", ".join(f"{k} {v}" for k, v in sorted(result.match_kinds.items())) or "-")
    console.print(overview)

    reasons = Table(title="status reasons")
    reasons.add_column("status")
    reasons.add_column("reason")
    reasons.add_column("traces", justify="right")
    for (status, reason), count in sorted(result.reasons.items()):
        reasons.add_row(status, reason, str(count))
    for reason, count in sorted(result.input_rejects.items()):
        reasons.add_row("input reject", reason, str(count))
    console.print(reasons)

    for title, dist in (("coverage", data["coverage"]), ("spans per trace", data["spans_per_trace"])):
        if dist:
            console.print(f"{title}: " + "  ".join(f"{k} {v:g}" for k, v in dist.items()), highlight=False)
    if result.target_coverage is not None:
        console.print(f"target coverage: {result.target_coverage:g}", highlight=False)
    histogram = Table(title="coverage distribution")
    histogram.add_column("coverage")
    histogram.add_column("traces", justify="right")
    histogram.add_column("")
    bins = data["coverage_histogram"]
    peak = max(bins.values(), default=0) or 1
    for label, count in bins.items():
        histogram.add_row(label, str(count), "█" * round(30 * count / peak))
    console.print(histogram)
    if data["sample_agreement"]:
        console.print("agreement between samples/judges: " + _summary(data["sample_agreement"]), highlight=False)
    _print_review(result.review)


def _summary(dist: dict) -> str:
    return "  ".join(f"{k} {v:g}" for k, v in dist.items())


def _print_review(review) -> None:
    data = review.as_dict()
    table = Table(title="human review", show_header=False)
    total = review.waiting + review.reviewed
    table.add_row("reviewed", f"{review.reviewed} of {total} (waiting {review.waiting})" if total else "0")
    table.add_row("decisions", ", ".join(f"{k} {v}" for k, v in sorted(review.decisions.items())) or "-")
    table.add_row("changed from the judge", str(review.changed))
    table.add_row("reviewers", ", ".join(f"{k} {v}" for k, v in sorted(review.reviewers.items())) or "-")
    for label, key in (("reviewer vs judge spans (F1)", "judge_agreement"),
                       ("reviewer vs reviewer spans (F1)", "reviewer_span_agreement"),
                       ("reviewer vs reviewer decisions", "reviewer_decision_agreement")):
        table.add_row(label, _summary(data[key]) if data[key] else "-")
    console.print(table)
