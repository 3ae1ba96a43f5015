"""The numbers behind `splitreason report`, computed on the run's polars frames (tables/run.py).

Only per-trace numbers are read (report/run_stats.py fills report/stats.py `RunStats`; the offload
sums below), never the traces' text, except with --tokenizer, which tokenizes each exported trace
in a second pass, one annotation at a time.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from splitreason.exports.sft import exported_spans
from splitreason.report.stats import RunStats
from splitreason.io.run_dir import RunDir, RunDirError
from splitreason.report.curation import CurationSummary, find_curation
from splitreason.report.prices import JudgeCost, PriceTable
from splitreason.schemas import Annotation


NEAR_TARGET = 0.3  # "close to the target": within ±30 % of it, relative


@dataclass
class Share:
    """How much of the exported traces lies inside spans, in one unit (tokens or characters)."""

    traces: int = 0
    inside: int = 0
    total: int = 0

    def add(self, inside: int, total: int) -> None:
        self.traces += 1
        self.inside += inside
        self.total += total

    @property
    def share(self) -> float | None:
        return self.inside / self.total if self.total else None


@dataclass
class OffloadShare:
    unit: str  # "tokens" with --tokenizer, else "characters"
    overall: Share = field(default_factory=Share)
    by_source: dict[str, Share] = field(default_factory=dict)
    by_problem_type: dict[str, Share] = field(default_factory=dict)

    def add(self, annotation: Annotation, inside: int, total: int) -> None:
        self.overall.add(inside, total)
        self.by_source.setdefault(annotation.source or "(none)", Share()).add(inside, total)
        self.by_problem_type.setdefault(annotation.problem_type or "(none)", Share()).add(inside, total)


@dataclass
class ReportData:
    run: Path
    generated: str
    config: dict[str, Any]
    stats: RunStats
    offload: OffloadShare
    span_tokens: array | None  # tokens of every judge span, with --tokenizer
    tokenizer: str | None
    near_target: int  # answered traces whose coverage is within NEAR_TARGET of the target
    has_review_store: bool
    curation_dir: Path | None
    curation: CurationSummary | None
    prices: PriceTable
    prices_file: Path | None
    costs: list[JudgeCost]
    review_warnings: list[str] = field(default_factory=list)  # reviews that apply nowhere (tables/run.py)
    evaluations: list = field(default_factory=list)  # report/evaluations.Evaluation, one per `evaluate offload` run
    labels: Any = None  # a schemas.label_eval.LabelsReport given with --labels

    @property
    def total_cost(self) -> float:
        return sum(cost.dollars for cost in self.costs if cost.dollars is not None)

    @property
    def unpriced(self) -> list[JudgeCost]:
        """Judges that spent tokens but have no price: the total cost leaves them out."""
        return [cost for cost in self.costs if cost.dollars is None
                and cost.usage.prompt_tokens + cost.usage.completion_tokens > 0]


def read_run_config(run_dir: RunDir) -> dict[str, Any]:
    """OUT/run.json `config`, or {} for a directory without one (e.g. shards copied together)."""
    manifest = run_dir.read_manifest()
    config = manifest.get("config") if isinstance(manifest, dict) else None
    return config if isinstance(config, dict) else {}


def count_annotations(run_dir: RunDir) -> int:
    """Lines in the shard files, for the progress bar (a byte count, no JSON parsing)."""
    lines = 0
    for _, _, path in run_dir.shard_files():
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                lines += chunk.count(b"\n")
    return lines


def collect_report(run: Path, *, tokens=None, tokenizer: str | None = None, curation: Path | None = None,
                   prices_file: Path | None = None, on_progress: Callable[[int], None] | None = None,
                   evaluations: list[Path] | None = None) -> ReportData:
    """Read OUT through its polars frames (tables/run.py). `tokens` is a models.tokens.TokenCounter
    (offload share and span lengths in its tokens: one more pass that tokenizes each exported
    trace) or None (characters); `on_progress(n)` is told how many annotations were read."""
    import polars as pl

    from splitreason.report.run_stats import exported_chars, run_stats
    from splitreason.tables.run import load_run

    loaded = load_run(run)
    if not loaded.shard_files:
        raise RunDirError(f"{run} holds no annotations (no {RunDir(run).annotations_dir.name}/shard-*.jsonl); "
                          "run `splitreason annotate -o` into it first")
    config = read_run_config(RunDir(run))
    prices = PriceTable.load(prices_file)  # a bad price file fails before the long pass
    from splitreason.report.evaluations import find_evaluations

    found_evaluations = find_evaluations(run, evaluations)  # a bad --evaluation fails before it too
    curation_dir, summary = find_curation(config, curation)

    offload = OffloadShare("tokens" if tokens is not None else "characters")
    near = 0
    target = pl.col("target_coverage")

    def add_block(block: pl.DataFrame) -> None:
        """The report's own sums over one block of per-trace rows (report/run_stats.py)."""
        nonlocal near
        near += block.filter(pl.col("answered") & (target > 0)
                             & ((pl.col("coverage") - target).abs() <= NEAR_TARGET * target)).height
        if tokens is not None:
            return  # counted in tokens below
        exported = block.select(
            inside=exported_chars(), total="trace_chars",
            source=pl.col("source").fill_null("").replace("", "(none)"),
            problem_type=pl.col("problem_type").fill_null("").replace("", "(none)"),
        ).filter(pl.col("inside").is_not_null())
        _add_shares(offload.overall, exported, None)
        _add_shares(offload.by_source, exported, "source")
        _add_shares(offload.by_problem_type, exported, "problem_type")

    stats = run_stats(loaded, with_offload=tokens is None, on_block=add_block,
                      on_progress=on_progress if tokens is None else None)
    if not stats.traces:  # empty shard files: every share and percentage would divide by zero
        raise RunDirError(f"{run} holds no annotations (its shard files are empty)")

    span_tokens = array("q") if tokens is not None else None
    if tokens is not None:
        outcomes = loaded.outcomes_by_trace()
        for annotation in loaded.iter_annotations():
            spans = exported_spans(annotation, outcomes.get(annotation.trace_id))
            if spans is not None:
                offload.add(annotation, *tokens.count(annotation, spans))
            if annotation.spans and not annotation.status_reason.startswith("judge_"):
                # Each span's text tokenized on its own, in one batch per trace.
                encoded = tokens.tokenizer([span.text for span in annotation.spans], add_special_tokens=False)
                span_tokens.extend(len(ids) for ids in encoded["input_ids"])
            if on_progress is not None:
                on_progress(1)

    costs = [prices.cost(name, usage) for name, usage in sorted(stats.usage_by_judge.items())]
    return ReportData(
        run=run, generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), config=config, stats=stats,
        offload=offload, span_tokens=span_tokens, tokenizer=tokenizer, near_target=near,
        has_review_store=loaded.has_review_store, curation_dir=curation_dir, curation=summary, prices=prices,
        prices_file=prices_file, costs=costs, review_warnings=loaded.review_warnings(),
        evaluations=found_evaluations,
    )


def _add_shares(into: Share | dict[str, Share], exported, key: str | None) -> None:
    """Add one block's exported traces to one Share, or to one Share per value of `key` (first-seen
    order, as a per-trace pass fills the dict)."""
    import polars as pl

    if not exported.height:
        return
    sums = [pl.len().alias("traces"), pl.col("inside").sum(), pl.col("total").cast(pl.Int64).sum()]
    if key is None:
        rows = [(None, *exported.select(sums).row(0))]
    else:
        rows = exported.group_by(key, maintain_order=True).agg(sums).iter_rows()
    for value, traces, inside, total in rows:
        share = into if key is None else into.setdefault(value, Share())
        share.traces += traces
        share.inside += inside
        share.total += total
