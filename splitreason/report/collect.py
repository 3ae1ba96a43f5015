"""The numbers behind `splitreason report`, from one streaming pass over the annotations.

Only per-trace numbers are kept (report/stats.py `RunStats`, plus the offload sums below), never
the traces: a run of 100k traces of 12k characters is read one annotation at a time.
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
                   prices_file: Path | None = None, on_trace: Callable[[], None] | None = None) -> ReportData:
    """Read OUT once. `tokens` is a models.tokens.TokenCounter (offload share and span lengths in
    its tokens) or None (characters); `on_trace` is called after each annotation (progress)."""
    from splitreason.review.store import ReviewStore

    run_dir = RunDir(run)
    if not run_dir.shard_files():
        raise RunDirError(f"{run} holds no annotations (no {run_dir.annotations_dir.name}/shard-*.jsonl); "
                          "run `splitreason annotate -o` into it first")
    config = read_run_config(run_dir)
    prices = PriceTable.load(prices_file)  # a bad price file fails before the long pass
    curation_dir, summary = find_curation(config, curation)
    has_store = ReviewStore.exists_for(run)
    reviews = {}
    if has_store:
        with ReviewStore.for_run(run) as store:
            reviews = store.reviews_by_trace()

    stats = RunStats()
    offload = OffloadShare("tokens" if tokens is not None else "characters")
    span_tokens = array("q") if tokens is not None else None
    near = 0
    for annotation in run_dir.iter_annotations():
        outcome = stats.add(annotation, reviews.get(annotation.trace_id))
        answered = not annotation.status_reason.startswith("judge_")
        if answered and annotation.target_coverage > 0 and \
                abs(annotation.coverage - annotation.target_coverage) <= NEAR_TARGET * annotation.target_coverage:
            near += 1
        spans = exported_spans(annotation, outcome)
        if spans is not None:
            if tokens is not None:
                offload.add(annotation, *tokens.count(annotation, spans))
            else:
                offload.add(annotation, sum(span.end - span.start for span in spans), len(annotation.trace))
        if span_tokens is not None and answered and annotation.spans:
            # Each span's text tokenized on its own, in one batch per trace.
            encoded = tokens.tokenizer([span.text for span in annotation.spans], add_special_tokens=False)
            span_tokens.extend(len(ids) for ids in encoded["input_ids"])
        if on_trace is not None:
            on_trace()
    if not stats.traces:  # empty shard files: every share and percentage would divide by zero
        raise RunDirError(f"{run} holds no annotations (its shard files are empty)")
    stats.input_rejects.update(reject.reason for reject in run_dir.iter_rejects())

    costs = [prices.cost(name, usage) for name, usage in sorted(stats.usage_by_judge.items())]
    return ReportData(
        run=run, generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), config=config, stats=stats,
        offload=offload, span_tokens=span_tokens, tokenizer=tokenizer, near_target=near,
        has_review_store=has_store, curation_dir=curation_dir, curation=summary, prices=prices,
        prices_file=prices_file, costs=costs,
    )
