"""Run statistics computed on the run's polars frames (tables/run.py): what `splitreason stats`
and `report` print.

The numbers are those of report/stats.py `RunStats` (whose `as_dict`, histogram and
distributions are reused as they are): the same counts in the same first-seen order, so the
JSON is byte for byte what the per-record pass printed. Only the columns the numbers need are
read, in blocks of whole lines (tables/run.py `iter_annotation_blocks`), and each block is folded
into the totals before the next is read: neither the traces' text, nor the records as Python
objects, nor a frame of the whole run is ever held, and no per-trace Python code runs (except with
--tokenizer, which must tokenize each exported trace).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

from splitreason.report.stats import JudgeUsage, RunStats

if TYPE_CHECKING:
    import polars as pl

    from splitreason.tables.run import Run


def per_trace_columns(with_offload: bool) -> list:
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


def _counter(frame: pl.DataFrame, *columns: str) -> Counter:
    """Counts of the column values (tuples for several columns) in first-seen order, as a
    Counter filled one record at a time would hold them."""
    counts: Counter = Counter()
    if frame.height == 0:
        return counts
    for *key, n in frame.group_by(list(columns), maintain_order=True).len().iter_rows():
        counts[tuple(key) if len(columns) > 1 else key[0]] = n
    return counts


def add_block(stats: RunStats, block: pl.DataFrame) -> None:
    """Add one block of `per_trace_columns` rows to `stats`. Counters are updated with the block's
    counts in first-seen order, so over all blocks in file order they hold their keys in the order
    a per-record pass would."""
    import polars as pl

    if block.height == 0:
        return
    stats.traces += block.height
    stats.status.update(_counter(block, "status"))
    stats.reasons.update(_counter(block, "status", "reason"))
    stats.judges.update(_counter(block, "judge"))
    stats.prompt_tokens += int(block["prompt_tokens"].sum())
    stats.completion_tokens += int(block["completion_tokens"].sum())
    stats.target_coverage = block["target_coverage"][-1]  # the last record's, as before
    stats.sample_agreement.extend(block["agreement"].drop_nulls().to_list())

    # Traces the judge answered: coverage, spans, confidence, hallucination.
    answered = block.select("answered", "status", "coverage", "confidence", "n_spans", "excerpts", "hallucinated",
                            "span_lengths", "span_matches").filter(pl.col("answered"))
    stats.coverages.extend(answered["coverage"].to_list())
    stats.spans_per_trace.extend(answered["n_spans"].to_list())
    stats.excerpts += int(answered["excerpts"].sum())
    stats.hallucinated += int(answered["hallucinated"].sum())
    stats.span_chars.extend(answered["span_lengths"].explode().drop_nulls().to_list())
    stats.match_kinds.update(_counter(answered.select(pl.col("span_matches").explode()).drop_nulls(),
                                      "span_matches"))
    # Aggregated to one list per group, never split into one frame per group (that copies the columns).
    for status, confidences in answered.group_by("status", maintain_order=True).agg("confidence").iter_rows():
        stats.confidences[status].extend(confidences)

    # Tokens per judge (or set of judges recorded together), in first-seen order.
    usage = block.group_by("judges", maintain_order=True).agg(
        pl.len(), pl.col("prompt_tokens").sum(), pl.col("completion_tokens").sum(),
        per_trace=pl.col("prompt_tokens") + pl.col("completion_tokens"))
    for names, traces, prompt, completion, per_trace_tokens in usage.iter_rows():
        judge_usage = stats.usage_by_judge.setdefault(" + ".join(names), JudgeUsage(judges=tuple(names)))
        judge_usage.traces += traces
        judge_usage.prompt_tokens += prompt
        judge_usage.completion_tokens += completion
        judge_usage.per_trace.extend(per_trace_tokens)

    # Human review: the reconciled outcome of each reviewed trace (tables/run.py review_outcomes).
    review = stats.review
    review.waiting += block.filter((pl.col("status") == "review") & ~pl.col("reviewed")).height
    reviewed = block.select("reviewed", "review_decision", "review_changed", "reviewers", "review_decision_agreement",
                            "review_span_agreement", "review_judge_agreement").filter(pl.col("reviewed"))
    if reviewed.height:
        review.reviewed += reviewed.height
        review.decisions.update(_counter(reviewed, "review_decision"))
        review.changed += int(reviewed["review_changed"].sum())
        review.reviewers.update(_counter(reviewed.select(pl.col("reviewers").explode()), "reviewers"))
        review.judge_agreement.extend(reviewed.filter(pl.col("review_decision") == "accepted")
                                      ["review_judge_agreement"].to_list())
        review.reviewer_agreement.extend(reviewed["review_span_agreement"].drop_nulls().to_list())
        review.decision_agreement.extend(reviewed.filter(pl.col("reviewers").list.len() > 1)
                                         ["review_decision_agreement"].to_list())


def run_stats(run: Run, *, with_offload: bool = False, on_block: Callable[[pl.DataFrame], None] | None = None,
              on_progress: Callable[[int], None] | None = None) -> RunStats:
    """Everything `splitreason stats` prints about a run, in one pass over blocks of the
    annotation files (`on_block` sees each block too: the report adds its own sums)."""
    stats = RunStats()
    for block in run.iter_annotation_blocks(per_trace_columns(with_offload), span_text=False):
        add_block(stats, block)
        if on_block is not None:
            on_block(block)
        if on_progress is not None:
            on_progress(block.height)
    stats.input_rejects = _counter(run.collect(run.rejects.select("reason")), "reason")
    return stats


def exported_chars(statuses: frozenset[str] = frozenset({"accepted"})):
    """Characters inside the spans a trace is exported with, null when it is left out: the rule of
    exports/sft.py `exported_spans` on the frame's columns (a reconciled review wins: rejected is left
    out, accepted keeps the reviewed spans whatever the status; else the judge's spans when the
    status is in `statuses`)."""
    import polars as pl

    return (pl.when(pl.col("reviewed"))
            .then(pl.when(pl.col("review_decision") == "accepted").then(pl.col("review_span_chars")))
            .when(pl.col("status").is_in(list(statuses)))
            .then(pl.col("span_chars"))
            .otherwise(None))
