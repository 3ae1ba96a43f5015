"""Run statistics computed on the run's polars frames (tables/run.py): what `splitreason stats`
and `report` print.

The numbers are those of exports/stats.py `RunStats` (whose `as_dict`, histogram and
distributions are reused as they are): the same counts in the same first-seen order, so the
JSON is byte for byte what the per-record pass printed. Only the columns the numbers need are
read, shard file by shard file with polars' streaming engine: neither the traces' text nor the
records as Python objects are ever held, and no per-trace Python code runs (except with
--tokenizer, which must tokenize each exported trace).
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

from splitreason.exports.stats import JudgeUsage, RunStats

if TYPE_CHECKING:
    import polars as pl

    from splitreason.tables.run import Run

def _per_trace_columns(with_offload: bool) -> list:
    """The per-trace columns the statistics read (no text)."""
    import polars as pl

    spans = pl.col("spans")
    columns = [
        "status", "reason", "answered", "coverage", "confidence", "target_coverage", "agreement", "n_spans",
        "excerpts", "hallucinated", "judge", "judges", "prompt_tokens", "completion_tokens", "reviewed",
        "review_decision", "review_changed", "reviewers", "review_decision_agreement", "review_span_agreement",
        "review_judge_agreement",
        spans.list.eval(pl.element().struct.field("end") - pl.element().struct.field("start")).alias("span_lengths"),
        spans.list.eval(pl.element().struct.field("match")).alias("span_matches"),
    ]
    if with_offload:
        columns += ["source", "problem_type", "trace_chars", "span_chars", "review_span_chars"]
    return columns


def read_per_trace(run: Run, *, with_offload: bool = False,
                   on_progress: Callable[[int], None] | None = None) -> pl.DataFrame:
    """One row per annotation with the columns the statistics need, read one shard file at a time."""
    import polars as pl

    parts = []
    for path in run.shard_files:
        part = run.collect(run.annotations_of([path]).select(_per_trace_columns(with_offload)))
        parts.append(part)
        if on_progress is not None:
            on_progress(part.height)
    if not parts:
        return run.collect(run.annotations_of([]).select(_per_trace_columns(with_offload)))
    return pl.concat(parts, how="vertical")


def _counter(frame: pl.DataFrame, *columns: str) -> Counter:
    """Counts of the column values (tuples for several columns) in first-seen order, as a
    Counter filled one record at a time would hold them."""
    counts: Counter = Counter()
    if frame.height == 0:
        return counts
    for *key, n in frame.group_by(list(columns), maintain_order=True).len().iter_rows():
        counts[tuple(key) if len(columns) > 1 else key[0]] = n
    return counts


def _values(series: pl.Series) -> list:
    return series.to_list()


def stats_from_frame(per_trace: pl.DataFrame, rejects: pl.DataFrame) -> RunStats:
    """RunStats from `read_per_trace` rows and the run's rejects (their `reason` column)."""
    import polars as pl

    stats = RunStats()
    stats.traces = per_trace.height
    stats.status = _counter(per_trace, "status")
    stats.reasons = _counter(per_trace, "status", "reason")
    stats.judges = _counter(per_trace, "judge")
    stats.input_rejects = _counter(rejects, "reason")
    sums = per_trace.select(pl.col("prompt_tokens").sum(), pl.col("completion_tokens").sum())
    stats.prompt_tokens, stats.completion_tokens = (int(value) for value in sums.row(0))
    if per_trace.height:
        stats.target_coverage = per_trace["target_coverage"][-1]  # the last record's, as before
    stats.sample_agreement = _values(per_trace["agreement"].drop_nulls())

    # Traces the judge answered: coverage, spans, confidence, hallucination.
    answered = per_trace.filter(pl.col("answered"))
    stats.coverages = _values(answered["coverage"])
    stats.spans_per_trace = _values(answered["n_spans"])
    stats.excerpts = int(answered["excerpts"].sum())
    stats.hallucinated = int(answered["hallucinated"].sum())
    stats.span_chars = array("q", _values(answered["span_lengths"].explode().drop_nulls()))
    stats.match_kinds = _counter(answered.select(pl.col("span_matches").explode()).drop_nulls(), "span_matches")
    for status, group in answered.group_by("status", maintain_order=True):
        stats.confidences[status[0]] = _values(group["confidence"])

    # Tokens per judge (or set of judges recorded together), in first-seen order.
    usage = per_trace.select("judges", "prompt_tokens", "completion_tokens")
    for names, group in usage.group_by("judges", maintain_order=True):
        judge_usage = JudgeUsage(judges=tuple(names[0]), traces=group.height,
                                 prompt_tokens=int(group["prompt_tokens"].sum()),
                                 completion_tokens=int(group["completion_tokens"].sum()))
        judge_usage.per_trace = array("q", _values(group["prompt_tokens"] + group["completion_tokens"]))
        stats.usage_by_judge[" + ".join(names[0])] = judge_usage

    # Human review: the merged outcome of each reviewed trace (tables/run.py review_outcomes).
    review = stats.review
    reviewed = per_trace.filter(pl.col("reviewed"))
    review.waiting = per_trace.filter((pl.col("status") == "review") & ~pl.col("reviewed")).height
    review.reviewed = reviewed.height
    review.decisions = _counter(reviewed, "review_decision")
    review.changed = int(reviewed["review_changed"].sum())
    review.reviewers = _counter(reviewed.select(pl.col("reviewers").explode()), "reviewers")
    review.judge_agreement = _values(reviewed.filter(pl.col("review_decision") == "accepted")
                                     ["review_judge_agreement"])
    review.reviewer_agreement = _values(reviewed["review_span_agreement"].drop_nulls())
    review.decision_agreement = _values(reviewed.filter(pl.col("reviewers").list.len() > 1)
                                        ["review_decision_agreement"])
    return stats


def run_stats(run: Run, *, on_progress: Callable[[int], None] | None = None) -> RunStats:
    """Everything `splitreason stats` prints about a run."""
    rejects = run.collect(run.rejects.select("reason"))
    return stats_from_frame(read_per_trace(run, on_progress=on_progress), rejects)


def exported_chars(statuses: frozenset[str] = frozenset({"accepted"})):
    """Characters inside the spans a trace is exported with, null when it is left out: the rule of
    exports/sft.py `exported_spans` on the frame's columns (a merged review wins: rejected is left
    out, accepted keeps the reviewed spans whatever the status; else the judge's spans when the
    status is in `statuses`)."""
    import polars as pl

    return (pl.when(pl.col("reviewed"))
            .then(pl.when(pl.col("review_decision") == "accepted").then(pl.col("review_span_chars")))
            .when(pl.col("status").is_in(list(statuses)))
            .then(pl.col("span_chars"))
            .otherwise(None))
