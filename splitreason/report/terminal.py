"""The report's terminal summary: the key numbers, and where the page was written."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from splitreason.report.collect import ReportData


def summary_numbers(data: ReportData, written: str) -> dict:
    """The summary's figures as JSON (`report --json`)."""
    stats, review = data.stats, data.stats.review
    return {
        "run": str(data.run), "output": written, "traces": stats.traces, "status": dict(stats.status),
        "input_rejects": sum(stats.input_rejects.values()),
        "coverage_mean": sum(stats.coverages) / len(stats.coverages) if stats.coverages else None,
        "target_coverage": stats.target_coverage,
        "offload_share": {"unit": data.offload.unit, "share": data.offload.overall.share,
                          "traces": data.offload.overall.traces},
        "review": {"reviewed": review.reviewed, "waiting": review.waiting, "changed": review.changed},
        "judge_tokens": {"prompt": stats.prompt_tokens, "completion": stats.completion_tokens},
        "judge_cost_usd": round(data.total_cost, 6), "unpriced_judges": [item.name for item in data.unpriced],
        "curation": None if data.curation is None else {"kept": data.curation.counts.kept,
                                                        "traces_in": data.curation.counts.traces_in,
                                                        "excluded": data.curation.counts.excluded},
        "labels": None if data.labels is None else data.labels.model_dump(mode="json"),  # --labels, as given
    }


def print_summary(console: Console, data: ReportData, written: Path | str) -> None:
    stats = data.stats
    table = Table(title=f"{data.run}: {stats.traces:,} traces", show_header=False)
    for status in ("accepted", "review", "rejected"):
        count = stats.status.get(status, 0)
        table.add_row(status, f"{count:,} ({count / stats.traces:.1%})")
    table.add_row("input rejects", f"{sum(stats.input_rejects.values()):,}")
    if stats.coverages:
        mean = sum(stats.coverages) / len(stats.coverages)
        table.add_row("coverage", f"mean {mean:.1%}, target {stats.target_coverage:.0%}, "
                      f"{data.near_target:,} of {len(stats.coverages):,} near the target")
    share = data.offload.overall.share
    table.add_row(f"offload share ({data.offload.unit})",
                  "-" if share is None else f"{share:.1%} over {data.offload.overall.traces:,} exported traces")
    review = stats.review
    table.add_row("human review",
                  f"{review.reviewed:,} reviewed, {review.waiting:,} waiting, {review.changed:,} changed")
    table.add_row("judge tokens", f"{stats.prompt_tokens:,} prompt / {stats.completion_tokens:,} completion")
    cost = f"${data.total_cost:,.2f}"
    if data.unpriced:
        cost += " (no price for " + ", ".join(item.name for item in data.unpriced) + ": not counted)"
    table.add_row("judge cost", cost)
    if data.curation is None:
        table.add_row("curation", "no curation data")
    else:
        counts = data.curation.counts
        table.add_row("curation", f"kept {counts.kept:,} of {counts.traces_in:,} traces ({counts.excluded:,} excluded)")
    for evaluation in data.evaluations:
        table.add_row(f"evaluation {evaluation.path.name}", "; ".join(
            f"{mode} {figures['accuracy']:.1%} at {figures['offload_share']:.1%} offloaded" for mode, figures
            in evaluation.modes.items()))
    console.print(table)
    if data.labels is not None:
        from splitreason.evaluate.labels import print_labels

        print_labels(data.labels, console)
    if isinstance(written, Path):
        console.print(f"wrote {written} ({written.stat().st_size / 1024:,.0f} KiB)", highlight=False)
